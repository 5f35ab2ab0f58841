"""Fixtures shared by the test files."""

from __future__ import annotations

import os
import shutil
import site
import tempfile
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from voiceguide.environment import CACHE_ENV, Environment

# The variables that say where the user's home and its folders are, as the run found them.
HOME_VARIABLES = ("HOME", "PYTHONUSERBASE", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
_users: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    """The whole run, collection included, has a home of its own, removed at its end: nothing the tests do or
    start writes into the user's (a command that forgets the session's cache, Chromium's profile and crash
    reports, onnxruntime's telemetry id, which importing it writes)."""
    _users.update({name: os.environ.get(name) for name in HOME_VARIABLES})
    # Packages installed with `pip install --user` stay visible to the Pythons the tests start.
    os.environ["PYTHONUSERBASE"] = site.getuserbase()
    os.environ["HOME"] = tempfile.mkdtemp(prefix="pytest-home-")
    for name in HOME_VARIABLES[2:]:
        os.environ.pop(name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _users:
        return
    shutil.rmtree(os.environ["HOME"], ignore_errors=True)
    for name, value in _users.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _users.clear()


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
def no_user_cache(speech_cache: Path) -> Iterator[Path]:
    """A command run without --cache-dir (check, voices, a subprocess) keeps what it stores in the session's
    cache, never in the user's: Environment.from_os reads $VOICEGUIDE_CACHE_DIR first. The cache folder it would
    use otherwise, in the run's own home (see pytest_configure), is watched by no_user_cache_written."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(speech_cache))
        yield Path(platformdirs.user_cache_dir("voiceguide", appauthor=False))


@pytest.fixture(autouse=True)
def no_user_cache_written(no_user_cache: Path) -> Iterator[None]:
    """Fails the test after which voiceguide's cache folder has appeared in the home of the run (something
    stored without the session's cache): every test uses temporary folders only."""
    existed = no_user_cache.exists()  # where the system's folders cannot be moved (Windows), the user's own
    yield
    if not existed and no_user_cache.exists():
        found = sorted(str(path.relative_to(no_user_cache)) for path in no_user_cache.rglob("*"))[:5]
        shutil.rmtree(no_user_cache, ignore_errors=True)  # so that the next test is judged on its own
        pytest.fail(f"this test stored into the user's cache folder {no_user_cache}: {found}")


@pytest.fixture(scope="session")
def environment(speech_cache: Path) -> Environment:
    """An environment over the session's cache, with the tools this process would run."""
    return Environment(cache_dir=speech_cache, bundled=Environment.from_os().bundled)
