"""Fixtures shared by the test files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from voiceguide.environment import CACHE_ENV, Environment


@pytest.fixture
def metered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """What every loudness Meter of a build measured, (LUFS, dBTP), in order."""
    from voiceguide import mp3

    measured: list[tuple[float, float]] = []
    real_result = mp3.Meter.result

    def keep(self):  # type: ignore[no-untyped-def]
        measured.append(real_result(self))
        return measured[-1]

    monkeypatch.setattr(mp3.Meter, "result", keep)
    return measured


@pytest.fixture(scope="session")
def speech_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clip cache for the whole run (pass it as --cache-dir), so each line is spoken once."""
    return tmp_path_factory.mktemp("speech-cache")


@pytest.fixture(scope="session", autouse=True)
def no_user_cache(speech_cache: Path) -> Iterator[None]:
    """A command run without --cache-dir (check, voices, a subprocess) keeps what it stores in the session's
    cache, never in the user's: Environment.from_os reads $VOICEGUIDE_CACHE_DIR first."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(speech_cache))
        yield


@pytest.fixture(scope="session")
def environment(speech_cache: Path) -> Environment:
    """An environment over the session's cache, with the tools this process would run."""
    return Environment(cache_dir=speech_cache, bundled=Environment.from_os().bundled)
