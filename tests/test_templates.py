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


def built(name: str, tmp_path: Path, cache: Path) -> tuple[dict, Path]:
    plan = planned(name, cache)
    output = tmp_path / f"{Path(name).stem}.mp3"
    result = CliRunner().invoke(cli, ["build", str(SCRIPTS / name), "-o", str(output), "-q", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    return plan, output


@pytest.mark.slow
def test_tabata_in_the_mp3_chimes_every_thirty_seconds_and_has_a_chapter_per_round(tmp_path: Path,
                                                                                  speech_cache: Path) -> None:
    from audio_probe import decode, first_loud
    from mutagen.id3 import ID3

    plan, output = built("tabata.yaml", tmp_path, speech_cache)
    audio = decode(output)
    assert abs(len(audio) / 44100 - plan["duration"]) < 0.03
    chimes = of(plan, "chime", "work")
    heard = [first_loud(audio, chime["start"] - 0.1, chime["start"] + 0.3) for chime in chimes]
    assert None not in heard
    # The cycle as heard, chime to chime: 30 s to 30 ms.
    assert all(abs(after - before - 30.0) < 0.03 for before, after in zip(heard, heard[1:])), heard
    assert all(abs(at - chime["start"]) < 0.03 for at, chime in zip(heard, chimes))
    # A chapter per round, in time order, each where the plan puts it.
    chapters = sorted(ID3(output).getall("CHAP"), key=lambda chap: chap.start_time)
    rounds = [chap for chap in chapters if "round" in str(chap.sub_frames.get("TIT2", ""))]
    assert len(rounds) == 8
    spans = [s for s in plan["steps"] if s["id"] == "tabata"]
    assert [chap.start_time for chap in rounds] == [round(s["start"] * 1000) for s in spans]
    assert str(rounds[2].sub_frames["TIT2"]) == "Tabata – round 3 of 8"


@pytest.mark.slow
def test_hamstring_stretch_in_the_mp3_is_silent_through_each_rest_between_sets(tmp_path: Path,
                                                                              speech_cache: Path) -> None:
    from audio_probe import decode, first_loud, max_level

    plan, output = built("hamstring-stretch.yaml", tmp_path, speech_cache)
    audio = decode(output)
    holds = of(plan, "hold", "hamstring")
    for before, after in zip(holds, holds[1:]):
        if before["side"] != after["side"]:
            continue
        chime = next(e for e in of(plan, "chime", "hamstring") if e["start"] >= before["end"] - 1e-6)
        line = max((e for e in plan["events"] if e.get("cue") == "say" and e["end"] <= after["start"] + 1e-6),
                   key=lambda e: e["end"])
        # Silence from the chime's end to the line, the line heard where planned, the hold right after it.
        assert max_level(audio, chime["end"] + 0.3, line["start"] - 0.05) < -50
        spoken = first_loud(audio, line["start"] - 0.1, line["end"])
        assert spoken is not None and abs(spoken - line["start"]) < 0.05
        assert line["end"] == pytest.approx(after["start"], abs=0.001)
