"""YAML reading that remembers line numbers, so every problem can name file:line.

Catalogue and config files are written by people and, through the watcher, read by a running
bot, so reading is bounded: one file's size, the nesting depth, and no aliases (a 1 KB "billion
laughs" file expands to gigabytes once anything walks it). A file that breaks a bound is a
YamlError with the line to fix, like any other mistake."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

# 16 MiB: a translation file for ~10,000 offers (the validate benchmark writes 5,000 offers'
# worth, about 7.5 MB); anything larger is a mistake, not a catalogue.
MAX_FILE_BYTES = 16 * 1024 * 1024
# Our files nest about five levels; Python's recursion limit (~1,000 frames) must never be reached.
MAX_DEPTH = 64

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict):
    """A mapping from YAML that knows its own line and the line of each key."""

    __slots__ = ("line", "key_lines")

    def __init__(self) -> None:
        super().__init__()
        self.line = 0
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class _AliasFound(yaml.constructor.ConstructorError):
    """A node met a second time: libyaml's composer has already resolved the alias to its anchor,
    so the alias's own line is found afterwards (see _first_alias_line)."""


# libyaml's parser when PyYAML has it (about five times faster on a big catalogue); the
# constructors below, which keep line numbers, work on either.
class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    _depth = 0

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # Every node of a document without aliases is constructed exactly once.
        if node in self.constructed_objects or node in self.recursive_objects:
            raise _AliasFound(None, None, "alias", node.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.constructor.ConstructorError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", node.start_mark)
            return super().construct_object(node, deep)
        finally:
            self._depth -= 1


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "empty"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            # Checked before `key in result`: a list key is unhashable, and `yes:` or `12:` would
            # silently become True or 12 and never match the text the code looks up.
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be text, not {_kind(key)}: put it in quotes", key_node.start_mark)
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


class LineList(list):
    """A list from YAML that knows the line of each item (examples are reported one by one)."""

    __slots__ = ("line", "item_lines")

    def __init__(self) -> None:
        super().__init__()
        self.line = 0
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList()
    result.line = node.start_mark.line + 1
    for item in node.value:
        result.append(loader.construct_object(item, deep=True))
        result.item_lines.append(item.start_mark.line + 1)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)
# Dates stay text: the validator parses them and reports a bad one with its line.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


class YamlError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _first_alias_line(text: str) -> int:
    """The line of the first alias (``*name``); only called once one was found, so the extra
    pass over the events costs nothing on a good file."""
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, yaml.AliasEvent):
                return event.start_mark.line + 1
    except yaml.YAMLError:
        pass
    return 0


def _read_text(path: Path, max_bytes: int) -> str:
    """The file's text, or YamlError saying in one sentence why it is not a readable file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise YamlError(0, "a broken symbolic link: point it at a file or remove it") from None
        raise YamlError(0, "the file does not exist") from None
    except OSError as exc:
        raise YamlError(0, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise YamlError(0, "a folder, not a file: rename it (only files may end in .yaml) or move it elsewhere")
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block the reader forever
        raise YamlError(0, "not a regular file: replace it with a YAML file")
    too_big = f"more than {max_bytes / 2**20:g} MB: split it, or remove what does not belong in it"
    if info.st_size > max_bytes:
        raise YamlError(0, f"{info.st_size / 2**20:.1f} MB, {too_big}")
    try:
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)  # never more, even if it grew since stat
    except OSError as exc:
        raise YamlError(0, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise YamlError(0, too_big[0].upper() + too_big[1:])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlError(line, f"not UTF-8 text: byte 0x{data[exc.start]:02X} in column {column} "
                              "cannot be read; save the file as UTF-8") from None


def read_yaml(path: Path, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """Parse one file; any problem becomes YamlError with the line it was found on."""
    text = _read_text(path, max_bytes)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except _AliasFound:
        raise YamlError(_first_alias_line(text),
                        "YAML aliases (*name) are not allowed: write the value out instead") from None
    except yaml.constructor.ConstructorError as exc:  # our rules: text keys, no duplicates, depth
        mark = exc.problem_mark
        raise YamlError(mark.line + 1 if mark else 0, str(exc.problem or exc.context)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlError(line, f"YAML syntax: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlError(0, f"YAML: {exc}") from None
    except RecursionError:  # a bound above should come first; never a traceback in any case
        raise YamlError(0, f"nested too deeply (more than {MAX_DEPTH} levels)") from None
