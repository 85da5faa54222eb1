"""Catalogue items as the workbench edits them: find an offer or office (German, or its
translation in one language) in the YAML files, read its fields, write a changed copy back with
ruamel.yaml (comments, order and quoting kept) and map the validator's problems to fields.

Every path is built from the catalogue folder, fixed file names and ids or language codes the
loaded catalogue knows; nothing a browser sends becomes a path."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from bot.catalogue.loader import NOTICES_FILE, OFFICES_FILE, _offer_files, source_hash
from bot.catalogue.yamlsource import LineDict, read_yaml
from bot.languages import SOURCE_LANGUAGE

KINDS = ("offer", "office", "notice")


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str = "line"  # line (one line of text), text (a paragraph), list (one entry per line)


def _fields(*spec: str) -> tuple[Field, ...]:
    return tuple(Field(*item.split(":")) for item in spec)


OFFER_TEXT = _fields("title", "summary:text", "who:text", "cost:text", "conditions:text", "desk:text",
                     "next:text", "bring:list", "keywords:list", "examples:list")
FIELDS = {
    ("offer", True): OFFER_TEXT + _fields("links:list", "source", "source_date", "last_verified"),
    ("offer", False): OFFER_TEXT,
    ("office", True): _fields("name", "address", "phone", "email", "website", "hours:text", "languages:list",
                              "source", "source_date", "last_verified"),
    ("office", False): _fields("name", "hours:text"),
    ("notice", True): _fields("text:text", "offers:list", "source", "source_date"),
    ("notice", False): _fields("text:text"),
}
# Written in flow style ([a, b]) when new, as the shipped files do; the others one per line.
FLOW_LISTS = {"keywords", "links", "languages", "districts", "offers"}
# Where a field that was absent goes: before the first of these the item has.
INSERT_BEFORE = ("keywords", "links", "districts", "source", "source_date", "last_verified", "examples")


@dataclass(frozen=True, slots=True)
class ItemRef:
    kind: str  # offer or office
    ident: str
    lang: str

    @property
    def german(self) -> bool:
        return self.lang == SOURCE_LANGUAGE

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ident}:{self.lang}"

    @property
    def fields(self) -> tuple[Field, ...]:
        return FIELDS[(self.kind, self.german)]


class ItemNotFound(LookupError):
    pass


def inside(folder: Path, path: Path) -> bool:
    """Whether `path`, links followed, is in the catalogue folder: a link to elsewhere is refused."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


class Files:
    """Parsed catalogue files (the fast line-numbering loader), re-read only when a file changed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._parsed: dict[Path, tuple[tuple[int, int], Any]] = {}

    def read(self, path: Path) -> Any:
        info = path.stat()
        stamp = (info.st_mtime_ns, info.st_size)
        cached = self._parsed.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, read_yaml(path))
            self._parsed[path] = cached
        return cached[1]

    def locate(self, ref: ItemRef) -> tuple[Path, LineDict]:
        """The file holding the item and its parsed node; ItemNotFound when there is none."""
        if not ref.german:
            path = self.folder / "lang" / f"{ref.lang}.yaml"
            data = self.read(path) if path.is_file() else None
            node = ((data or {}).get(f"{ref.kind}s") or {}).get(ref.ident) if isinstance(data, dict) else None
            if isinstance(node, LineDict):
                return path, node
            raise ItemNotFound(ref.key)
        paths = ([self.folder / OFFICES_FILE] if ref.kind == "office" else [self.folder / NOTICES_FILE]
                 if ref.kind == "notice" else _offer_files(self.folder))
        for path in paths:
            data = self.read(path)
            for node in (data or {}).get(f"{ref.kind}s") or () if isinstance(data, dict) else ():
                if isinstance(node, LineDict) and node.get("id") == ref.ident:
                    return path, node
        raise ItemNotFound(ref.key)

    def values(self, ref: ItemRef) -> dict[str, str]:
        return values_of(ref, self.locate(ref)[1])


def _text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value).lower()
    return str(value).strip()


def values_of(ref: ItemRef, node: dict) -> dict[str, str]:
    """The item's fields as the form shows them: text, and lists one entry per line."""
    values = {}
    for field in ref.fields:
        raw = node.get(field.name)
        if field.kind == "list":
            values[field.name] = "\n".join(_text(v) for v in raw) if isinstance(raw, list) else _text(raw)
        else:
            values[field.name] = _text(raw)
    if not ref.german:
        values["status"] = _text(node.get("status")) or "draft"
    return values


def version(values: dict[str, str]) -> str:
    """What a form was based on: a save based on another version is a conflict."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def normalise(ref: ItemRef, form: dict[str, str]) -> dict[str, str]:
    """Form input as values: line ends unified, spaces trimmed, empty list lines dropped."""
    values = {}
    for field in ref.fields:
        raw = (form.get(field.name) or "").replace("\r\n", "\n").replace("\r", "\n")
        if field.kind == "list":
            values[field.name] = "\n".join(line.strip() for line in raw.split("\n") if line.strip())
        elif field.kind == "line":
            values[field.name] = " ".join(raw.split())
        else:
            values[field.name] = raw.strip()
    if not ref.german:
        values["status"] = "reviewed" if form.get("status") == "reviewed" else "draft"
    return values


def german_hash(ref: ItemRef, german: dict[str, str]) -> str:
    """The source_hash a translation made from this German gets (loader.offer_source_hash)."""
    if ref.kind == "office":
        return source_hash(german["name"], german["hours"] or None)
    if ref.kind == "notice":
        return source_hash(german["text"])
    bring = tuple(line for line in german["bring"].split("\n") if line)
    return source_hash(german["title"], german["summary"], german["who"], german["cost"],
                       german["conditions"] or None, bring, german["desk"], german["next"])


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 1_000_000  # never fold a long line the editor wrote on one
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _styled(old: Any, value: str) -> Any:
    """A new text in the quoting of the old one ("…" stays "…")."""
    if isinstance(old, DoubleQuotedScalarString):
        return DoubleQuotedScalarString(value)
    if isinstance(old, SingleQuotedScalarString):
        return SingleQuotedScalarString(value)
    return value


def _set(node: CommentedMap, key: str, value: Any) -> None:
    if key in node:
        node[key] = value
        return
    keys = list(node)
    position = next((keys.index(k) for k in INSERT_BEFORE if k in node), len(keys))
    node.insert(position, key, value)


def _replace_items(seq: CommentedSeq, items: list[str]) -> None:
    """New entries in the old list: its quoting, and the comment or blank line after its last entry."""
    quoted = any(isinstance(v, DoubleQuotedScalarString) for v in seq)
    comments = dict(seq.ca.items)
    after_last = comments.pop(len(seq) - 1, None)
    del seq[:]
    seq.extend(DoubleQuotedScalarString(v) if quoted else v for v in items)
    seq.ca.items.clear()
    seq.ca.items.update({k: v for k, v in comments.items() if k < len(items) - 1})
    if after_last is not None:
        seq.ca.items[len(items) - 1] = after_last


def _apply(ref: ItemRef, node: CommentedMap, values: dict[str, str], german: dict[str, str] | None) -> None:
    current = values_of(ref, node)
    for field in ref.fields:
        value = values[field.name]
        old = node.get(field.name)
        if value == current[field.name]:
            continue  # untouched, to the byte
        if not value:
            node.pop(field.name, None)
        elif field.kind == "list":
            items = value.split("\n")
            if isinstance(old, CommentedSeq):
                _replace_items(old, items)
            else:
                seq = CommentedSeq(items)
                if field.name in FLOW_LISTS:
                    seq.fa.set_flow_style()
                _set(node, field.name, seq)
        elif field.name == "last_verified" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            with contextlib.suppress(ValueError):
                _set(node, field.name, date.fromisoformat(value))
                continue
            _set(node, field.name, value)  # the validator names what is wrong with it
        else:
            _set(node, field.name, _styled(old, value))
    if not ref.german:
        node["status"] = values["status"]
        if values["status"] == "reviewed" and german is not None:
            _set(node, "source_hash", german_hash(ref, german))


def edited_text(path: Path, ref: ItemRef, values: dict[str, str], german: dict[str, str] | None) -> str:
    """The file's text with the item changed to `values`; everything else as it was."""
    yaml = _yaml()
    data = yaml.load(path.read_text(encoding="utf-8"))
    if ref.german:
        node = next(n for n in data[f"{ref.kind}s"] if n.get("id") == ref.ident)
    else:
        node = data[f"{ref.kind}s"][ref.ident]
    _apply(ref, node, values, german)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def stage(folder: Path, target: Path, text: str, into: Path) -> Path:
    """A copy of the catalogue to validate an edit on: links to every file, the edited one
    written out. Folders are made, not linked, so that every file is found the same way."""
    root = into / folder.name
    for dirpath, _dirs, files in os.walk(folder):
        here = Path(dirpath)
        mirror = root / here.relative_to(folder)
        mirror.mkdir(parents=True, exist_ok=True)
        for name in files:
            if here / name != target:
                (mirror / name).symlink_to((here / name).resolve())
    (root / target.relative_to(folder)).write_text(text, encoding="utf-8")
    return root


def write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step: the bot's watcher never reads half a file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def problems_by_field(ref: ItemRef, problems: list[str], staged: Path) -> tuple[dict[str, list[str]], list[str]]:
    """The validator's problems ("file:line: subject: message") at the fields of the edited item;
    the rest (another item, another file) as general problems."""
    node = read_yaml(staged)
    if ref.german:
        node = next(n for n in node[f"{ref.kind}s"] if isinstance(n, dict) and n.get("id") == ref.ident)
    else:
        node = node[f"{ref.kind}s"][ref.ident]
    names = {f.name for f in ref.fields}
    lines = sorted((line, key) for key, line in node.key_lines.items())
    prefix = os.path.relpath(staged) + ":"
    subject = f"{ref.kind} '{ref.ident}'" + ("" if ref.german else f" [{ref.lang}]")
    root = os.path.relpath(staged.parent if ref.german else staged.parent.parent)
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for problem in problems:
        where, _, rest = problem.partition(": ")
        message = rest.removeprefix(subject + ": ")
        field = None
        if problem.startswith(prefix) and rest.startswith(subject + ": "):
            line = int(where.rsplit(":", 1)[1]) if where.rsplit(":", 1)[1].isdigit() else 0
            named = re.match(r"missing '([a-z_]+)'", message)
            if named and named[1] in names:
                field = named[1]
            else:
                field = next((key for at, key in reversed(lines) if at <= line), None)
        if field in names:
            by_field.setdefault(field, []).append(message)
        else:
            general.append(problem.replace(root, "…"))
    return by_field, general
