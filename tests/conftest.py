"""Fixtures shared by the test files."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def metered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """What every loudness Meter of a build measured, (LUFS, dBTP), in order."""
    from voiceguide import loudness

    measured: list[tuple[float, float]] = []
    real_result = loudness.Meter.result

    def keep(self):  # type: ignore[no-untyped-def]
        measured.append(real_result(self))
        return measured[-1]

    monkeypatch.setattr(loudness.Meter, "result", keep)
    return measured


@pytest.fixture(scope="session")
def speech_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clip cache for the whole run (pass it as --cache-dir), so each line is spoken once."""
    return tmp_path_factory.mktemp("speech-cache")
