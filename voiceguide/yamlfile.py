"""Read a small YAML file into plain data that remembers where each value came from.

Routine and profile files are read here so that every later problem can be
reported as FILE:LINE:COL, and so that hostile files (binary data, alias bombs,
deep nesting) are refused with one line instead of a traceback.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from voiceguide.errors import Location, Problem, RoutineError, quote

MAX_BYTES = 400_000  # bytes: a sample routine is 2 KB; PyYAML reads 400 KB of anything in well under a second
# Aliases let a tiny file name the same list many times over; counting every
# value we build caps the expanded size whatever the file does.
MAX_VALUES = 100_000
# PyYAML reads a few tens of thousands of values a second: a file of more is refused as it is read, so that
# any file is answered within a second. A long routine holds a few hundred (the sample routines, about 100).
MAX_NODES = 10_000
# Values inside values, this deep at most: a routine with groups ten deep nests about 27.
MAX_DEPTH = 40
# No setting takes a number this long (12 hours is 43,200,000 ms); Python cannot even read one of 4,300 digits.
MAX_DIGITS = 20
_TOO_LONG = object()
# What YAML's tags read a value as, in words.
_KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "timestamp": "a date",
          "null": "nothing", "binary": "binary data"}


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
    loader = _Loader(text, name)
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
        if builder.refused:
            found = problems + builder.refused
            raise RoutineError(sorted(found, key=lambda problem: (problem.where.line, problem.where.column)))
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


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """The file at ``path`` as text, refused as a routine file is (not a regular file, over the size limit, not
    UTF-8, control characters) with one RoutineError: for files that are read line by line, not as YAML."""
    return _read_text(Path(path), str(path), what)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing as it reads a file too big or too deep to read in good time."""

    def __init__(self, text: str, name: str):
        super().__init__(text)
        self.name = name
        self.nodes = 0
        self.depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's name)
        # The scanner looks ahead over a run of '[' at a cost that grows with their depth: refuse it at the first
        # one too deep, before the run is read.
        if self.flow_level >= MAX_DEPTH:
            raise _fail(self.name, self.get_mark(), f"invalid YAML: values nested more than {MAX_DEPTH} deep")
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _fail(self.name, self.peek_event().start_mark,
                        f"the file holds more than {MAX_NODES} values; refusing to read it")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _fail(self.name, self.peek_event().start_mark,
                            f"invalid YAML: values nested more than {MAX_DEPTH} deep")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


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
        data = _read_bytes(path, what)
    except FileNotFoundError:
        raise fail("no such file") from None
    except PermissionError:
        raise fail("permission denied") from None
    except ValueError as error:  # a NUL in the name, or one of our own refusals
        raise fail(str(error)) from None
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
    unfit = _UNFIT.search(text)
    if unfit:
        where = _position(name, text, unfit.start())
        code = f"U+{ord(unfit.group()):04X}"
        raise RoutineError([Problem(where, f"a control character ({code}) in the file; a {what} file holds only "
                                           "printable text, tabs and line breaks")])
    return text


def _read_bytes(path: Path, what: str) -> bytes:
    """The file's bytes, refusing what is not a regular file (a pipe would hang, a device never end) and
    reading no more than the limit, whatever size the file claims."""
    kind = _kind_of(os.stat(path).st_mode)
    if kind:
        raise ValueError(f"is {kind}, not a {what} file")
    # Not blocking: a name swapped for a pipe after the check above must not hang the open.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(file.fileno())
        kind = _kind_of(status.st_mode)
        if kind:
            raise ValueError(f"is {kind}, not a {what} file")
        if status.st_size > MAX_BYTES:
            raise ValueError(f"too large for a {what} file ({status.st_size} bytes; the limit is {MAX_BYTES})")
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"too large for a {what} file (over {MAX_BYTES} bytes, the limit)")
    return data


def _kind_of(mode: int) -> str | None:
    """What a file that is not a regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


# What YAML refuses to read in a file (its reader's rule): control characters other than tab and line breaks,
# and the two non-characters of the Basic Multilingual Plane.
_UNFIT = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
# What a value may not hold: control characters but tab and line breaks, and lone surrogates (which the escape
# \ud800 in a quoted YAML string gives).
_UNFIT_VALUE = re.compile("[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uD800-\uDFFF]")
# Line breaks as YAML counts them for its marks, so that every place is reported the same way.
_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _position(name: str, text: str, index: int) -> Location:
    """The FILE:LINE:COL of ``text[index]``."""
    breaks = list(_BREAK.finditer(text, 0, index))
    start = breaks[-1].end() if breaks else 0
    return Location(name, len(breaks) + 1, index - start + 1)


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
        # Values that cannot be used at all: reported together once the file is read, before anything reads them.
        self.refused: list[Problem] = []

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
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except Exception:  # a constructor's own: a date that does not exist, `!!bool maybe`, a huge number
            if node.tag.endswith(":int") and sum(char.isdigit() for char in node.value) > MAX_DIGITS:
                # Python refuses to read a whole number of more than 4300 digits.
                value = _TOO_LONG
            else:
                kind = _KINDS.get(node.tag.rpartition(":")[2], node.tag)
                self.refuse(node, f"cannot read {quote(node.value[:60])} as {kind}; put text in quotes")
                return None
        if value is _TOO_LONG or (isinstance(value, int) and abs(value) >= 10**MAX_DIGITS):
            self.refuse(node, f"a number of more than {MAX_DIGITS} digits; no setting takes one (put text in quotes)")
            return None
        if isinstance(value, str):
            self.check_text(node, value)
        return value

    def check_text(self, node: yaml.Node, text: str) -> None:
        """Refuse characters a value cannot hold: a lone surrogate is no character at all, and a control
        character would break a file name, a message on a terminal or the voice (tabs and line breaks may
        stand in text; messages show them escaped)."""
        bad = _UNFIT_VALUE.search(text)
        if bad:
            char = bad.group()
            what = "half of a surrogate pair, not a character" if "\ud800" <= char <= "\udfff" else "a control character"
            self.refuse(node, f"this value holds U+{ord(char):04X}, {what}; remove it")

    def refuse(self, node: yaml.Node, message: str) -> None:
        self.refused.append(Problem(_where(self.name, node.start_mark), message))

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
            self.check_text(key_node, key)
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
