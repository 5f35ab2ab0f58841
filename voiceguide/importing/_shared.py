"""What the readers of other tools' files share: the problems and losses they note, and the routine file they
write, as YAML dumped by PyYAML with comments between its parts."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from voiceguide.errors import Location, Problem, RoutineError, printable, quote
from voiceguide.routine.checker import slug
from voiceguide.routine.model import MAX_LINE_CHARS, RESERVED_IDS, speakable

# Chapter titles made from spoken phrases stop at a word boundary about this long.
TITLE_CHARS = 60


@dataclass
class Reading:
    """What a reader found in its source: problems, which stop the import, and what it could not carry over."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    lost: list[Problem] = field(default_factory=list)

    def problem(self, where: Location, message: str) -> None:
        self.problems.append(Problem(where, message))

    def lose(self, where: Location, message: str) -> None:
        self.lost.append(Problem(where, message))

    def at(self, line: int, column: int) -> Location:
        return Location(self.path, line, column)

    def stop_if_wrong(self) -> None:
        """Raise RoutineError with every problem found, in the order of the file."""
        if self.problems:
            raise RoutineError(sorted(self.problems, key=lambda p: (p.where.line, p.where.column)))

    def spoken(self, text: str, where: Location, what: str) -> str | None:
        """``text`` as a line of a routine (braces doubled, since voiceguide reads ``{name}`` as a template),
        or None and a problem if voiceguide could not speak it."""
        text = text.strip()
        if len(text) > MAX_LINE_CHARS:
            self.problem(where, f"{what}: a line of {len(text)} characters; voiceguide speaks at most "
                                f"{MAX_LINE_CHARS} at once (split it into several)")
            return None
        if not speakable(text):
            self.problem(where, f"{what}: nothing to say in {quote(text)}; a line needs a letter or a digit")
            return None
        return escape(text)


def escape(text: str) -> str:
    """Text with its braces doubled: literal in a voiceguide template."""
    return text.replace("{", "{{").replace("}", "}}")


def duration_text(ms: int) -> str:
    """A duration as a routine file writes it, exact to the millisecond: 30s, 1m30s, 22.5s, 90.25s."""
    if ms % 1000:
        return f"{Decimal(ms) / 1000:f}".rstrip("0") + "s"
    minutes, seconds = divmod(ms // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n) or "0s"


def title_from_name(path: str) -> str:
    """A routine's title made from its source's file name: ``leg-day_workout.yaml`` gives "Leg day workout"."""
    words = " ".join(re.split(r"[-_\s]+", Path(path).stem)).strip()
    if not speakable(words):
        return "Imported routine"
    return words[0].upper() + words[1:]


def short_title(text: str) -> str:
    """A chapter title for a step named by what it says: the line itself, or its start up to a word."""
    text = " ".join(text.split())
    if len(text) <= TITLE_CHARS:
        return text
    cut = text.rfind(" ", 0, TITLE_CHARS)
    return text[: cut if cut > TITLE_CHARS // 2 else TITLE_CHARS].rstrip(" ,;:.") + "…"


@dataclass
class Draft:
    """The routine being written: its settings, then its steps, each with the comment that says where it came
    from. Ids are given only where voiceguide would not make a unique one from the title."""

    header: list[str]
    settings: dict[str, Any]
    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    ids: set[str] = field(default_factory=lambda: set(RESERVED_IDS))

    def step(self, comment: str, title: str, **keys: Any) -> None:
        """Add a step; ``keys`` are its voiceguide keys with ``_`` for ``-`` (None leaves one out)."""
        made = slug(title) or "step"  # the id voiceguide makes from the title
        # Letters with accents keep their base letter (Seitstütz: seitstutz, not seitst-tz), for --hold.
        wanted = slug(unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()) or made
        step_id, count = wanted, 1
        while step_id in self.ids:
            count += 1
            step_id = f"{wanted}-{count}"
        self.ids.add(step_id)
        step: dict[str, Any] = {"title": title}
        if step_id != made:
            step["id"] = step_id
        for key, value in keys.items():
            if value is not None:
                step[key.replace("_", "-")] = value
        self.steps.append((comment, step))

    def text(self) -> str:
        """The routine file: the header as comments, the settings, the steps, each after its comment."""
        parts = [_comment(line) for line in self.header]
        parts.append(_dump(self.settings))
        parts.append("steps:\n")
        for comment, step in self.steps:
            parts.append(_indent(_comment(comment)))
            parts.append(_indent(_dump([step])))
        text = "".join(parts)
        # Pieces dumped apart and joined must still read as the one routine they stand for.
        expected = dict(self.settings, steps=[step for _, step in self.steps])
        assert yaml.safe_load(text) == expected, "the imported routine does not read back as written"
        return text


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096)


def _comment(line: str) -> str:
    # printable() keeps a file name with a line break in it on its comment line.
    return f"# {printable(line)}\n" if line else "#\n"


def _indent(text: str) -> str:
    """A block of YAML moved two spaces right, under `steps:`; relative indentation is all YAML reads."""
    return "".join(f"  {line}" if line.strip() else line for line in text.splitlines(keepends=True))
