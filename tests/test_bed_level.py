"""A bed at the level asked: the speech is levelled to --loudness over the spoken parts, and the bed sits its
``level`` under that speech, as written, whatever the session's length; build says both loudnesses.

Everything is measured in the built MP3, as loudness (BS.1770, K-weighted, by ffmpeg's ebur128).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from audio_probe import decode, loudness
from click.testing import CliRunner
from test_phone import ebur128

from voiceguide.audio import write_wav
from voiceguide.cli import cli
from voiceguide.units import SAMPLE_RATE

pytestmark = pytest.mark.slow

ROUTINE = """\
title: Bed level
chime: none
background:
  sound: {sound}
  level: {level}
  fade: 1s
  duck: {duck}
steps:
  - title: One
    say: Lie on your back with your knees bent, and let your arms rest by your sides.
    hold: 16s
  - title: Two
    say: Now breathe in slowly through your nose, and let your shoulders soften.
    hold: 16s
"""
RELEASE_S, ATTACK_S = 4.0, 0.3


def write_music(path: Path, seconds: float = 20.0) -> None:
    """A sound file for a bed: a chord that swells and fades, over soft noise."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * hz * t) for hz in (220.0, 277.2, 329.6)) * (0.6 + 0.4 * np.sin(2 * np.pi * t / 5))
    noise = np.random.default_rng(7).standard_normal(len(t)) * 0.05
    with open(path, "wb") as file:
        write_wav(file, np.round((chord / 3 + noise) * 9000).astype("<i2"))


def build(tmp_path: Path, cache: Path, sound: str, level: int, depth: int | None = 10,
          target: float = -16.0) -> tuple[np.ndarray, dict, str]:
    """Build the routine under ``sound``; ``depth`` None: no dip under the words."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_music(tmp_path / "music.wav")
    routine = tmp_path / "bed.yaml"
    duck = "false" if depth is None else f"{{depth: {depth}dB, attack: 300ms, release: 4s}}"
    routine.write_text(ROUTINE.format(sound=sound, level=f"{level}dB", duck=duck))
    output = tmp_path / "bed.mp3"
    result = CliRunner().invoke(cli, ["build", str(routine), "-o", str(output), "-q", "--cache-dir", str(cache),
                                      "--with", "json", "--loudness", str(target)])
    assert result.exit_code == 0, result.stderr
    return decode(output), json.loads(output.with_suffix(".json").read_text()), result.stdout


def stretch(samples: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    return np.concatenate([samples[round(start * SAMPLE_RATE): round(end * SAMPLE_RATE)] for start, end in spans])


def speech_spans(plan: dict) -> list[tuple[float, float]]:
    return [(e["start"], e["end"]) for e in plan["events"] if e["kind"] == "speech"]


def hold_spans(plan: dict) -> list[tuple[float, float]]:
    """The middle of each hold: past the release after the words before it, before the attack of what follows."""
    return [(e["start"] + RELEASE_S + 0.5, e["end"] - ATTACK_S - 0.5) for e in plan["events"] if e["kind"] == "hold"]


def rms_db(samples: np.ndarray, start: float, end: float) -> float:
    part = samples[round(start * SAMPLE_RATE): round(end * SAMPLE_RATE)].astype(np.float64)
    return 10 * math.log10(max(float(np.mean(part**2)), 1e-12) / 32768**2)


@pytest.mark.parametrize("level", [-12, -20, -30])
@pytest.mark.parametrize("sound", ["rain", "drone", "music.wav"])
def test_the_bed_sits_at_its_level_under_the_speech(tmp_path: Path, speech_cache: Path, sound: str,
                                                    level: int) -> None:
    samples, plan, stdout = build(tmp_path, speech_cache, sound, level)
    speech = loudness(stretch(samples, speech_spans(plan)))
    bed = loudness(stretch(samples, hold_spans(plan)))
    assert speech == pytest.approx(-16.0, abs=1.0)
    assert bed - speech == pytest.approx(level, abs=2.0)
    integrated, peak = ebur128(tmp_path / "bed.mp3")
    assert peak <= -1.0
    # build says both: the speech's loudness, and the whole file's as a player measures it.
    said = re.search(r"speech (-?\d+\.\d) LUFS, whole file (-?\d+\.\d) LUFS", stdout)
    assert said is not None, stdout
    assert float(said[1]) == pytest.approx(speech, abs=0.5)
    assert float(said[2]) == pytest.approx(integrated, abs=0.3)


def test_a_quieter_target_keeps_the_bed_where_it_was_asked(tmp_path: Path, speech_cache: Path) -> None:
    samples, plan, _ = build(tmp_path, speech_cache, "rain", -20, target=-23.0)
    speech = loudness(stretch(samples, speech_spans(plan)))
    bed = loudness(stretch(samples, hold_spans(plan)))
    assert speech == pytest.approx(-23.0, abs=1.0)
    assert bed - speech == pytest.approx(-20, abs=2.0)


@pytest.mark.parametrize("depth", [6, 12])
def test_the_bed_dips_by_its_depth_under_speech(tmp_path: Path, speech_cache: Path, depth: int) -> None:
    """The same session with the dip and without: right after the words the dip has barely begun to release
    (4 s), so the bed there is ``depth`` dB down; in the middle of a hold the two are the same."""
    ducked, plan, _ = build(tmp_path / "ducked", speech_cache, "rain", -20, depth=depth)
    level, _, _ = build(tmp_path / "level", speech_cache, "rain", -20, depth=None)
    for (_, said_end), (middle_start, middle_end) in zip(speech_spans(plan), hold_spans(plan)):
        after = (said_end + 0.05, said_end + 0.35)
        assert rms_db(level, *after) - rms_db(ducked, *after) == pytest.approx(depth, abs=1.0)
        assert rms_db(level, middle_start, middle_end) - rms_db(ducked, middle_start, middle_end) == pytest.approx(
            0.0, abs=0.5)
