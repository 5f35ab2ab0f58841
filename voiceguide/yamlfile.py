"""Read a small YAML file into plain data that remembers where each value came from.

Routine and profile files are read here so that every later problem can be
reported as FILE:LINE:COL, and so that hostile files (binary data, alias bombs,
deep nesting) are refused with one line instead of a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from voiceguide.errors import Location, Problem, RoutineError

MAX_BYTES = 1_000_000
# Aliases let a tiny file name the same list many times over; counting every
# value we build caps the expanded size whatever the file does.
MAX_VALUES = 100_000


class YMap(dict):
    """A mapping that knows where it, each key and each value sit in the file."""

    where: Location
    key_at: dict[str, Location]
    value_at: dict[str, Location]
    raw: dict[str, str]

    def at(self, key: str) -> Location:
        return self.value_at.get(key, self.where)


class YList(list):
    """A sequence that knows where it and each item sit in the file."""

    where: Location
    item_at: list[Location]
    raw: list[str | None]


def read_yaml(path: str | os.PathLike[str], what: str = "routine") -> tuple[Any, Location]:
    """Parse the file at ``path``; return its top value and its location.

    Raises RoutineError with one problem for anything that stops parsing.
    """
    name = str(path)
    text = _read_text(Path(path), name, what)
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.composer.ComposerError as error:
            if "expected a single document" in str(error.problem):
                raise _fail(name, error.problem_mark, f"a {what} file holds one YAML document; found a second one") from None
            raise
        if node is None:
            raise RoutineError([Problem(Location(name), f"the file is empty; a {what} file needs {_needs(what)}")])
        builder = _Builder(name, loader)
        value = builder.build(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        detail = error.problem or error.context or "invalid YAML"
        raise _fail(name, mark, f"invalid YAML: {detail}") from None
    except yaml.YAMLError as error:
        raise RoutineError([Problem(Location(name), f"invalid YAML: {error}")]) from None
    except RecursionError:
        raise RoutineError([Problem(Location(name), "invalid YAML: values nested too deeply")]) from None
    finally:
        loader.dispose()
    return value, _where(name, node.start_mark)


def _needs(what: str) -> str:
    return "at least a title and steps" if what == "routine" else "at least one setting"


def _read_text(path: Path, name: str, what: str) -> str:
    def fail(message: str) -> RoutineError:
        return RoutineError([Problem(Location(name), message)])

    try:
        if path.is_dir():
            raise fail(f"is a directory, not a {what} file")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise fail(f"too large for a {what} file ({size} bytes; the limit is {MAX_BYTES})")
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail("no such file") from None
    except PermissionError:
        raise fail("permission denied") from None
    except OSError as error:
        raise fail(f"cannot read: {error.strerror or error}") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise fail(f"not a text file (binary data at byte {nul})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise fail(f"not a text file (invalid UTF-8 on line {line})") from None
    if not text.strip():
        raise fail(f"the file is empty; a {what} file needs {_needs(what)}")
    return text


def _where(name: str, mark: yaml.Mark | None) -> Location:
    if mark is None:
        return Location(name)
    return Location(name, mark.line + 1, mark.column + 1)


def _fail(name: str, mark: yaml.Mark | None, message: str) -> RoutineError:
    return RoutineError([Problem(_where(name, mark), message)])


class _Builder:
    def __init__(self, name: str, loader: yaml.SafeLoader):
        self.name = name
        self.loader = loader
        self.count = 0

    def build(self, node: yaml.Node) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _fail(self.name, node.start_mark,
                        f"the file expands to more than {MAX_VALUES} values (YAML aliases?); refusing to read it")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            items = YList(self.build(child) for child in node.value)
            items.where = _where(self.name, node.start_mark)
            items.item_at = [_where(self.name, child.start_mark) for child in node.value]
            items.raw = [child.value if isinstance(child, yaml.ScalarNode) else None for child in node.value]
            return items
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode) -> YMap:
        self.loader.flatten_mapping(node)
        result = YMap()
        result.where = _where(self.name, node.start_mark)
        result.key_at, result.value_at, result.raw = {}, {}, {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _fail(self.name, key_node.start_mark, "a key must be a plain word, not a list or mapping")
            key = str(key_node.value)
            if key in result:
                raise _fail(self.name, key_node.start_mark,
                            f"duplicate key '{key}' (first at line {result.key_at[key].line})")
            result[key] = self.build(value_node)
            result.key_at[key] = _where(self.name, key_node.start_mark)
            result.value_at[key] = _where(self.name, value_node.start_mark)
            if isinstance(value_node, yaml.ScalarNode):
                result.raw[key] = value_node.value
        return result
