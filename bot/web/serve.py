"""`bildungslotse web` and `bildungslotse editors`: the workbench's commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from pathlib import Path

from bot.config import Config

log = logging.getLogger(__name__)
PASSWORD_ENV = "BILDUNGSLOTSE_EDITOR_PASSWORD"


def add_commands(sub) -> None:
    web = sub.add_parser("web", help="the editors' workbench: a web app to edit the catalogue and teach the bot")
    web.add_argument("--host", help="address to listen on (default: web.listen in the config, or 127.0.0.1)")
    web.add_argument("--port", type=int, help="port (default: web.port in the config, or 8080)")
    web.add_argument("--insecure-cookies", action="store_true",
                     help="send the session cookie over plain HTTP too (only for trying it on this computer; "
                          "behind HTTPS leave it out)")
    editors = sub.add_parser("editors", help="the workbench's accounts: add, list, remove, password")
    action = editors.add_subparsers(dest="action", required=True)
    add = action.add_parser("add", help=f"a new account; the password is asked for, or read from ${PASSWORD_ENV} "
                                        "or one line of stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, help="editor (German texts), translator:LANG (one language), admin")
    action.add_parser("list", help="every account and its role")
    remove = action.add_parser("remove", help="remove an account and end its sessions")
    remove.add_argument("name")
    password = action.add_parser("password", help="set a new password (ends the account's sessions)")
    password.add_argument("name")


def run_command(config: Config, catalogue_dir: Path, args: argparse.Namespace) -> int:
    if args.command == "editors":
        return asyncio.run(_editors(config, args))
    return asyncio.run(serve(config, catalogue_dir, args.host or config.web.listen, args.port or config.web.port,
                             secure_cookies=config.web.secure_cookies and not args.insecure_cookies))


def _password() -> str:
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise ValueError("the two passwords differ")
    return first


async def _editors(config: Config, args: argparse.Namespace) -> int:
    from bot.app import open_store
    from bot.web import accounts

    store = await open_store(config, journal=False)
    try:
        if args.action == "list":
            for account in await accounts.list_accounts(store.engine, store.municipality):
                print(f"{account.name}\t{account.role}")
            return 0
        if args.action == "remove":
            if not await accounts.remove_account(store.engine, args.name, store.municipality):
                print(f"bildungslotse: no account '{args.name}'", file=sys.stderr)
                return 2
            print(f"removed {args.name}")
            return 0
        try:
            if args.action == "add":
                accounts.check_role(args.role)  # before asking for a password
                await accounts.add_account(store.engine, args.name, args.role, _password(), store.municipality)
                print(f"added {args.name} ({args.role})")
                return 0
            if not await accounts.set_password(store.engine, args.name, _password(), store.municipality):
                print(f"bildungslotse: no account '{args.name}'", file=sys.stderr)
                return 2
            print(f"new password for {args.name}; their sessions ended")
            return 0
        except ValueError as exc:  # AccountError, or two different passwords
            print(f"bildungslotse: {exc}", file=sys.stderr)
            return 2
    finally:
        await store.close()


async def open_workbench(config: Config, catalogue_dir: Path, engine=None, store=None, runtime=None):
    """The workbench over a bot's engine and store (inside `run`), or its own (`web`)."""
    from bot.app import build_engine, open_store
    from bot.runner import Runtime
    from bot.web.workbench import Workbench

    if engine is None:
        engine = await asyncio.to_thread(build_engine, config, catalogue_dir)
    if store is None:
        store = await open_store(config, journal=False)
    runtime = runtime or Runtime(config, catalogue_dir, engine, store)
    return Workbench(catalogue_dir, engine, store, reload=runtime.reload), runtime


async def serve(config: Config, catalogue_dir: Path, host: str, port: int, secure_cookies: bool = True) -> int:
    import uvicorn

    from bot.web.app import WebApp

    bench, runtime = await open_workbench(config, catalogue_dir)
    app = WebApp(bench, secure_cookies=secure_cookies, config=config).app()
    watcher = asyncio.create_task(runtime.watch(), name="catalogue-watch")  # edits made outside the workbench too
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False))
    log.info("workbench on http://%s:%d/ (catalogue %s)", host, port, catalogue_dir)
    try:
        await server.serve()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await bench.store.close()
    return 0


async def serve_inside(config: Config, runtime) -> None:
    """The workbench on the running bot's engine, store and reload (`web.enabled` in the config)."""
    import uvicorn

    from bot.web.app import WebApp
    from bot.web.workbench import Workbench

    class _QuietServer(uvicorn.Server):
        """Inside `run` the bot owns SIGINT and SIGTERM, and stops the workbench with everything else."""

        @contextlib.contextmanager
        def capture_signals(self):
            yield

    bench = Workbench(runtime.catalogue_dir, runtime.engine, runtime.store, reload=runtime.reload)
    app = WebApp(bench, secure_cookies=config.web.secure_cookies, config=config).app()
    server = _QuietServer(uvicorn.Config(app, host=config.web.listen, port=config.web.port, log_level="warning"))
    log.info("workbench on http://%s:%d/", config.web.listen, config.web.port)
    await server.serve()
