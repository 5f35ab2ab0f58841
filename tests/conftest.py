"""Fixtures shared by the test files."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def speech_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clip cache for the whole run (pass it as --cache-dir), so each line is spoken once."""
    return tmp_path_factory.mktemp("speech-cache")
