"""Rebuilds after a change that says a line or two anew keep the level found before, when it still fits: only
the pieces whose sounds changed are encoded, and the session is written once. A change that moves the loudness
gets a full search, and then the very bytes a build with nothing stored gives.

Every level is checked in the MP3 as written: the speech decoded and measured (ebur128) at its target, the true
peak under -1 dBTP.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from audio_probe import decode, loudness
from test_phone import ebur128

import voiceguide
from voiceguide.api import Built
from voiceguide.cache import Cache
from voiceguide.environment import Environment

pytestmark = pytest.mark.slow

ROUTINE = """\
title: Rebuild
chime: bell
steps:
  - title: Reach
    id: reach
    say: Reach both arms up toward the ceiling and hold the stretch for {hold}.
    hold: 3s
  - title: Fold
    id: fold
    say: FOLD
    hold: 3s
  - title: Twist
    id: twist
    say: Sit tall, turn gently to the left, and breathe there for {hold}.
    hold: 3s
  - title: Rest
    id: rest
    say: Lie down on your back and let your whole body rest for {hold}.
    hold: 3s
"""
FOLD = "Fold forward slowly and let your head hang for {hold}."
# At length and at a quarter of the volume: at the level before, the session would land over a LU under.
QUIET_FOLD = ("Fold forward slowly, let your head and arms hang, and breathe out through your mouth. Let your "
              "knees bend a little, keep your weight over your feet, and let the back of your neck go soft, the "
              "shoulders loose, the jaw relaxed, for {hold}.\n    voice: {volume: 0.25}")


@pytest.fixture
def cache(speech_cache: Path, tmp_path: Path) -> Path:
    """The session's clips, with no stored levels or frames."""
    own = tmp_path / "cache"
    shutil.copytree(speech_cache, own, ignore=shutil.ignore_patterns("frames-*", "levels"))
    return own


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of the pieces encoded (and stored) since, in order."""
    keys: list[str] = []
    real_put = Cache.put_frames

    def put(self, key, frames):  # type: ignore[no-untyped-def]
        keys.append(key)
        real_put(self, key, frames)

    monkeypatch.setattr(Cache, "put_frames", put)
    return keys


def build(cache: Path, target: Path, fold: str = FOLD, holds: dict[str, str] | None = None,
          loudness_lufs: float = -16.0) -> Built:
    target.parent.mkdir(parents=True, exist_ok=True)
    routine = target.with_suffix(".yaml")
    routine.write_text(ROUTINE.replace("FOLD", fold))
    environment = Environment(cache_dir=cache, bundled=Environment.from_os().bundled)
    session = voiceguide.plan_session(voiceguide.adjust(voiceguide.load(routine, environment), holds=holds),
                                      environment=environment)
    return voiceguide.build_session(session, target, loudness=loudness_lufs)


def speech_loudness(built: Built) -> float:
    """The loudness of the spoken parts of the MP3, decoded, as the target means it."""
    samples = decode(built.path)
    spoken = [samples[event.start : event.end] for event in built.timeline.events if event.kind == "speech"]
    return loudness(np.concatenate(spoken))


def assert_on_target(built: Built, target: float = -16.0) -> None:
    assert speech_loudness(built) == pytest.approx(target, abs=1.0)
    assert ebur128(built.path)[1] <= -1.0


def fresh(cache: Path, built: Built, **options) -> bytes:  # type: ignore[no-untyped-def]
    """The bytes of the same build in a cache that holds the clips but no levels and no frames."""
    empty = cache.parent / "fresh-cache"
    shutil.rmtree(empty, ignore_errors=True)
    shutil.copytree(cache, empty, ignore=shutil.ignore_patterns("frames-*", "levels"))
    return build(empty, cache.parent / "fresh" / built.path.name, **options).path.read_bytes()


def test_a_line_said_anew_keeps_the_level_and_encodes_only_its_piece(cache: Path, tmp_path: Path,
                                                                     encoded: list[str], metered: list) -> None:
    first = build(cache, tmp_path / "a" / "session.mp3")
    searched = len(metered)
    assert searched >= 1 and len(encoded) >= 4  # every line (a chime with the line after it), at least once
    encoded.clear()
    # "for three seconds" becomes "for five seconds": one line is spoken anew, the other sounds are as they were.
    changed = build(cache, tmp_path / "b" / "session.mp3", holds={"fold": "5s"})
    assert changed.level == first.level
    assert len(encoded) == 1  # the piece of the new line: every other piece keeps its stored frames
    assert len(metered) == searched + 1  # written once, measured as written
    assert_on_target(changed)
    # Once more: the level is now stored for these sounds, and the same options give the same bytes.
    encoded.clear()
    again = build(cache, tmp_path / "c" / "session.mp3", holds={"fold": "5s"})
    assert again.path.read_bytes() == changed.path.read_bytes()
    assert encoded == [] and len(metered) == searched + 1
    # Another hold again: the same level still.
    other = build(cache, tmp_path / "d" / "session.mp3", holds={"fold": "1m"})
    assert other.level == first.level
    assert len(encoded) == 1
    assert_on_target(other)


def test_a_change_that_moves_the_loudness_is_searched_as_in_an_empty_cache(cache: Path, tmp_path: Path) -> None:
    first = build(cache, tmp_path / "a" / "session.mp3")
    # Three of the four lines as they were, the fourth long and quiet.
    quiet = build(cache, tmp_path / "b" / "session.mp3", fold=QUIET_FOLD)
    assert quiet.level != first.level
    assert quiet.level.gain > first.level.gain
    assert_on_target(quiet)
    assert quiet.path.read_bytes() == fresh(cache, quiet, fold=QUIET_FOLD)


def test_another_target_is_searched_as_in_an_empty_cache(cache: Path, tmp_path: Path) -> None:
    build(cache, tmp_path / "a" / "session.mp3")
    quieter = build(cache, tmp_path / "b" / "session.mp3", holds={"fold": "5s"}, loudness_lufs=-23.0)
    assert_on_target(quieter, -23.0)
    assert quieter.path.read_bytes() == fresh(cache, quieter, holds={"fold": "5s"}, loudness_lufs=-23.0)
