"""The Python API: the README's example runs as written, and what it hands back agrees with the file it wrote."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import audio_probe
import numpy as np
import pytest
from mutagen.id3 import ID3

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    """In a folder laid out as a clone (scripts/), with a cache of its own: never the user's."""
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    (tmp_path / "example.py").write_text(readme_example())
    env = dict(os.environ, VOICEGUIDE_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    mp3 = tmp_path / "output" / "sciatica-short.mp3"
    lines = done.stdout.splitlines()
    assert f"{Path('output/sciatica-short.mp3')} {mp3.stat().st_size} bytes" in lines
    # The steps it printed are the chapters of the file it wrote.
    chapters = sorted(ID3(mp3).getall("CHAP"), key=lambda chapter: chapter.start_time)
    printed = [line for line in lines if re.fullmatch(r" *\d+\.\d s  .+", line)]
    assert len(printed) == len(chapters) > 3
    for line, chapter in zip(printed, chapters):
        assert line.split(" s  ", 1)[1] == chapter.sub_frames["TIT2"].text[0]
        assert abs(float(line.split(" s  ")[0]) - chapter.start_time / 1000) <= 0.05
    # The segment is as long as the decoded file.
    seconds = float(lines[-1].split(" s at ")[0])
    assert abs(seconds - audio_probe.duration(audio_probe.decode(mp3))) < 0.05


def test_audio_segment_is_the_decoded_session_at_the_timeline_s_times(tmp_path: Path, speech_cache: Path) -> None:
    import voiceguide
    from voiceguide.environment import Environment

    environment = Environment(cache_dir=speech_cache, bundled=Environment.from_os().bundled)
    routine = voiceguide.load(ROOT / "scripts" / "box-breathing.yaml", environment)
    session = voiceguide.plan_session(voiceguide.adjust(routine, hold_scale=0.25), environment=environment)
    built = voiceguide.build_session(session, tmp_path / "box.mp3")
    segment = built.audio_segment()
    samples = np.array(segment.get_array_of_samples(), dtype=np.float64)
    assert (segment.frame_rate, segment.channels, segment.sample_width) == (44100, 1, 2)
    assert len(samples) == session.timeline.duration
    # Sound where the timeline says speech is, silence in the holds (away from their cues).
    for event in session.timeline.events:
        stretch = samples[event.start : event.end]
        if event.kind == "speech":
            assert np.sqrt(np.mean(stretch**2)) > 300, event
        elif event.kind == "hold" and not any(e.kind == "cue" and event.start <= e.start < event.end
                                               for e in session.timeline.events):
            assert np.max(np.abs(stretch[2000:-2000]), initial=0) < 50, event
