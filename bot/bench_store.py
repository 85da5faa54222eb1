"""`bildungslotse bench store`: full question round trips (engine + store write) with many
concurrent simulated users, on SQLite and on PostgreSQL; every event is counted back."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bot.app import build_engine
from bot.bench import QUESTIONS
from bot.config import Config
from bot.reply import Incoming
from bot.service import Service
from bot.store import Pseudonyms, Store, StoreError

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def postgres_schema(url: str = POSTGRES_URL) -> tuple[str, dict] | None:
    """A fresh schema on the PostgreSQL server, or None when no server answers."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await asyncio.wait_for(conn.execute(text(f'CREATE SCHEMA "{schema}"')), 5)
    except Exception:  # noqa: BLE001 - any failure means: no usable server here
        return None
    finally:
        await engine.dispose()
    return schema, {"server_settings": {"search_path": schema}}


async def drop_schema(schema: str, url: str = POSTGRES_URL) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


async def _round_trips(store: Store, service: Service, users: int, per_user: int,
                       questions: list[str]) -> tuple[float, int, int, list[float]]:
    errors = 0
    latencies: list[float] = []

    async def user(n: int) -> None:
        nonlocal errors
        for i in range(per_user):
            question = questions[(n * 7 + i) % len(questions)]
            started = time.perf_counter()
            try:
                await service.handle(f"bench-{n}", Incoming(user="", text=question))
                await store.flush()  # the round trip ends when its event is committed
            except Exception:  # noqa: BLE001 - counted, the bench goes on
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    before = await store.count("events")
    started = time.perf_counter()
    await asyncio.gather(*(user(n) for n in range(users)))
    elapsed = time.perf_counter() - started
    stored = await store.count("events") - before
    return users * per_user / elapsed, errors, users * per_user - stored, latencies


async def run_store_bench(config: Config, catalogue_dir: Path, users: int = 1000, per_user: int = 5) -> int:
    engine = build_engine(config, catalogue_dir)
    questions = [q for q in QUESTIONS.read_text(encoding="utf-8").splitlines() if q.strip()]
    pseudonyms = Pseudonyms(b"bench-secret")
    figures: dict[str, str] = {}
    total_errors = total_lost = 0
    with tempfile.TemporaryDirectory() as tmp:
        targets: list[tuple[str, str, dict | None]] = [("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", None)]
        made = await postgres_schema()
        if made:
            targets.append(("postgres", POSTGRES_URL, made[1]))
        else:
            figures["postgres_rps"] = "skipped"
            print("postgres: no server answers at", POSTGRES_URL, "- skipped")
        try:
            for name, url, connect_args in targets:
                try:
                    store = await Store.open(url, pseudonyms, connect_args=connect_args)
                except StoreError as exc:
                    print(f"{name}: {exc}")
                    figures[f"{name}_rps"] = "skipped"
                    continue
                service = Service(engine, store, "bench")
                await _round_trips(store, service, min(users, 50), 1, questions)  # warm-up
                rps, errors, lost, latencies = await _round_trips(store, service, users, per_user, questions)
                await store.close()
                total_errors += errors
                total_lost += lost
                figures[f"{name}_rps"] = f"{rps:.0f}"
                print(f"{name}: {users} users x {per_user} questions: {rps:.0f} round trips/s, "
                      f"p50 {statistics.median(latencies):.1f} ms, errors {errors}, lost events {lost}")
        finally:
            if made:
                await drop_schema(made[0])
    print(f"sqlite_rps={figures.get('sqlite_rps', 'skipped')} postgres_rps={figures.get('postgres_rps', 'skipped')} "
          f"errors={total_errors} lost={total_lost}")
    return 0 if total_errors == 0 and total_lost == 0 else 1
