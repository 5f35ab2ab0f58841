"""Builds stopped part way: Ctrl-C at any moment, a build killed outright, a disk that fills up while the
session's files are written. What is left must be the previous session, whole, or the new one, whole."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from voiceguide import export
from voiceguide.cli import cli
from voiceguide.errors import AudioError

ROOT = Path(__file__).resolve().parent.parent
SCIATICA = ROOT / "scripts" / "sciatica-self-massage.yaml"
BOX = ROOT / "scripts" / "box-breathing.yaml"
SIDECARS = (".lrc", ".vtt", ".json", ".m3u")
# `voiceguide` as its console script starts it (from voiceguide.cli import main; main()), saying on a pipe when
# the package's front is loaded: the delays count from there. Before that Python starts up, and a Ctrl-C there
# is Python's own. SIGINT is handled as Python handles it at start: a test run as a background job has it
# ignored, which the command would inherit and, rightly, keep.
STARTER = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
           "told = int(sys.argv.pop(1)); import voiceguide; os.write(told, b'.'); "
           "from voiceguide.cli import main; main()")


def dead_pid() -> int:
    """The id of a process that has just ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# --- Ctrl-C -------------------------------------------------------------------------------------

@pytest.mark.parametrize("delay", [0.01, 0.02, 0.035, 0.05, 0.1, 0.15, 0.2, 0.4, 0.8])
def test_ctrl_c_at_any_moment_ends_with_one_line_and_130(delay: float, tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it, while the command loads its modules, starts its
    speech engines and speaks (a cache of its own, empty: every line is still to be spoken)."""
    target = tmp_path / "out" / "sciatica.mp3"
    ready, told = os.pipe()
    env = dict(os.environ, VOICEGUIDE_CACHE_DIR=str(tmp_path / "cache"))
    process = subprocess.Popen([sys.executable, "-c", STARTER, str(told), "build", str(SCIATICA), "-o", str(target),
                                "--quiet"], pass_fds=[told], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    os.close(told)
    try:
        assert os.read(ready, 1) == b"."
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.close(ready)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert (process.returncode, stdout, stderr.strip()) == (130, "", "interrupted"), stderr
    assert not target.exists()
    assert not target.parent.exists() or list(target.parent.iterdir()) == []
    # Its speech workers and encoders went with it.
    deadline = time.monotonic() + 5
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "a process of the build outlived it"
        time.sleep(0.05)


def test_the_front_loads_nothing_before_it_takes_ctrl_c_in_hand() -> None:
    """Until main installs its handler a Ctrl-C is Python's: a traceback and -2. The console script imports `re`
    and `sys`, then the package's front: that front must add nothing that takes time to load (typing, enum,
    signal's enums), so that the moment is Python's own start-up and no longer."""
    probe = ("import re, sys; before = set(sys.modules); from voiceguide.cli import main; "
             "print(' '.join(sorted(set(sys.modules) - before)))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert set(loaded) <= {"__future__", "voiceguide", "voiceguide.cli"}, loaded


# Where Python would drop a KeyboardInterrupt or be harmed by it: run as main runs a command, in a process of its own.
AT_WORK = """\
import _signal, sys, time
import voiceguide.cli as command

command._at_work = True
_signal.signal(_signal.SIGINT, command._on_ctrl_c)
sys.unraisablehook = command._unraisable
"""


def run_at_work(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", AT_WORK + code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30)


def test_ctrl_c_inside_a_finalizer_still_stops_the_command(tmp_path: Path) -> None:
    """Python drops an exception raised in a ``__del__`` (with a traceback) and goes on: Ctrl-C comes again."""
    code = """
class Closing:
    def __del__(self):
        raise KeyboardInterrupt  # as Ctrl-C arriving while the finalizer runs

try:
    Closing()
    time.sleep(5)
    print("went on")
except KeyboardInterrupt:
    print("stopped")
"""
    done = run_at_work(code, tmp_path)
    assert (done.stdout, done.stderr) == ("stopped\n", "")


def test_ctrl_c_during_an_import_waits_for_its_end(tmp_path: Path) -> None:
    """Raised inside the import machinery, KeyboardInterrupt can leave a module's lock held, and the threads
    importing that module next wait forever (a build hung so): it comes once the import is done."""
    (tmp_path / "slow_module.py").write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\n"
                                             "time.sleep(0.2)\nWHOLE = True\n")
    code = """
try:
    import slow_module
    time.sleep(5)
    print("went on")
except KeyboardInterrupt:
    print("stopped", sys.modules["slow_module"].WHOLE)
"""
    done = run_at_work(code, tmp_path)
    assert (done.stdout, done.stderr) == ("stopped True\n", "")


# --- a build killed outright --------------------------------------------------------------------

WRITER = """\
import os, sys, time
from pathlib import Path
from voiceguide import export

target = Path(sys.argv[1])
with export.atomic(target, {target.with_suffix(".lrc"): "new lyrics"}) as temp:
    temp.write_bytes(b"half a session" * 100_000)
    os.write(1, b".")
    time.sleep(120)
"""


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[list[subprocess.Popen]]:
    """Processes writing sessions through export.atomic, each stopped in the middle: killed by the test, or
    still at work when it ends (then killed then)."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def start_writer(writers: list[subprocess.Popen], target: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE)
    writers.append(process)
    assert process.stdout is not None and process.stdout.read(1) == b"."
    return process


def test_the_next_build_clears_what_a_killed_build_left_beside_its_session(tmp_path: Path,
                                                                          writers: list[subprocess.Popen]) -> None:
    folder = tmp_path / "output"
    target = folder / "box.mp3"
    killed = start_writer(writers, target)
    killed.kill()
    killed.wait()
    left = sorted(p.name for p in folder.iterdir())
    assert len(left) == 1 and left[0].startswith(f".box.mp3.{killed.pid}.") and left[0].endswith(".part")
    assert (folder / left[0]).stat().st_size > 1_000_000
    # Another build at work on the same session, one of another session killed before, files of an older
    # version (no pid in their names) fresh and an hour old, and files that are not voiceguide's.
    running = start_writer(writers, target)
    other = start_writer(writers, folder / "other.mp3")
    other.kill()
    other.wait()
    fresh, old = folder / ".box.mp3.a1b2c3d4.part", folder / ".box.mp3.e5f6g7h8.part"
    theirs = [folder / ".notes.part", folder / "box.mp3.part", folder / ".box.mp3.x.part"]
    for path in (fresh, old, *theirs):
        path.write_bytes(b"x")
    os.utime(old, (time.time() - 2 * 3600,) * 2)
    os.utime(theirs[0], (time.time() - 2 * 3600,) * 2)
    mine = sorted(p.name for p in folder.iterdir() if f".{running.pid}." in p.name)
    assert len(mine) == 1

    with export.atomic(target, {target.with_suffix(".lrc"): "lyrics"}) as temp:
        temp.write_bytes(b"a whole session")
    assert target.read_bytes() == b"a whole session" and target.with_suffix(".lrc").read_text() == "lyrics"
    # The running build's file is still there, fresh files of unknown writers too; the rest of voiceguide's is gone.
    remaining = sorted(p.name for p in folder.iterdir())
    assert remaining == sorted(["box.lrc", "box.mp3", fresh.name, *mine, *(p.name for p in theirs)])


def test_the_next_build_clears_temporary_folders_whose_process_is_gone(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    gone, here = dead_pid(), os.getpid()
    folders = {
        f"voiceguide-{gone}-abcd1234": "removed",  # a killed build's
        f"voiceguide-{here}-abcd1234": "kept",  # a build at work
        "voiceguide-old_1234": "removed",  # no pid (an older version), untouched for two hours
        "voiceguide-new_1234": "kept",  # no pid, fresh
        f"voiceguide-{gone}-nested12": "kept",  # holds a folder: not what the engines make
        "voiceguide-notes": "kept",  # not a name tempfile makes
    }
    for name in folders:
        (temporary / name).mkdir()
        (temporary / name / "0123abcd.wav").write_bytes(b"RIFF")
    (temporary / f"voiceguide-{gone}-nested12" / "inner").mkdir()
    for name in ("voiceguide-old_1234", "voiceguide-notes"):
        os.utime(temporary / name, (time.time() - 2 * 3600,) * 2)

    with export.atomic(tmp_path / "output" / "box.mp3") as temp:
        temp.write_bytes(b"a session")
    assert sorted(p.name for p in temporary.iterdir()) == sorted(n for n, fate in folders.items() if fate == "kept")


# --- a disk that fills up -----------------------------------------------------------------------

def full_disk_at(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the temporary file of ``name`` impossible to write, as on a disk with no room left for it."""
    real = tempfile.mkstemp

    def mkstemp(*args, **options):  # type: ignore[no-untyped-def]
        if str(options.get("prefix", "")).startswith(f".{name}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **options)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def session_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("failing", ["box.lrc", "box.json", "box.m3u"])
def test_a_session_and_its_sidecars_are_replaced_together_or_not_at_all(failing: str, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "box.mp3"
    texts = {target.with_suffix(suffix): f"new {suffix}" for suffix in SIDECARS}
    for path in (target, *texts):
        path.write_text(f"old {path.suffix}")
    before = session_files(tmp_path)
    full_disk_at(monkeypatch, failing)
    with pytest.raises(AudioError, match=f"cannot write {tmp_path / failing}: No space left on device"):
        with export.atomic(target, texts) as temp:
            temp.write_bytes(b"new session")
    assert session_files(tmp_path) == before
    monkeypatch.undo()
    with export.atomic(target, texts) as temp:
        temp.write_bytes(b"new session")
    assert session_files(tmp_path) == {"box.mp3": b"new session", **{p.name: t.encode() for p, t in texts.items()}}


def test_a_build_that_cannot_write_a_sidecar_keeps_the_previous_session_whole(speech_cache: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`--with lrc,vtt,json,m3u` on a disk with room for the MP3 only: the previous MP3 and sidecars stay."""
    target = tmp_path / "out" / "box.mp3"
    command = ["build", str(BOX), "-o", str(target), "--quiet", "--cache-dir", str(speech_cache), "--hold-scale"]
    first = CliRunner().invoke(cli, [*command, "0.25", "--with", "lrc,vtt,json,m3u"])
    assert first.exit_code == 0, first.output
    before = session_files(target.parent)
    assert sorted(before) == ["box.json", "box.lrc", "box.m3u", "box.mp3", "box.vtt"]
    full_disk_at(monkeypatch, "box.vtt")
    failed = CliRunner().invoke(cli, [*command, "0.5", "--with", "lrc,vtt,json,m3u"])
    assert failed.exit_code == 1, failed.output
    assert failed.stderr == f"cannot write {target.with_suffix('.vtt')}: No space left on device\n"
    assert session_files(target.parent) == before
