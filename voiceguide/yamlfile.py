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


class YMap(dict[str, Any]):
    """A mapping that knows where it, each key and each value sit in the file."""

    where: Location
    key_at: dict[str, Location]
    value_at: dict[str, Location]
    raw: dict[str, str]

    def at(self, key: str) -> Location:
        return self.value_at.get(key, self.where)


class YList(list[Any]):
    """A sequence that knows where it and each item sit in the file."""

    where: Location
    item_at: list[Location]
    raw: list[str | None]


def read_yaml(path: str | os.PathLike[str], what: str, problems: list[Problem]) -> tuple[Any, Location]:
    """Parse the file at ``path``; return its top value and its location.

    Problems that do not stop reading (duplicate keys) are added to
    ``problems``; anything that stops parsing raises RoutineError.
    """
    name = str(path)
    text = _read_text(Path(path), name, what)
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.composer.ComposerError as error:
            if "expected a single document" in str(error.context):
                raise _fail(name, error.problem_mark, f"a {what} file holds one YAML document; found a second one") from None
            raise
        if node is None:
            raise RoutineError([Problem(Location(name), f"the file is empty; a {what} file needs {_needs(what)}")])
        builder = _Builder(name, loader, problems)
        value = builder.build(node)
    except yaml.MarkedYAMLError as error:
        mark, detail = _explain(error)
        raise _fail(name, mark, f"invalid YAML: {detail}") from None
    except yaml.YAMLError as error:
        raise RoutineError([Problem(Location(name), f"invalid YAML: {error}")]) from None
    except RecursionError:
        raise RoutineError([Problem(Location(name), "invalid YAML: values nested too deeply")]) from None
    finally:
        loader.dispose()
    return value, _where(name, node.start_mark)


def _explain(error: yaml.MarkedYAMLError) -> tuple[yaml.Mark | None, str]:
    """Where and what went wrong, in words a person writing YAML by hand understands."""
    context, problem = error.context or "", error.problem or ""
    opened = error.context_mark or error.problem_mark
    if "quoted scalar" in context and "end of stream" in problem:
        return opened, "this quoted text is never closed"
    if context.startswith("while parsing a flow sequence"):
        return opened, "this '[' is never closed"
    if context.startswith("while parsing a flow mapping"):
        return opened, "this '{' is never closed"
    if problem.startswith("expected <block end>"):
        return error.problem_mark, "this line is indented differently from the lines above it"
    if "'\\t'" in problem or "\t" in problem:
        return error.problem_mark, "a tab here; indent with spaces"
    if problem.startswith("mapping values are not allowed"):
        return error.problem_mark, "unexpected ':' here; put text containing ': ' in quotes"
    return error.problem_mark or error.context_mark, problem or context or "invalid YAML"


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
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data[: error.start].count(b"\n") + 1
        column = len(data[line_start : error.start].decode("utf-8", errors="replace")) + 1
        where = Location(name, line, column)
        raise RoutineError([Problem(where, f"not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8")]) from None
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
    def __init__(self, name: str, loader: yaml.SafeLoader, problems: list[Problem]):
        self.name = name
        self.loader = loader
        self.problems = problems
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
        own = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
        self.loader.flatten_mapping(node)
        # flatten_mapping puts the pairs of `<<: *anchor` first; the mapping's own keys override them.
        merged = len(node.value) - own
        result = YMap()
        result.where = _where(self.name, node.start_mark)
        result.key_at, result.value_at, result.raw = {}, {}, {}
        own_keys: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                raise _fail(self.name, key_node.start_mark, "a key must be a plain word, not a list or mapping")
            key = str(key_node.value)
            if index >= merged:
                if key in own_keys:
                    # Reported, and reading goes on so the file's other problems are found too.
                    first = result.key_at[key].line
                    self.problems.append(Problem(_where(self.name, key_node.start_mark), f"duplicate key '{key}' (first at line {first})"))
                    continue
                own_keys.add(key)
            result[key] = self.build(value_node)
            result.key_at[key] = _where(self.name, key_node.start_mark)
            result.value_at[key] = _where(self.name, value_node.start_mark)
            if isinstance(value_node, yaml.ScalarNode):
                result.raw[key] = value_node.value
        return result
