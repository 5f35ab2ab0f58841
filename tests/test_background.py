"""The background bed: the routine format, seamless loops, fades and ducking, and what the built MP3 holds."""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import numpy as np
import pytest
from audio_probe import decode, loudness
from click.testing import CliRunner
from test_phone import ebur128

from voiceguide.cli import cli
from voiceguide.environment import Environment
from voiceguide.errors import Location
from voiceguide.render.bed import LOOP_LENGTH, Bed, loop_of, looped
from voiceguide.routine import Background, load_routine
from voiceguide.units import SAMPLE_RATE

ENGINES = ["pyttsx3", "piper"]  # the engines a routine may name
TONE_HZ = 56  # under the lowest harmonic of the voice, so the bed can be measured while words are spoken

ROUTINE = """\
title: Bed test
chime: none
background:
  sound: {sound}
  level: {level}
  fade: 1s
  duck: {duck}
steps:
  - title: One
    say: Lie on your back with your knees bent and your feet flat on the floor, and let your arms rest by your sides.
    hold: 6s
  - title: Two
    say: Now slowly bring your right knee toward your chest and hold it there with both hands while you breathe.
    hold: 6s
"""


def write_tone(path: Path, seconds: float = 2.0) -> None:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(np.round(8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2").tobytes())


def build(tmp_path: Path, cache: Path, sound: str = "tone.wav", level: str = "-12dB",
          duck: str = "{depth: 12dB, attack: 200ms, release: 500ms}") -> tuple[np.ndarray, dict, str]:
    write_tone(tmp_path / "tone.wav")
    routine = tmp_path / "bed.yaml"
    routine.write_text(ROUTINE.format(sound=sound, level=level, duck=duck))
    output = tmp_path / "bed.mp3"
    result = CliRunner().invoke(cli, ["build", str(routine), "-o", str(output), "-q", "--cache-dir", str(cache),
                                      "--with", "json"])
    assert result.exit_code == 0, result.stderr
    plan = json.loads(output.with_suffix(".json").read_text())
    return decode(output), plan, result.stderr


def tone_db(samples: np.ndarray, start: float, length: float = 1.0) -> float:
    """Level of the TONE_HZ component over ``length`` seconds from ``start``, in dB."""
    part = samples[round(start * SAMPLE_RATE): round((start + length) * SAMPLE_RATE)].astype(np.float64)
    window = np.hanning(len(part))
    spectrum = np.abs(np.fft.rfft(part * window)) * 2 / window.sum()
    frequencies = np.fft.rfftfreq(len(part), 1 / SAMPLE_RATE)
    near = (frequencies > TONE_HZ - 2) & (frequencies < TONE_HZ + 2)
    return 20 * math.log10(max(float(spectrum[near].max()), 1e-9) / 32768)


def rms_db(samples: np.ndarray, start: float, end: float) -> float:
    part = samples[round(start * SAMPLE_RATE): round(end * SAMPLE_RATE)].astype(np.float64)
    return 10 * math.log10(max(float(np.mean(part**2)), 1e-12) / 32768**2)


def events(plan: dict, kind: str) -> list[dict]:
    return [e for e in plan["events"] if e["kind"] == kind]


# --- the routine format ---------------------------------------------------------------------------------


def test_background_shorthand_and_full_form(tmp_path: Path) -> None:
    short = tmp_path / "short.yaml"
    short.write_text("title: T\nbackground: drone\nsteps:\n  - title: A\n    say: Hi.\n    hold: 3s\n")
    bed = load_routine(short, ENGINES).background
    assert bed is not None and (bed.name, bed.path, bed.level, bed.depth) == ("drone", None, -20.0, 10.0)
    write_tone(tmp_path / "tone.wav")
    full = tmp_path / "full.yaml"
    full.write_text(ROUTINE.format(sound="tone.wav", level="-18 dB", duck="{depth: 6, attack: 0.1s, release: 2s}"))
    bed = load_routine(full, ENGINES).background
    assert bed is not None
    assert (bed.path, bed.level, bed.fade, bed.depth, bed.attack, bed.release) == (
        tmp_path / "tone.wav", -18.0, 1000, 6.0, 100, 2000)
    off = tmp_path / "off.yaml"
    off.write_text(ROUTINE.format(sound="rain", level="-20dB", duck="false"))
    assert load_routine(off, ENGINES).background.depth == 0.0


@pytest.mark.slow
def test_plan_names_the_background(tmp_path: Path, speech_cache: Path) -> None:
    routine = tmp_path / "bed.yaml"
    routine.write_text(ROUTINE.format(sound="rain", level="-22dB", duck="{depth: 9dB}"))
    result = CliRunner().invoke(cli, ["plan", str(routine), "--cache-dir", str(speech_cache)])
    assert result.exit_code == 0, result.stderr
    assert "background: rain, 22 dB under the speech, another 9 dB lower" in result.stdout
    as_json = CliRunner().invoke(cli, ["plan", str(routine), "--json", "--cache-dir", str(speech_cache)])
    assert json.loads(as_json.stdout)["background"] == {
        "sound": "rain", "level": -22.0, "fade": 1.0, "duck": {"depth": 9.0, "attack": 0.3, "release": 1.0}}


def test_a_sound_file_that_is_not_audio_is_one_line(tmp_path: Path, speech_cache: Path) -> None:
    (tmp_path / "noise.mp3").write_text("not audio at all")
    routine = tmp_path / "bed.yaml"
    routine.write_text(ROUTINE.format(sound="noise.mp3", level="-20dB", duck="false"))
    result = CliRunner().invoke(cli, ["build", str(routine), "-o", str(tmp_path / "x.mp3"), "-q",
                                      "--cache-dir", str(speech_cache)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{routine}:4:10: background ") and "not an audio file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.mp3").exists()


# --- loops, fades and the dip ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rain", "drone"])
def test_built_in_beds_loop_without_a_seam(name: str, environment: Environment) -> None:
    loop = loop_of(Background(name, Location("test")), environment.tools).astype(np.float64)
    assert len(loop) == LOOP_LENGTH and LOOP_LENGTH % 1152 == 0
    steps = np.abs(np.diff(loop))
    # The step from the last sample back to the first is no bigger than the steps inside the loop.
    assert abs(loop[0] - loop[-1]) <= np.percentile(steps, 99.9)
    # Quiet enough to sit under speech, and not silent.
    assert 50 < np.sqrt(np.mean(loop**2)) < 3000


def test_a_file_loop_keeps_its_level_across_the_join() -> None:
    rng = np.random.default_rng(1)
    for sound in (rng.normal(0, 1000, SAMPLE_RATE * 3),  # unrelated ends: equal power
                  1000 * np.sin(2 * np.pi * 100 * np.arange(SAMPLE_RATE * 3) / SAMPLE_RATE)):  # matching ends
        joined = looped(sound)
        twice = np.concatenate([joined, joined])
        # RMS over 50 ms windows anywhere, across the crossfade and the join, stays within 1.5 dB of the whole.
        whole = np.sqrt(np.mean(joined**2))
        width = SAMPLE_RATE // 20
        windows = twice[: len(twice) // width * width].reshape(-1, width)
        levels = 20 * np.log10(np.sqrt(np.mean(windows**2, axis=1)) / whole)
        assert np.max(np.abs(levels)) < 1.5


def test_bed_fades_at_both_ends_and_dips_under_sounds() -> None:
    background = Background("rain", Location("test"), fade=2000, depth=12.0, attack=300, release=1000)
    second = SAMPLE_RATE
    bed = Bed(background, np.ones(LOOP_LENGTH, dtype=np.float32), 60 * second, [(20 * second, 25 * second)])
    gain = bed.gain(0, 60 * second).astype(np.float64)
    assert gain[0] == 0.0 and gain[-1] < 1e-6
    assert gain[2 * second] == pytest.approx(1.0) and gain[58 * second] == pytest.approx(1.0)
    assert 20 * math.log10(gain[22 * second]) == pytest.approx(-12.0, abs=0.01)
    # Down before the sound starts (attack), up again only after it ends (release).
    assert gain[20 * second] == pytest.approx(10 ** (-12 / 20), rel=1e-6)
    assert gain[int(19.7 * second) - 1] == pytest.approx(1.0)
    assert gain[25 * second] == pytest.approx(10 ** (-12 / 20), rel=1e-6)
    assert gain[26 * second] == pytest.approx(1.0)
    # No jumps: the gain moves by well under 0.1 dB from one sample to the next.
    assert np.max(np.abs(np.diff(20 * np.log10(np.maximum(gain[second:59 * second], 1e-9))))) < 0.01


def test_bed_made_a_stretch_at_a_time_is_the_loop_times_its_gain() -> None:
    """However the session is cut into stretches (across the loop's end, inside one turn, in holds where the
    gain is not worked out), the bed is the loop, repeated, times the gain curve of the whole session."""
    background = Background("rain", Location("test"), fade=2000, depth=12.0, attack=300, release=1000)
    second = SAMPLE_RATE
    loop = np.random.default_rng(3).standard_normal(5 * second).astype(np.float32)
    duration = 60 * second
    bed = Bed(background, loop, duration, [(20 * second, 25 * second), (41 * second, 42 * second)])
    whole = np.tile(loop, 12)[:duration] * bed.gain(0, duration)
    for size in (2 * second, 7 * second + 13, 999):
        made = np.concatenate([bed.samples(start, min(duration, start + size)) for start in range(0, duration, size)])
        assert np.array_equal(made, whole), size


# --- in the MP3 -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_background_is_heard_in_holds_and_dips_under_speech_by_its_depth(tmp_path: Path, speech_cache: Path) -> None:
    samples, plan, _ = build(tmp_path, speech_cache)
    speech = events(plan, "speech")
    holds = events(plan, "hold")
    assert len(speech) == 2 and len(holds) == 2
    for said, hold in zip(speech, holds):
        under = tone_db(samples, said["start"] + 0.2 + (said["end"] - said["start"] - 0.2) / 2 - 0.5)
        held = tone_db(samples, hold["start"] + 0.5 + 1.0)
        assert held > -50, "the bed is heard in the hold"
        assert held - under == pytest.approx(12.0, abs=1.5)
        # Between the sounds of the hold there is nothing but the bed: steady, and well under the speech.
        assert rms_db(samples, hold["start"] + 1.5, hold["start"] + 4.5) < rms_db(samples, said["start"], said["end"]) - 6


@pytest.mark.slow
def test_without_ducking_the_bed_stays_level(tmp_path: Path, speech_cache: Path) -> None:
    samples, plan, _ = build(tmp_path, speech_cache, duck="false")
    for said, hold in zip(events(plan, "speech"), events(plan, "hold")):
        under = tone_db(samples, (said["start"] + said["end"]) / 2 - 0.5)
        held = tone_db(samples, hold["start"] + 1.5)
        assert held - under == pytest.approx(0.0, abs=1.5)


@pytest.mark.slow
def test_a_loud_bed_stays_where_asked_under_the_peak_limit(tmp_path: Path, speech_cache: Path) -> None:
    """-6 dB, the loudest level allowed: nothing is lowered and nothing is said about it; the peaks stay in bounds."""
    samples, plan, note = build(tmp_path, speech_cache, sound="rain", level="-6dB")
    assert note == ""
    integrated, peak = ebur128(tmp_path / "bed.mp3")
    assert peak <= -1.0

    def part(spans: list[tuple[float, float]]) -> np.ndarray:
        return np.concatenate([samples[round(start * SAMPLE_RATE): round(end * SAMPLE_RATE)] for start, end in spans])

    speech = loudness(part([(e["start"], e["end"]) for e in events(plan, "speech")]))
    held = loudness(part([(e["start"] + 1.5, e["start"] + 4.5) for e in events(plan, "hold")]))
    assert held - speech == pytest.approx(-6.0, abs=2.0)


@pytest.mark.slow
def test_a_long_session_under_a_bed_is_written_and_measured_in_parts(tmp_path: Path, metered: list,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A bed that is not copied as frames (see test_bed_frames) makes the whole session one piece of sound. It
    is handed from the encoder to the file and to the meter in parts, so that an hour of it is never held at once: the parts join without a gap, and what
    the build measured is what the file holds."""
    from voiceguide import render
    from voiceguide.mp3 import _encoder

    monkeypatch.setattr(_encoder, "_PART_FRAMES", 300)  # about 8 s: this session comes in about ten parts
    monkeypatch.setattr(render, "FRAMES_UNDER_BED", False)  # the session whole, as a bed too long to copy is
    routine = tmp_path / "long.yaml"
    routine.write_text(ROUTINE.format(sound="rain", level="-20dB", duck="{depth: 10dB, attack: 300ms, release: 1s}")
                       .replace("hold: 6s", "hold: 40s"))
    output = tmp_path / "long.mp3"
    result = CliRunner().invoke(cli, ["build", str(routine), "-o", str(output), "-q", "--cache-dir",
                                      str(tmp_path / "cache"), "--with", "json"])
    assert result.exit_code == 0, result.stderr
    plan = json.loads(output.with_suffix(".json").read_text())
    samples = decode(output)
    assert len(samples) == pytest.approx(plan["duration"] * SAMPLE_RATE, abs=SAMPLE_RATE / 1000)
    # Heard all the way through, with no silent joins between the parts.
    quietest = min(rms_db(samples, start, start + 0.05) for start in np.arange(2.0, plan["duration"] - 2.0, 0.05))
    assert quietest > -70
    integrated, peak = ebur128(output)
    assert metered[-1][0] == pytest.approx(integrated, abs=0.1)
    assert metered[-1][1] == pytest.approx(peak, abs=0.2)


@pytest.mark.parametrize("name", ["rain", "drone"])
def test_a_generated_bed_is_kept_and_read_back_as_made(name: str, environment: Environment, tmp_path: Path) -> None:
    from voiceguide.cache import Cache

    cache = Cache(tmp_path / "cache")
    made = loop_of(Background(name, Location("test")), environment.tools)
    kept = loop_of(Background(name, Location("test")), environment.tools, cache)
    again = loop_of(Background(name, Location("test")), environment.tools, cache)
    assert made.dtype == kept.dtype == again.dtype == np.float32
    assert np.array_equal(made, kept) and np.array_equal(made, again)
    # A damaged one is made again, not trusted.
    for path in (tmp_path / "cache").glob("arrays-*/beds/*/*"):
        path.write_bytes(path.read_bytes()[:-8])
    assert np.array_equal(made, loop_of(Background(name, Location("test")), environment.tools, cache))
