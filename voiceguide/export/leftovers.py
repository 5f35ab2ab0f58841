"""What killed builds leave behind, and clearing it: half-written files beside sessions, temporary folders.

A build that is killed outright (SIGKILL, a power cut) cannot remove its
temporary files. Each one's name says which process writes it, so a later
build removes those whose writer is gone, and only those: a build running at
the same time keeps its own. A temporary file or folder untouched for an hour
goes too, whatever its name says (a writer's number reused since, a name
from an older version): a live writer touches its file all the time.

Writers are told apart by process id, which means something on this computer
only: two computers building into one shared folder at once are not foreseen.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

STALE_AFTER = 3600.0  # seconds untouched after which a temporary file is a leftover, whoever wrote it
PART = ".part"  # the suffix of a file being written beside its target
FOLDER_PREFIX = "voiceguide-"  # the speech engines' temporary folders: voiceguide-PID-RANDOM
_RANDOM = "[a-z0-9_]{8}"  # what tempfile puts in a name
# .NAME.PID.RANDOM.part, the NAME a session's or sidecar's (or a temporary file's, as a build writes into one).
_PART = re.compile(rf"\..+\.(\d+)\.{_RANDOM}\.part")
_FOLDER = re.compile(rf"{FOLDER_PREFIX}(?:(\d+)-)?{_RANDOM}")


def part_prefix(target: Path) -> str:
    """How the temporary files of ``target`` begin: ``.NAME.PID.`` (then tempfile's random letters, then .part)."""
    return f".{target.name}.{os.getpid()}."


def clear_parts(targets: list[Path]) -> None:
    """Remove, in the folders of ``targets``, the temporary files of processes that are gone, and those of
    ``targets`` left untouched for an hour (their names in older versions had no pid: .NAME.RANDOM.part)."""
    for folder in {target.parent for target in targets}:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        older = [re.compile(rf"\.{re.escape(t.name)}\.{_RANDOM}\.part") for t in targets if t.parent == folder]
        for entry in entries:
            written = _PART.fullmatch(entry.name)
            if written is None and not any(name.fullmatch(entry.name) for name in older):
                continue
            if _stale(entry, int(written.group(1)) if written else None, folder=False):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass  # gone already, or not ours to remove


def clear_folders(root: Path | None = None) -> None:
    """Remove the speech engines' temporary folders (in ``root``, the system's by default) that killed builds
    left. A folder counts only if it is this user's and holds nothing but files."""
    try:
        entries = list(os.scandir(root or tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        named = _FOLDER.fullmatch(entry.name)
        if named is None:
            continue
        pid = int(named.group(1)) if named.group(1) else None
        if _stale(entry, pid, folder=True) and _only_files(entry.path):
            shutil.rmtree(entry.path, ignore_errors=True)


def _stale(entry: os.DirEntry, pid: int | None, folder: bool) -> bool:
    """Whether ``entry``, written by process ``pid`` (None: not known), is this user's and a leftover."""
    try:
        as_expected = entry.is_dir(follow_symlinks=False) if folder else entry.is_file(follow_symlinks=False)
        if not as_expected:
            return False
        stat = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    if hasattr(os, "getuid") and stat.st_uid != os.getuid():
        return False
    if pid is not None and not _alive(pid):
        return True
    return time.time() - stat.st_mtime > STALE_AFTER


def _only_files(path: str) -> bool:
    try:
        return all(entry.is_file(follow_symlinks=False) for entry in os.scandir(path))
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this computer (taken as so where that cannot be asked safely)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return True  # there os.kill(pid, 0) would end it: only the age of its files counts
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: it runs
    return True
