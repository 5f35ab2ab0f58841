"""The ready-made templates in scripts/ keep their promises, planned with the real voice: a Tabata's rounds are
30 s apart and the block lasts 4:00, an EMOM's sets start a minute apart, a physiotherapy stretch rests between
its sets on each side. (Every script is also checked, built and measured with the others: test_build,
test_phone, test_golden.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from voiceguide.cli import cli

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def planned(name: str, cache: Path) -> dict:
    result = CliRunner().invoke(cli, ["plan", str(SCRIPTS / name), "--json", "--strict", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def of(plan: dict, kind: str, step: str | None = None) -> list[dict]:
    return [e for e in plan["events"] if e["kind"] == kind and (step is None or e["step"] == step)]


def gaps(events: list[dict]) -> list[float]:
    return [round(after["start"] - before["start"], 3) for before, after in zip(events, events[1:])]


@pytest.mark.slow
def test_tabata_is_eight_rounds_thirty_seconds_apart_in_four_minutes(speech_cache: Path) -> None:
    plan = planned("tabata.yaml", speech_cache)
    holds = of(plan, "hold", "work")
    assert len(holds) == 8 and {round(h["end"] - h["start"], 3) for h in holds} == {20.0}
    assert gaps(holds) == [30.0] * 7
    chimes = of(plan, "chime", "work")
    assert gaps(chimes) == [30.0] * 7
    # From the first hold to the end of the last rest: eight cycles, exactly.
    rests = of(plan, "rest", "work")
    assert round(rests[-1]["end"] - holds[0]["start"], 3) == 240.0
    # Every round but the first is announced inside the rest before it, ending as its hold starts.
    said = [e for e in plan["events"] if e.get("cue") == "say" and e["step"] == "work"]
    assert [round(e["end"], 3) <= round(h["start"], 3) for e, h in zip(said, holds[1:])] == [True] * 7
    assert any("Last round" in e.get("text", "") for e in plan["events"])
    chapters = [s for s in plan["steps"] if s["id"] == "tabata"]
    assert len(chapters) == 8


@pytest.mark.slow
def test_emom_starts_a_set_every_minute(speech_cache: Path) -> None:
    plan = planned("emom.yaml", speech_cache)
    holds = of(plan, "hold")
    assert len(holds) == 10
    assert gaps(holds) == [60.0] * 9
    texts = [e["text"] for e in plan["events"] if "Minute" in e.get("text", "")]
    assert texts[0].startswith("Minute 1 of 10") and texts[-1].startswith("Minute 10 of 10")


@pytest.mark.slow
def test_hamstring_stretch_rests_between_sets_on_each_side(speech_cache: Path) -> None:
    plan = planned("hamstring-stretch.yaml", speech_cache)
    holds = of(plan, "hold", "hamstring")
    assert [(h["side"], h["repeat"]) for h in holds] == [(side, n) for side in ("left", "right") for n in (1, 2, 3)]
    assert {round(h["end"] - h["start"], 3) for h in holds} == {30.0}
    for side in ("left", "right"):
        sets = [h for h in holds if h["side"] == side]
        # Hold, chime, 15 s of rest, then the next set's line, which ends as the next hold starts.
        for before, after in zip(sets, sets[1:]):
            chime = next(e for e in of(plan, "chime", "hamstring") if e["start"] >= before["end"] - 1e-6)
            assert after["start"] - chime["end"] == pytest.approx(15.0, abs=0.001)
            line = max((e for e in plan["events"] if e.get("cue") == "say" and e["end"] <= after["start"] + 1e-6),
                       key=lambda e: e["end"])
            assert line["end"] == pytest.approx(after["start"], abs=0.001)
            assert f"Set {after['repeat']} of 3 on the {side} side" in line["text"]
