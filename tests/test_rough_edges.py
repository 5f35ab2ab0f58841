"""Small things a person trips over: a profile shared between routines, the words people write for keys,
voices by language name, help examples, counts, time formats, what the cache clears, chapter order."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_bad_input import assert_bad_input, run

ROOT = Path(__file__).resolve().parent.parent


# --- what people write for a key ------------------------------------------------------------------

@pytest.mark.parametrize("written, meant", [
    ("reps: 3", "repeat"), ("repeats: 3", "repeat"), ("sets: 3", "repeat"), ("duration: 30s", "hold"),
    ("time: 30s", "hold"), ("text: Breathe.", "say"), ("speak: Breathe.", "say"), ("name: Breathe", "title"),
    ("pause: 5s", "rest"),
])
def test_a_key_s_synonym_suggests_the_key(tmp_path: Path, written: str, meant: str) -> None:
    routine = tmp_path / "r.yaml"
    routine.write_text(f"title: T\nsteps:\n  - title: A\n    hold: 3s\n    {written}\n")
    key = written.split(":")[0]
    assert_bad_input(run("check", str(routine)), f"{routine}:5:5: unknown key '{key}' in a step; did you mean '{meant}'?\n")


def test_a_routine_s_name_suggests_its_title(tmp_path: Path) -> None:
    routine = tmp_path / "r.yaml"
    routine.write_text("name: T\nsteps:\n  - title: A\n    hold: 3s\n")
    result = run("check", str(routine))
    assert f"{routine}:1:1: unknown key 'name' in a routine; did you mean 'title'?\n" in result.stderr

