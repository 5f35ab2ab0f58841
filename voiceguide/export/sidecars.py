"""Sidecar files made from the timeline: LRC and WebVTT captions, the timeline JSON, an M3U playlist."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from voiceguide.export import lyrics
from voiceguide.plan.timeline import Timeline
from voiceguide.units import SAMPLE_RATE


def lrc(timeline: Timeline, mp3: Path) -> str:
    lines = [f"[ti:{timeline.title}]", "[by:voiceguide]"]
    for start, _, text in lyrics(timeline):
        minutes, rest = divmod(start, 60_000)
        lines.append(f"[{minutes:02d}:{rest // 1000:02d}.{rest % 1000 // 10:02d}]{text}")
    return "\n".join(lines) + "\n"


def vtt(timeline: Timeline, mp3: Path) -> str:
    cues = ["WEBVTT", ""]
    for number, (start, end, text) in enumerate(lyrics(timeline), 1):
        cues += [str(number), f"{_vtt_time(start)} --> {_vtt_time(end)}", text, ""]
    return "\n".join(cues)


def timeline_json(timeline: Timeline, mp3: Path) -> str:
    return json.dumps(timeline.to_json(), indent=2, ensure_ascii=False) + "\n"


def m3u(timeline: Timeline, mp3: Path) -> str:
    seconds = round(timeline.duration / SAMPLE_RATE)
    return f"#EXTM3U\n#EXTINF:{seconds},{timeline.title}\n{mp3.name}\n"


def _vtt_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


SIDECARS: dict[str, tuple[str, Callable[[Timeline, Path], str]]] = {
    "lrc": (".lrc", lrc),
    "vtt": (".vtt", vtt),
    "json": (".json", timeline_json),
    "m3u": (".m3u", m3u),
}


def sidecar_texts(timeline: Timeline, mp3: Path, kinds: list[str]) -> dict[Path, str]:
    """The named sidecars of ``mp3``: each one's contents by its path beside it. Give them to export.atomic
    with the MP3, so that the session and its sidecars are replaced together."""
    texts = {}
    for kind in kinds:
        suffix, make = SIDECARS[kind]
        texts[mp3.with_suffix(suffix)] = make(timeline, mp3)
    return texts
