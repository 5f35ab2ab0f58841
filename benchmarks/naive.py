"""The naive baseline the benchmark compares voiceguide against (run by bench.py).

This is the approach the project's issue describes, written the simple way:

    synth     speak every distinct line once with pyttsx3, in one process,
              into WAV files (voiceguide's own speech cost is measured
              separately; the naive cost that matters is the assembly).
    assemble  walk a session's timeline (from `voiceguide plan --json`) and
              grow one pydub AudioSegment with `+=`: AudioSegment.silent for
              holds, rests and pauses (cues overlaid onto the hold they lie
              in), the WAV clips for speech, a pydub Sine for chimes; then one
              `export(..., format="mp3", bitrate="64k")` through the bundled
              ffmpeg.

Usage (bench.py does this for you):
    python benchmarks/naive.py synth TEXTS.json CLIPDIR --rate 160
    python benchmarks/naive.py assemble TIMELINE.json CLIPDIR OUT.mp3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
import wave
from pathlib import Path

SAMPLE_RATE = 44100


def clip_name(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16] + ".wav"


def _complete(path: Path) -> bool:
    try:
        with wave.open(str(path), "rb") as clip:
            frames = clip.getnframes()
            return frames > 0 and len(clip.readframes(frames)) == frames * clip.getsampwidth() * clip.getnchannels()
    except (OSError, EOFError, wave.Error):
        return False


def synth(texts_file: Path, clip_dir: Path, rate: int) -> None:
    """Every distinct line once, with one pyttsx3 engine."""
    # There is no system espeak-ng here: load the one shipped in espeakng-loader,
    # as voiceguide does, before pyttsx3 is imported.
    from voiceguide.environment import Environment

    Environment.from_os().tools.load_espeak()
    import pyttsx3

    texts = json.loads(texts_file.read_text())
    clip_dir.mkdir(parents=True, exist_ok=True)
    engine = pyttsx3.init()
    engine.setProperty("rate", rate)
    for text in texts:
        path = clip_dir / clip_name(text)
        for _ in range(3):
            engine.save_to_file(text, str(path))
            engine.runAndWait()
            # runAndWait may return before the file is complete, and pyttsx3's espeak
            # driver now and then writes no file at all: wait a little, then ask again.
            if _wait_complete(path, 2.0):
                break
        else:
            raise SystemExit(f"pyttsx3 wrote no complete WAV for {text!r}")


def _wait_complete(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _complete(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def assemble(timeline_file: Path, clip_dir: Path, out: Path) -> None:
    import imageio_ffmpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydub warns that no ffmpeg is on PATH
        from pydub import AudioSegment
        from pydub.generators import Sine

    AudioSegment.converter = imageio_ffmpeg.get_ffmpeg_exe()
    timeline = json.loads(timeline_file.read_text())

    clips: dict[str, AudioSegment] = {}

    def clip(text: str) -> AudioSegment:
        if text not in clips:
            segment = AudioSegment.from_wav(str(clip_dir / clip_name(text)))
            clips[text] = segment.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2)
        return clips[text]

    def chime(ms: int) -> AudioSegment:
        tone = Sine(880, sample_rate=SAMPLE_RATE).to_audio_segment(duration=ms, volume=-12.0)
        return tone.fade_out(min(ms, 2000)).set_sample_width(2)

    def fit(segment: AudioSegment, ms: int) -> AudioSegment:
        # The clips are untrimmed espeak output: keep each event exactly as long as
        # the plan says so the naive session lasts exactly as long as voiceguide's.
        segment = segment[:ms]
        if len(segment) < ms:
            segment += AudioSegment.silent(ms - len(segment), frame_rate=SAMPLE_RATE)
        return segment

    def ms(seconds: float) -> int:
        return round(seconds * 1000)

    events = timeline["events"]
    cues = [e for e in events if e["kind"] == "cue"]
    session = AudioSegment.silent(0, frame_rate=SAMPLE_RATE)
    for event in events:
        kind = event["kind"]
        length = ms(event["end"]) - ms(event["start"])
        if kind == "cue":
            continue
        if kind == "speech":
            piece = fit(clip(event["text"]), length)
        elif kind == "chime":
            piece = chime(length)
        else:  # hold, rest, pause: silence, with the cues that lie inside it
            piece = AudioSegment.silent(length, frame_rate=SAMPLE_RATE)
            for cue in cues:
                if event["start"] <= cue["start"] < event["end"]:
                    cue_length = ms(cue["end"]) - ms(cue["start"])
                    sound = fit(clip(cue["text"]), cue_length) if "text" in cue else chime(cue_length)
                    piece = piece.overlay(sound, position=ms(cue["start"]) - ms(event["start"]))
        session += piece
    session.export(str(out), format="mp3", bitrate="64k")
    print(json.dumps({"seconds": len(session) / 1000}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("synth")
    s.add_argument("texts", type=Path)
    s.add_argument("clip_dir", type=Path)
    s.add_argument("--rate", type=int, default=160)
    a = commands.add_parser("assemble")
    a.add_argument("timeline", type=Path)
    a.add_argument("clip_dir", type=Path)
    a.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "synth":
        synth(args.texts, args.clip_dir, args.rate)
    else:
        assemble(args.timeline, args.clip_dir, args.out)


if __name__ == "__main__":
    sys.exit(main())
