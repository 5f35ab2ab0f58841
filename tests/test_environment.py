"""One cache root: --cache-dir moves every stored thing, and nothing lands in the user's folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voiceguide.cache import Cache
from voiceguide.environment import Environment

ROOT = Path(__file__).resolve().parent.parent
BOX = ROOT / "scripts" / "box-breathing.yaml"


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


@pytest.mark.slow
def test_cache_dir_moves_everything_every_command_stores(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {key: value for key, value in os.environ.items() if key != "VOICEGUIDE_CACHE_DIR"}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    cache = tmp_path / "cache"
    for args in (["check", BOX], ["voices"], ["plan", BOX, "--hold-scale", "0.25"],
                 ["build", BOX, "--hold-scale", "0.25", "-o", tmp_path / "box.mp3"], ["cache", "info"]):
        done = subprocess.run([sys.executable, "-m", "voiceguide", *map(str, args), "--cache-dir", str(cache)],
                              env=env, capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr)
    assert files_under(home) == []
    stored = {path.relative_to(cache).parts[0].split("-")[0] for path in files_under(cache)}
    assert {"answers", "clips", "sounds", "frames", "levels"} <= stored
    # And cache clear takes all of it, answers included.
    done = subprocess.run([sys.executable, "-m", "voiceguide", "cache", "clear", "--cache-dir", str(cache)],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and files_under(cache) == []


def test_the_environment_is_read_from_the_process_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICEGUIDE_CACHE_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("VOICEGUIDE_BUNDLED", "1")
    found = Environment.from_os()
    assert (found.cache_dir, found.bundled) == (tmp_path / "from-env", True)
    assert Environment.from_os(tmp_path / "given").cache_dir == tmp_path / "given"  # --cache-dir wins
    monkeypatch.setenv("VOICEGUIDE_BUNDLED", "0")
    assert not Environment.from_os().bundled
    child = found.child_env()
    assert (child["VOICEGUIDE_BUNDLED"], child["VOICEGUIDE_CACHE_DIR"]) == ("1", str(tmp_path / "from-env"))


def test_an_answer_is_asked_once_then_kept_and_asked_again_when_unusable(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    asked: list[str] = []

    def ask() -> str:
        asked.append("asked")
        return "42"

    assert cache.answer("thing", ["v1"], ask, str.isdigit) == "42"
    assert cache.answer("thing", ["v1"], ask, str.isdigit) == "42"
    assert len(asked) == 1
    assert cache.answer("thing", ["v2"], ask, str.isdigit) == "42"  # another identity: asked again
    assert len(asked) == 2
    for kept in (tmp_path / "answers").iterdir():
        kept.write_text("not a number")
    assert cache.answer("thing", ["v1"], ask, str.isdigit) == "42" and len(asked) == 3
