"""The project's exceptions: the core raises these, the CLI turns them into messages."""

from __future__ import annotations

from dataclasses import dataclass


class VoiceguideError(Exception):
    """Base of every error voiceguide reports to a user.

    ``exit_code`` follows the CLI's convention: 2 for bad input or usage,
    1 for anything else that went wrong.
    """

    exit_code = 1

    def lines(self) -> list[str]:
        """The message as the lines a user sees, one problem per line."""
        return [printable(str(self))]


def printable(text: str) -> str:
    """``text`` with every character a terminal would not show as itself escaped as Python does (``\\n``,
    ``\\x07``, ``\\u200b``), so that a value quoted in a message keeps the message on one line and shows what the
    file really holds."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def quote(text: str) -> str:
    """A value from a file as messages show it: in single quotes, on one line (see printable)."""
    return f"'{printable(text)}'"


@dataclass(frozen=True)
class Location:
    """Where a value sits in a file; line and column count from 1."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        # A file name may hold a line break too; the message must stay on one line.
        if self.line:
            return f"{printable(self.path)}:{self.line}:{self.column}"
        return printable(self.path)


@dataclass(frozen=True)
class Problem:
    where: Location
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {printable(self.message)}"


class InputError(VoiceguideError):
    """Bad input from the user: a routine or profile file, or an option."""

    exit_code = 2


class RoutineError(InputError):
    """One or more problems found in a routine or profile file."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class EngineError(VoiceguideError):
    """A speech engine is missing, misconfigured or failed."""


class EngineTimeout(EngineError):
    """A speech engine gave no answer within the time one line may take."""


class EngineUnavailable(InputError):
    """A known engine whose optional packages are not installed; the message says what to install."""


class VoiceError(InputError):
    """The requested voice does not exist for the engine."""


class AudioError(VoiceguideError):
    """Decoding, encoding or writing audio failed."""


class ServeError(VoiceguideError):
    """The session server cannot start, for example because its port is taken."""


def after_ctrl_c(error: BaseException) -> bool:
    """Whether ``error`` was raised while a KeyboardInterrupt was being handled: while undoing what Ctrl-C
    stopped (an encoder that Ctrl-C ended too), so that it is reported as Ctrl-C, not as a failure."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
