"""Measure what voiceguide wrote: decode an MP3 with ffmpeg and look at the samples.

Small functions, each answering one question about decoded audio, plus
`measure_sounds` and `measure_silences`, which lay a plan's JSON timeline
(`voiceguide plan --json`) over the decoded samples and report where each
planned sound, and each planned silence, really starts and stops.

A sound starts at its first sample reaching LOUD_DBFS (-50 dBFS, 104 in
int16). Words end at their last sample reaching it; a chime rings on down to
TAIL_DBFS (-75 dBFS, 6 in int16) and ends there. Silence is stricter than the
onset level: inside it no sample may reach TAIL_DBFS. Times are in seconds.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

SAMPLE_RATE = 44100
LOUD_DBFS = -50.0
# A chime rings down to -60 dB below its -9 dBFS peak before it is cut: its tail
# is measured at this lower level, which the MP3's silence never reaches.
TAIL_DBFS = -75.0
FULL_SCALE = 32768
# Event kinds that make sound; the others (pause, hold, rest) are planned silence, but for any cues inside them.
SOUNDED = ("speech", "chime", "cue")


def ffmpeg() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def decode(path: Path) -> np.ndarray:
    """The file's samples as 44.1 kHz mono int16, decoded by ffmpeg; fails on any ffmpeg error output."""
    command = [ffmpeg(), "-nostdin", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    assert result.returncode == 0 and not result.stderr, f"ffmpeg could not decode {path}: {result.stderr.decode(errors='replace')}"
    return np.frombuffer(result.stdout, dtype="<i2")


def loudness(samples: np.ndarray) -> float:
    """Integrated loudness (LUFS) of int16 samples by ffmpeg's ebur128; a sound under a second is measured repeated."""
    repeats = max(1, -(-SAMPLE_RATE // max(1, len(samples))))
    command = [ffmpeg(), "-nostdin", "-hide_banner", "-nostats", "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1",
               "-i", "pipe:0", "-af", "ebur128=framelog=quiet", "-f", "null", "-"]
    result = subprocess.run(command, input=np.tile(samples.astype("<i2"), repeats).tobytes(), capture_output=True)
    found = re.findall(r"I:\s+(-?[\d.]+|-inf) LUFS", result.stderr.decode(errors="replace"))
    assert result.returncode == 0 and found, result.stderr.decode(errors="replace")[-300:]
    return max(-70.0, float(found[-1])) if found[-1] != "-inf" else -70.0


def decode_errors(path: Path) -> str:
    """What `ffmpeg -v error` says while decoding the whole file (empty for a clean file)."""
    command = [ffmpeg(), "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return (result.stderr + ("" if result.returncode == 0 else f"\n(exit {result.returncode})")).strip()


def threshold(dbfs: float = LOUD_DBFS) -> int:
    """The smallest int16 magnitude that counts as loud at ``dbfs``."""
    return math.ceil(FULL_SCALE * 10 ** (dbfs / 20))


def duration(samples: np.ndarray) -> float:
    return len(samples) / SAMPLE_RATE


def index(seconds: float, samples: np.ndarray) -> int:
    """Sample index of a time, clamped to the audio."""
    return min(max(0, round(seconds * SAMPLE_RATE)), len(samples))


def dbfs(magnitude: int) -> float:
    return 20 * math.log10(magnitude / FULL_SCALE) if magnitude > 0 else -math.inf


def max_level(samples: np.ndarray, start: float, end: float) -> float:
    """Peak level in dBFS between two times (-inf for digital silence or an empty window)."""
    window = samples[index(start, samples) : index(end, samples)]
    return dbfs(int(np.abs(window.astype(np.int32)).max())) if len(window) else -math.inf


def _loud(samples: np.ndarray, start: float, end: float, dbfs_: float) -> tuple[int, np.ndarray]:
    begin = index(start, samples)
    window = np.abs(samples[begin : index(end, samples)].astype(np.int32))
    return begin, np.flatnonzero(window >= threshold(dbfs_))


def first_loud(samples: np.ndarray, start: float, end: float, dbfs_: float = LOUD_DBFS) -> float | None:
    """Time of the first loud sample in [start, end), or None if the window is silent."""
    begin, loud = _loud(samples, start, end, dbfs_)
    return (begin + loud[0]) / SAMPLE_RATE if len(loud) else None


def last_loud(samples: np.ndarray, start: float, end: float, dbfs_: float = LOUD_DBFS) -> float | None:
    """Time just after the last loud sample in [start, end) (where the sound stops), or None."""
    begin, loud = _loud(samples, start, end, dbfs_)
    return (begin + loud[-1] + 1) / SAMPLE_RATE if len(loud) else None


def loud_mask(samples: np.ndarray, dbfs_: float = LOUD_DBFS) -> np.ndarray:
    """True for every loud sample."""
    return np.abs(samples.astype(np.int32)) >= threshold(dbfs_)


def silence_around(loud: np.ndarray, at: float) -> tuple[float, float]:
    """The stretch of silence containing time ``at`` in a `loud_mask`: (where the sound before it stops, where the next starts).

    The ends of the file count as its edges.
    """
    i = min(max(0, round(at * SAMPLE_RATE)), len(loud) - 1)
    assert not loud[i], f"the audio is not silent at {at:.3f} s"
    before = np.flatnonzero(loud[:i])
    after = np.flatnonzero(loud[i:])
    start = (before[-1] + 1) if len(before) else 0
    end = (i + after[0]) if len(after) else len(loud)
    return start / SAMPLE_RATE, end / SAMPLE_RATE


def sounded(plan: dict) -> list[dict]:
    """The planned events that make sound: speech, chimes and cues (spoken or struck inside a hold or rest)."""
    return [e for e in plan["events"] if e["kind"] in SOUNDED]


def planned_silences(plan: dict) -> list[tuple[float, float]]:
    """Every stretch of the plan where nothing sounds, from the end of one sound to the start of the next."""
    spans: list[list[float]] = []
    for event in sorted(sounded(plan), key=lambda e: e["start"]):
        if spans and event["start"] <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], event["end"])
        else:
            spans.append([event["start"], event["end"]])
    edges = [0.0] + [t for span in spans for t in span] + [plan["duration"]]
    return [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a]


@dataclass(frozen=True)
class Measured:
    """A planned sound or silence and where the decoded audio shows it (seconds; errors are measured - planned)."""

    kind: str  # the event's kind, or "silence"
    planned_start: float
    planned_end: float
    start: float | None  # sound: first loud sample; silence: where the sound before it stops
    end: float | None  # sound: where it stops; silence: where the next sound starts
    event: dict | None = None  # the planned event, for a sound
    interior_dbfs: float | None = None  # silence: peak level inside, away from its edges

    @property
    def start_error(self) -> float:
        return math.inf if self.start is None else self.start - self.planned_start

    @property
    def end_error(self) -> float:
        return math.inf if self.end is None else self.end - self.planned_end

    @property
    def length_error(self) -> float:
        if self.start is None or self.end is None:
            return math.inf
        return (self.end - self.start) - (self.planned_end - self.planned_start)


def tail_dbfs(event: dict) -> float:
    """The level at which a sound counts as over: words stop at LOUD_DBFS, a chime rings on down to TAIL_DBFS."""
    return LOUD_DBFS if "text" in event else TAIL_DBFS


def measure_sounds(samples: np.ndarray, plan: dict, margin: float = 0.1) -> list[Measured]:
    """Where each planned sound really starts (LOUD_DBFS) and ends (`tail_dbfs`).

    Each is looked for in its planned span widened by ``margin`` each side, wider
    than any tolerance, so a shifted sound shows as an error instead of being cut
    off by the window; the window stops short of a neighbouring sound.
    """
    events = sounded(plan)
    measured = []
    for event in events:
        start, end = event["start"], event["end"]
        low = max([start - margin] + [e["end"] for e in events if e is not event and e["end"] <= start])
        high = min([end + margin] + [e["start"] for e in events if e is not event and e["start"] >= end])
        measured.append(Measured(event["kind"], start, end, first_loud(samples, low, high),
                                 last_loud(samples, low, high, tail_dbfs(event)), event))
    return measured


def measure_silences(samples: np.ndarray, plan: dict, edge: float = 0.05, shortest: float = 0.2) -> list[Measured]:
    """Each planned silence of at least ``shortest`` seconds as heard around its middle.

    It starts where the sound before it is over (`tail_dbfs`) and ends at the
    next sound's onset (LOUD_DBFS), as sounds are measured. ``interior_dbfs``
    is the peak inside it, ``edge`` away from the sounds at its ends.
    """
    masks = {level: loud_mask(samples, level) for level in (LOUD_DBFS, TAIL_DBFS)}
    events = sounded(plan)
    measured = []
    for start, end in planned_silences(plan):
        if end - start < shortest:
            continue
        before = [e for e in events if e["end"] == start]
        level = min((tail_dbfs(e) for e in before), default=LOUD_DBFS)
        middle = (start + end) / 2
        heard_start, heard_end = silence_around(masks[level], middle)[0], silence_around(masks[LOUD_DBFS], middle)[1]
        measured.append(Measured("silence", start, end, heard_start, heard_end,
                                 interior_dbfs=max_level(samples, start + edge, end - edge)))
    return measured


def measure_holds(plan: dict, sounds: list[Measured], silences: list[Measured]) -> list[Measured]:
    """Each planned hold as heard: from where the sound before it stops to where the sound after it starts.

    That sound after it is its chime, or, in a routine without chimes, whatever
    is heard next; cues inside the hold do not end it. ``interior_dbfs`` is the
    loudest of the silences inside it (between its cues).
    """
    holds = []
    for event in plan["events"]:
        if event["kind"] != "hold":
            continue
        before = [m for m in sounds if m.planned_end <= event["start"]]
        after = [m for m in sounds if m.planned_start >= event["end"]]
        last = max(before, key=lambda m: m.planned_end, default=None)
        following = min(after, key=lambda m: m.planned_start, default=None)
        inside = [s.interior_dbfs for s in silences
                  if s.planned_start < event["end"] and s.planned_end > event["start"] and s.interior_dbfs is not None]
        holds.append(Measured("hold", last.planned_end if last else 0.0,
                              following.planned_start if following else plan["duration"],
                              last.end if last else None, following.start if following else None,
                              event=event, interior_dbfs=max(inside, default=None)))
    return holds


def measure_timeline(samples: np.ndarray, plan: dict) -> dict[str, list[Measured]]:
    """All of it at once: "sounds" (`measure_sounds`), "silences" (`measure_silences`) and "holds" (`measure_holds`)."""
    sounds, silences = measure_sounds(samples, plan), measure_silences(samples, plan)
    return {"sounds": sounds, "silences": silences, "holds": measure_holds(plan, sounds, silences)}


def worst(values: list[float]) -> float:
    """The largest error by magnitude, in milliseconds (0 for none)."""
    return max((abs(v) * 1000 for v in values), default=0.0)
