"""Routines from other tools: a w2a workout or an audio_program_generator phrase file, read and written out as
a voiceguide routine file, with every duration kept and a note for each thing that cannot be carried over."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voiceguide.errors import InputError, Location, Problem, RoutineError, VoiceguideError
from voiceguide.importing import _apg, _w2a
from voiceguide.importing._shared import Draft, Reading
from voiceguide.yamlfile import read_text

__all__ = ["FORMATS", "Imported", "import_file", "save"]

# The formats by the name `--from` takes, with what each is called in messages.
FORMATS = {"w2a": _w2a.KIND, "apg": _apg.KIND}
_READERS: dict[str, Callable[[str, str], tuple[Draft, Reading]]] = {"w2a": _w2a.read, "apg": _apg.read}
_W2A = re.compile(r"^exercises\s*:", re.M)


@dataclass(frozen=True)
class Imported:
    """A routine read from another tool's file."""

    text: str  # the routine file, YAML with comments
    source: str  # the format it was read from: a key of FORMATS
    steps: int
    lost: tuple[Problem, ...]  # what could not be carried over, each at its place in the source

    def save(self, target: str | os.PathLike[str], replace: bool = False) -> None:
        """Write the routine file at ``target`` atomically; an existing file is replaced only with ``replace``."""
        save(self.text, target, replace)


def import_file(path: str | os.PathLike[str], source: str | None = None) -> Imported:
    """Read the file at ``path``, of the format ``source`` (a key of FORMATS; by default told from its
    content, then its name), as a voiceguide routine. Bad input raises RoutineError, every problem at its
    FILE:LINE:COL."""
    name = str(path)
    text = read_text(path, "workout or phrase")
    source = source or _detect(name, text)
    if source not in _READERS:
        raise InputError(f"unknown format '{source}'; choose from {', '.join(FORMATS)}")
    draft, reading = _READERS[source](name, text)
    reading.lost.sort(key=lambda lost: (lost.where.line, lost.where.column))
    if reading.lost:
        draft.header += ["", "Not carried over:"] + [f"  line {p.where.line}: {p.message}" for p in reading.lost]
    return Imported(draft.text(), source, len(draft.steps), tuple(reading.lost))


def _detect(name: str, text: str) -> str:
    """The format of a file: from what it holds, else from its name's suffix."""
    if _W2A.search(text):
        return "w2a"
    if _apg.looks_like(text):
        return "apg"
    suffix = Path(name).suffix.casefold()
    if suffix in (".yaml", ".yml"):
        return "w2a"
    if suffix == ".txt":
        return "apg"
    raise RoutineError([Problem(Location(name, 1, 1), "cannot tell what this file is: voiceguide imports w2a "
                                                      "workouts (YAML with 'exercises') and audio_program_generator "
                                                      "phrase files ('phrase; seconds' lines); name one with --from")])


def save(text: str, target: str | os.PathLike[str], replace: bool = False) -> None:
    """Write a routine file at ``target`` atomically: whole, or not at all. An existing file is replaced only
    with ``replace``; without it, one that appears while this writes is kept too (the file is linked into
    place, which fails where a name is taken)."""
    path = Path(target)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; name the routine file to write")
    if path.exists() and not replace:
        raise InputError(f"{path}: exists; give --force to replace it")
    temp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o666 & ~_umask())
        if replace:
            os.replace(temp, path)
        else:
            _link(temp, path)
    except FileExistsError:
        raise InputError(f"{path}: exists; give --force to replace it") from None
    except OSError as error:
        raise VoiceguideError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _link(temp: str, path: Path) -> None:
    """Put ``temp`` at ``path`` unless a file is there; a folder on a file system without hard links falls
    back to a check and a rename."""
    try:
        os.link(temp, path)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
        os.replace(temp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
