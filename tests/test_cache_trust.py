"""Nothing in the cache is taken on trust: a stored file that was changed, cut short, lengthened, replaced by a
folder or filled with bytes that are not text is made again, and the build writes the same MP3, byte for byte,
as from a clean cache. A cache that cannot be written costs one note and nothing else; `cache clear` always
brings a broken cache back.

Each test copies a cache filled by one build of a small routine, damages it, builds again in this process and
compares the MP3 with the first.
"""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voiceguide.cache import Cache, Encoded
from voiceguide.cli import cli
from voiceguide.environment import CACHE_ENV
from voiceguide.mp3 import _silence

ROUTINE = """\
title: Trust
intro: Sit tall.
steps:
  - title: In
    say: Breathe in.
    hold: 1.5s
  - title: Out
    say: Breathe out slowly.
    hold: 1s
outro: Done.
"""
# What a build reads from the stored things above it: forgetting these makes it use the clips and sounds again.
DOWNSTREAM = ("frames-*", "levels")


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def build(routine: Path, cache: Path, target: Path) -> Result:
    return run("build", routine, "-o", target, "--quiet", "--cache-dir", cache)


@pytest.fixture(autouse=True)
def fresh_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    """The silent frame is read from the cache once a process: each build here reads it as a new process would."""
    monkeypatch.setattr(_silence, "_silences", {})


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """The routine, the cache one build filled, and the MP3 it wrote."""
    folder = tmp_path_factory.mktemp("trust")
    routine = folder / "trust.yaml"
    routine.write_text(ROUTINE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_silence, "_silences", {})
        result = build(routine, folder / "cache", folder / "first.mp3")
    assert result.exit_code == 0, result.output
    return routine, folder / "cache", (folder / "first.mp3").read_bytes()


def copied(first: tuple[Path, Path, bytes], tmp_path: Path, forget: tuple[str, ...] = ()) -> Path:
    """A copy of the first build's cache, without the folders named in ``forget``."""
    cache = tmp_path / "cache"
    shutil.copytree(first[1], cache, ignore=shutil.ignore_patterns(*forget))
    return cache


def stored(cache: Path, pattern: str) -> list[Path]:
    found = sorted(path for path in cache.glob(pattern) if path.is_file())
    assert found, f"nothing stored as {pattern}"
    return found


def assert_same_mp3(first: tuple[Path, Path, bytes], cache: Path, tmp_path: Path) -> Result:
    """Build again over ``cache``: it must succeed, and write what the first build wrote."""
    target = tmp_path / "again.mp3"
    result = build(first[0], cache, target)
    assert result.exit_code == 0, result.output
    assert "internal error" not in result.output
    assert target.read_bytes() == first[2], "another MP3 from a damaged cache"
    return result


# --- ways to damage a file -------------------------------------------------------------------------------------

def flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[min(len(data) - 1, int(len(data) * at))] ^= 0x01
    path.write_bytes(bytes(data))


def cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) * 2 // 3])


def lengthen(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\x00garbage" * 7)


def folder(path: Path) -> None:
    path.unlink()
    (path / "inside").mkdir(parents=True)


def not_text(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\x80 not UTF-8 \xc3\x28")


DAMAGE: dict[str, Callable[[Path], None]] = {
    "flipped": flip, "flipped header": lambda path: flip(path, 0.01), "flipped end": lambda path: flip(path, 1.0),
    "cut": cut, "lengthened": lengthen, "folder": folder, "not text": not_text,
}
# Each kind of stored thing is tried with one byte changed in every run, and with every damage in a slow one.
DAMAGES = [pytest.param(name, marks=[] if name == "flipped" else [pytest.mark.slow]) for name in sorted(DAMAGE)]


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("kind", ["clips-*/*/*.wav", "sounds-*/*/*.wav"])
def test_a_damaged_clip_or_sound_is_made_again(first: tuple[Path, Path, bytes], tmp_path: Path, kind: str,
                                               damage: str) -> None:
    cache = copied(first, tmp_path, DOWNSTREAM)  # so that the build mixes the sounds again
    for path in stored(cache, kind):
        DAMAGE[damage](path)
    assert_same_mp3(first, cache, tmp_path)


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_frames_are_encoded_again(first: tuple[Path, Path, bytes], tmp_path: Path, damage: str) -> None:
    cache = copied(first, tmp_path)
    for path in stored(cache, "frames-*/*/*"):
        DAMAGE[damage](path)
    assert_same_mp3(first, cache, tmp_path)


def test_a_level_with_another_gain_is_not_taken(first: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    cache = copied(first, tmp_path, ("frames-*",))
    for path in stored(cache, "levels/*"):
        text = path.read_text()
        louder = re.sub(r'("gain": )(\d)', lambda match: match[1] + str((int(match[2]) + 3) % 10), text)
        assert louder != text
        path.write_text(louder)
    assert_same_mp3(first, cache, tmp_path)


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_levels_are_found_again(first: tuple[Path, Path, bytes], tmp_path: Path, damage: str) -> None:
    cache = copied(first, tmp_path, ("frames-*",))
    for path in stored(cache, "levels/*"):
        DAMAGE[damage](path)
    assert_same_mp3(first, cache, tmp_path)


def test_a_silent_frame_with_garbage_after_its_header_is_asked_again(first: tuple[Path, Path, bytes],
                                                                       tmp_path: Path) -> None:
    cache = copied(first, tmp_path)
    (path,) = stored(cache, "answers/silence-*")
    lines = path.read_text().splitlines()
    frame = lines[-1]
    lines[-1] = frame[:8] + "a5" * (len(frame) // 2 - 4)  # a valid header, the length it gives, garbage after it
    path.write_text("\n".join(lines))
    assert_same_mp3(first, cache, tmp_path)


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_answers_about_installed_software_are_asked_again(first: tuple[Path, Path, bytes], tmp_path: Path,
                                                                  damage: str) -> None:
    cache = copied(first, tmp_path)
    for path in stored(cache, "answers/*"):
        DAMAGE[damage](path)
    assert_same_mp3(first, cache, tmp_path)


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_arrays_are_worked_out_again(first: tuple[Path, Path, bytes], tmp_path: Path, damage: str) -> None:
    cache = copied(first, tmp_path, DOWNSTREAM)
    for path in stored(cache, "arrays-*/*/*/*"):
        DAMAGE[damage](path)
    assert_same_mp3(first, cache, tmp_path)


@pytest.mark.parametrize("where", ["frames-*", "clips-*/*", "levels", "answers", "arrays-*/analyses"])
def test_a_file_where_a_cache_folder_goes_is_replaced(first: tuple[Path, Path, bytes], tmp_path: Path,
                                                      where: str) -> None:
    cache = copied(first, tmp_path)
    shutil.rmtree(cache / "levels")  # so that the build stores something
    for path in cache.glob(where):
        shutil.rmtree(path, ignore_errors=True)
        path.write_bytes(b"not a folder")
    result = assert_same_mp3(first, cache, tmp_path)
    assert "note:" not in result.stderr  # a file in our place is ours to replace
    again = assert_same_mp3(first, cache, tmp_path)
    assert again.stderr == ""


# --- a cache that cannot be written -----------------------------------------------------------------------------

def one_note(result: Result, cache: Path) -> str:
    """The one line a build says about a cache it cannot write: it names the cache."""
    lines = [line for line in result.stderr.splitlines() if not line.startswith("loudness")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"note: cannot write the cache at {cache} ("), lines[0]
    assert "internal error" not in result.output and str(cache.parent / "again.mp3") not in lines[0]
    return lines[0]


@pytest.mark.parametrize("given", ["--cache-dir", CACHE_ENV])
@pytest.mark.parametrize("place", ["a file", "under a file"])
def test_a_cache_path_that_is_a_file_costs_one_note(first: tuple[Path, Path, bytes], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, place: str, given: str) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    cache = tmp_path / "file" if place == "a file" else tmp_path / "file" / "cache"
    target = tmp_path / "again.mp3"
    if given == CACHE_ENV:
        monkeypatch.setenv(CACHE_ENV, str(cache))
        result = run("build", first[0], "-o", target, "--quiet")
    else:
        result = build(first[0], cache, target)
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == first[2]
    one_note(result, cache)
    assert (tmp_path / "file").read_text() == "a file, not a folder"


@pytest.mark.parametrize("after", [0, 5])
def test_a_full_disk_costs_one_note(first: tuple[Path, Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    after: int) -> None:
    """Every write into the cache fails for want of space (after the first ``after``): the build goes on, and
    writes its MP3 where it was asked to."""
    cache = tmp_path / "cache"
    real = os.replace
    written: list[str] = []

    def replace(source: str | os.PathLike, target: str | os.PathLike) -> None:
        if Path(target).is_relative_to(cache):
            if len(written) >= after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
            written.append(str(target))
        real(source, target)

    monkeypatch.setattr(os, "replace", replace)
    result = assert_same_mp3(first, cache, tmp_path)
    assert "No space left on device" in one_note(result, cache)
    assert not [path for path in cache.rglob("*.tmp")], "no temporary file is left behind"


def test_a_cache_folder_that_cannot_be_written_costs_one_note(first: tuple[Path, Path, bytes],
                                                             tmp_path: Path) -> None:
    """Every folder of the cache read-only (chmod stops no one running as root: the full disk above stands in
    for it there)."""
    if os.geteuid() == 0:
        pytest.skip("root reads and writes any folder")
    cache = copied(first, tmp_path, DOWNSTREAM)  # so that the build has something to store
    for path in [*cache.rglob("*"), cache]:
        path.chmod(0o500 if path.is_dir() else 0o400)
    try:
        one_note(assert_same_mp3(first, cache, tmp_path), cache)
    finally:
        for path in [cache, *cache.rglob("*")]:
            path.chmod(0o700)


# --- cache clear ------------------------------------------------------------------------------------------------

def test_cache_clear_takes_damaged_answers_old_layouts_included(first: tuple[Path, Path, bytes],
                                                                tmp_path: Path) -> None:
    cache = copied(first, tmp_path)
    for path in stored(cache, "answers/*"):
        not_text(path)
    folder(next(cache.glob("answers/silence-*")))
    # Where older versions kept their answers.
    for old in ("tools/ffmpeg-0123.txt", "engines/entry-points-0123.json"):
        (cache / old).parent.mkdir()
        (cache / old).write_bytes(b"\xff\xfe not UTF-8")
    (cache / "mine.txt").write_text("not voiceguide's")
    cleared = run("cache", "clear", "--cache-dir", cache)
    assert cleared.exit_code == 0, cleared.output
    assert sorted(path.name for path in cache.iterdir()) == ["mine.txt"]
    assert_same_mp3(first, cache, tmp_path)


@pytest.mark.parametrize("given", ["--cache-dir", CACHE_ENV])
def test_cache_info_and_clear_name_a_cache_that_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          given: str) -> None:
    cache = tmp_path / "cache"
    cache.write_text("a file")
    monkeypatch.setenv(CACHE_ENV, str(cache))
    for command in ("info", "clear"):
        result = run("cache", command, *(("--cache-dir", cache) if given == "--cache-dir" else ()))
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.splitlines()
        assert str(cache) in line and "internal error" not in line
    assert cache.read_text() == "a file"


# --- clips --------------------------------------------------------------------------------------------------------

def test_a_stored_clip_is_a_wav_and_is_checked_again_when_its_samples_are_read(tmp_path: Path) -> None:
    import wave

    import numpy as np

    from voiceguide.cache import CacheError

    samples = (np.arange(1000) % 300 - 150).astype("<i2")
    cache = Cache(tmp_path)
    cache.put_clip("clips-x", "ab12", samples)
    clip = cache.clip("clips-x", "ab12")
    assert clip is not None and clip.length == 1000
    with wave.open(str(clip.path), "rb") as file:  # a WAV any player reads: the check is a chunk it skips
        assert file.readframes(file.getnframes()) == samples.tobytes()
    assert clip.samples().tobytes() == samples.tobytes()
    flip(clip.path)  # after the build took it: it cannot be made again then, so the build stops, naming the cache
    with pytest.raises(CacheError, match=f"the cache at {re.escape(str(tmp_path))} changed"):
        clip.samples()


# --- builds that share a cache ---------------------------------------------------------------------------------

def test_an_item_stored_by_two_at_once_is_always_read_whole(tmp_path: Path) -> None:
    """Two stores over one folder (two builds) write the same piece over and over while a third reads it: each
    read gives one of the two, whole, and the file left at the end is whole."""
    pieces = [Encoded(bytes([n]) * 20_000, n, n) for n in (1, 2)]
    stores = [Cache(tmp_path), Cache(tmp_path), Cache(tmp_path)]
    stores[0].put_frames("ab12", pieces[0])
    until = time.monotonic() + 0.5
    found: list[Encoded | None] = []

    def write(n: int) -> None:
        while time.monotonic() < until:
            stores[n].put_frames("ab12", pieces[n])

    writers = [threading.Thread(target=write, args=(n,)) for n in (0, 1)]
    for writer in writers:
        writer.start()
    while time.monotonic() < until:
        found.append(stores[2].frames("ab12"))
    for writer in writers:
        writer.join()
    assert found and all(item in pieces for item in found)
    assert Cache(tmp_path).frames("ab12") in pieces
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_two_builds_at_once_into_one_empty_cache(first: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    builds = [subprocess.Popen([sys.executable, "-m", "voiceguide", "build", str(first[0]), "-o", str(tmp_path / f"{n}.mp3"),
                                "--quiet", "--cache-dir", str(cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL) for n in range(2)]
    for n, build_ in enumerate(builds):
        out, err = build_.communicate(timeout=120)
        assert build_.returncode == 0 and "note" not in err, err
        assert (tmp_path / f"{n}.mp3").read_bytes() == first[2]
    assert_same_mp3(first, cache, tmp_path)  # and what they left is whole


# --- any damage, anywhere ---------------------------------------------------------------------------------------

RANDOM_DAMAGE: dict[str, Callable[[Path, random.Random], None]] = {
    "flip": lambda path, rng: flip(path, rng.random()),
    "cut": lambda path, rng: path.write_bytes(path.read_bytes()[: rng.randrange(max(1, path.stat().st_size))]),
    "lengthen": lambda path, rng: path.write_bytes(path.read_bytes() + rng.randbytes(rng.randrange(1, 300))),
    "zeros": lambda path, rng: path.write_bytes(bytes(path.stat().st_size)),
    "empty": lambda path, rng: path.write_bytes(b""),
    "garbage": lambda path, rng: path.write_bytes(rng.randbytes(path.stat().st_size)),
    "folder": lambda path, rng: folder(path),
    "not text": lambda path, rng: not_text(path),
    "parent is a file": lambda path, rng: (shutil.rmtree(path.parent), path.parent.write_bytes(b"x")),
}


def test_no_damage_gives_another_mp3_or_an_internal_error(first: tuple[Path, Path, bytes], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20250611)
    files = sorted(path.relative_to(first[1]) for path in first[1].rglob("*") if path.is_file())
    for trial in range(30):
        monkeypatch.setattr(_silence, "_silences", {})
        place = tmp_path / str(trial)
        forget = DOWNSTREAM if rng.random() < 0.5 else ()
        cache = copied(first, place, forget)
        chosen = [name for name in files if (cache / name).is_file()]
        name = rng.choice(chosen)
        damage = rng.choice(sorted(RANDOM_DAMAGE))
        RANDOM_DAMAGE[damage](cache / name, rng)
        target = place / "again.mp3"
        result = build(first[0], cache, target)
        trial_name = f"trial {trial}: {damage} {name}, forgetting {forget}"
        assert "internal error" not in result.output, trial_name
        if result.exit_code == 0:
            assert target.read_bytes() == first[2], trial_name
        else:  # allowed only as one line that names the cache
            assert result.exit_code == 2 and str(cache) in result.stderr, (trial_name, result.output)
            assert len(result.stderr.strip().splitlines()) == 1, (trial_name, result.output)
        shutil.rmtree(place)
