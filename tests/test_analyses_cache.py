"""Stored analyses: each sound's analysis for the level search is kept in the cache, read back exactly as it was
worked out, never trusted when its file is damaged, and a rebuild analyses only the clips it speaks anew."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

import voiceguide
from voiceguide.cache import Cache
from voiceguide.environment import Environment
from voiceguide.errors import Location
from voiceguide.loudness import Analyses, _forecast
from voiceguide.routine import Sound
from voiceguide.sounds import Sounds
from voiceguide.units import SAMPLE_RATE

ARRAYS = {
    "energy": np.linspace(0.0, 1e9, 1001),
    "fine": np.arange(7, dtype=np.float32) / 3,
    "empty": np.zeros(0),
    "grid": np.arange(12, dtype="<i2").reshape(3, 4),
    "big-endian": np.array([1.5, -2.25], dtype=">f8"),
    "peak": np.array([32767.0]),
}


def stored_file(cache: Cache) -> Path:
    (path,) = (cache.root).rglob("*.arrays")
    return path


def assert_same(found: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(found) == list(expected)
    for name, array in expected.items():
        assert found[name].dtype == array.dtype and found[name].shape == array.shape, name
        assert found[name].tobytes() == array.tobytes(), name


def test_arrays_are_read_back_exactly_as_stored(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.arrays("analyses", "ab12") is None
    cache.put_arrays("analyses", "ab12", ARRAYS)
    found = cache.arrays("analyses", "ab12")
    assert found is not None
    assert_same(found, ARRAYS)
    assert all(array.flags.writeable for array in found.values())
    assert cache.arrays("measured", "ab12") is None  # each kind apart


def test_only_arrays_of_numbers_are_stored(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="numbers"):
        Cache(tmp_path).put_arrays("analyses", "ab12", {"words": np.array(["a", None], dtype=object)})
    assert not list(tmp_path.rglob("*.arrays"))


def flipped(data: bytes, at: int) -> bytes:
    damaged = bytearray(data)
    damaged[at] ^= 0x10
    return bytes(damaged)


DAMAGE = {
    "magic": lambda data: flipped(data, 1),
    "digest": lambda data: flipped(data, 20),
    "list": lambda data: flipped(data, 45),
    "first array": lambda data: flipped(data, 100),
    "last byte": lambda data: flipped(data, len(data) - 1),
    "truncated": lambda data: data[: len(data) // 2],
    "one byte short": lambda data: data[:-1],
    "one byte long": lambda data: data + b"\0",
    "empty": lambda data: b"",
    "garbage": lambda data: np.random.default_rng(1).bytes(len(data)),
    "zeros": lambda data: bytes(len(data)),  # what a crash before the data reached the disk can leave
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_file_is_absent_and_deleted(tmp_path: Path, damage: str) -> None:
    cache = Cache(tmp_path)
    cache.put_arrays("analyses", "ab12", ARRAYS)
    path = stored_file(cache)
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    assert cache.arrays("analyses", "ab12") is None
    assert not path.exists()


def test_clearing_the_cache_removes_stored_arrays(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put_arrays("analyses", "ab12", ARRAYS)
    cache.clear()
    assert cache.arrays("analyses", "ab12") is None
    assert not list(tmp_path.rglob("*.arrays"))


# --- analyses ------------------------------------------------------------------------------------------------------

def speech_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return np.round(np.clip(rng.normal(0, 6000, len(t)) * envelope, -32768, 32767)).astype("<i2")


@pytest.fixture
def analysed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every sound _analysis_of analysed since, in order."""
    lengths: list[int] = []
    real = _forecast._analysis_of

    def spy(samples: np.ndarray) -> _forecast._Analysis:
        lengths.append(len(samples))
        return real(samples)

    monkeypatch.setattr(_forecast, "_analysis_of", spy)
    return lengths


def assert_same_analysis(found: _forecast._Analysis, expected: _forecast._Analysis) -> None:
    for name in ("energy", "loudest"):
        ours, theirs = getattr(found, name), getattr(expected, name)
        assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes(), name
    assert found.peak == expected.peak


def test_a_stored_analysis_is_the_one_worked_out(tmp_path: Path, analysed: list[int]) -> None:
    samples = speech_like()
    computed = _forecast._analysis_of(samples)
    Analyses(Cache(tmp_path)).of("a.wav", lambda: samples)
    assert len(analysed) == 2

    def no_samples() -> np.ndarray:
        raise AssertionError("a stored analysis needs no samples")

    found = Analyses(Cache(tmp_path)).of("a.wav", no_samples)
    assert len(analysed) == 2
    assert_same_analysis(found, computed)
    # What the level search asks of it, at a gain where the limiter works and where it does not.
    for gain in (0.5, 8.0):
        assert found.energy_at(gain, 20000.0).tobytes() == computed.energy_at(gain, 20000.0).tobytes()


def test_each_source_is_stored_under_its_own_name(tmp_path: Path, analysed: list[int]) -> None:
    first, second = speech_like(seed=1), speech_like(1.5, seed=2)
    Analyses(Cache(tmp_path)).of("a.wav", lambda: first)
    found = Analyses(Cache(tmp_path)).of("b.wav", lambda: second)
    assert analysed == [len(first), len(second)]
    assert_same_analysis(found, _forecast._analysis_of(second))


@pytest.mark.parametrize("damage", ["last byte", "truncated", "garbage"])
def test_a_damaged_stored_analysis_is_worked_out_again(tmp_path: Path, analysed: list[int], damage: str) -> None:
    samples = speech_like()
    cache = Cache(tmp_path)
    Analyses(cache).of("a.wav", lambda: samples)
    path = stored_file(cache)
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    found = Analyses(cache).of("a.wav", lambda: samples)
    assert analysed == [len(samples), len(samples)]
    assert_same_analysis(found, _forecast._analysis_of(samples))
    # ... and stored again, whole.
    assert_same_analysis(Analyses(cache).of("a.wav", lambda: samples), found)
    assert len(analysed) == 3


def test_arrays_of_another_shape_are_not_taken_for_an_analysis(tmp_path: Path, analysed: list[int]) -> None:
    samples = speech_like()
    cache = Cache(tmp_path)
    cache.put_arrays("analyses", _forecast._key("a.wav"), {"energy": np.zeros(3), "loudest": np.zeros(2),
                                                          "peak": np.array([1.0])})
    assert_same_analysis(Analyses(cache).of("a.wav", lambda: samples), _forecast._analysis_of(samples))
    assert len(analysed) == 2


def test_an_analysis_stored_in_another_format_is_not_reused(tmp_path: Path, analysed: list[int],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    samples = speech_like()
    Analyses(Cache(tmp_path)).of("a.wav", lambda: samples)
    monkeypatch.setattr(_forecast, "ANALYSIS_FORMAT", _forecast.ANALYSIS_FORMAT + 1)
    Analyses(Cache(tmp_path)).of("a.wav", lambda: samples)
    assert len(analysed) == 2


def test_without_a_cache_nothing_is_stored(tmp_path: Path, analysed: list[int]) -> None:
    samples = speech_like()
    analyses = Analyses()
    analyses.of("a.wav", lambda: samples)
    analyses.of("a.wav", lambda: samples)  # once a run all the same
    assert len(analysed) == 1
    assert not list(tmp_path.rglob("*"))


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        file.writeframes(samples.tobytes())


def test_a_sound_file_edited_in_place_is_another_sound(tmp_path: Path) -> None:
    """A chime's source names what it is made from, not only its path: its stored analysis (and its pieces'
    frames and the level) are not those of the sound the file held before."""
    from voiceguide.render import sound_source

    environment = Environment(cache_dir=tmp_path / "cache")
    path = tmp_path / "ding.wav"
    write_wav(path, speech_like(0.5, seed=3))
    sound = Sound("ding.wav", Location(str(tmp_path / "r.yaml")), path)
    before = sound_source(Sounds(environment), sound)
    assert sound_source(Sounds(environment), sound) == before
    write_wav(path, speech_like(0.6, seed=4))
    assert sound_source(Sounds(environment), sound) != before
    assert sound_source(Sounds(environment), Sound("bell", sound.where)) != sound_source(
        Sounds(environment), Sound("soft", sound.where))


# --- a rebuild ------------------------------------------------------------------------------------------------------

ROUTINE = """\
title: Stored analyses
chime: bell
steps:
  - title: Reach
    id: reach
    say: Reach both arms up toward the ceiling and hold the stretch for {hold}.
    hold: 3s
  - title: Rest
    say: Lie down on your back and let your whole body rest.
    hold: 2s
"""


def build(cache: Path, target: Path, hold: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    routine = target.with_suffix(".yaml")
    routine.write_text(ROUTINE)
    environment = Environment(cache_dir=cache, bundled=Environment.from_os().bundled)
    session = voiceguide.plan_session(voiceguide.adjust(voiceguide.load(routine, environment), holds={"reach": hold}),
                                      environment=environment)
    return voiceguide.build_session(session, target).path


def clips(cache: Path) -> dict[str, int]:
    return {path.name: Cache(cache).clip(path.parent.parent.name, path.stem).length  # type: ignore[union-attr]
            for path in cache.glob("clips-*/*/*.wav")}


@pytest.mark.slow
def test_a_rebuild_analyses_only_the_line_said_anew(tmp_path: Path, analysed: list[int]) -> None:
    cache = tmp_path / "cache"
    build(cache, tmp_path / "first" / "session.mp3", "3s")
    assert len(analysed) == len(clips(cache)) + 1  # each clip, and the bell
    before = clips(cache)
    analysed.clear()
    build(cache, tmp_path / "rebuild" / "session.mp3", "4s")  # "... for four seconds.": one line said anew
    new = {name: length for name, length in clips(cache).items() if name not in before}
    assert len(new) == 1
    assert analysed == list(new.values())


@pytest.mark.slow
def test_stored_analyses_give_the_bytes_of_analyses_worked_out(tmp_path: Path, analysed: list[int]) -> None:
    """The same level search, on the same numbers: the same MP3, byte for byte."""
    stored = tmp_path / "stored"
    build(stored, tmp_path / "first" / "session.mp3", "3s")
    # Only the clips and the analyses are kept: the level is searched again, every piece encoded and measured.
    dropped = [stored / "levels", *stored.glob("frames-*"), *(kind for kind in stored.glob("arrays-*/*")
                                                            if kind.name != "analyses")]
    for folder in dropped:
        shutil.rmtree(folder)
    worked_out = tmp_path / "worked-out"
    shutil.copytree(stored, worked_out, ignore=shutil.ignore_patterns("arrays-*"))
    analysed.clear()
    with_stored = build(stored, tmp_path / "a" / "session.mp3", "3s").read_bytes()
    assert analysed == []
    without = build(worked_out, tmp_path / "b" / "session.mp3", "3s").read_bytes()
    assert len(analysed) == len(clips(worked_out)) + 1
    assert with_stored == without
