"""The Python API: load a routine, adjust its holds, plan the session, build its MP3, in the order of the stages.

    import voiceguide
    routine = voiceguide.load("scripts/sciatica-self-massage.yaml")
    routine = voiceguide.adjust(routine, holds={"tennis-balls": "90s"})
    session = voiceguide.plan_session(routine)
    built = voiceguide.build_session(session, "output/sciatica.mp3")

The command line (cli.py) is a thin layer over these functions. Planning
starts the speech engines as soon as it knows the lines, and only then loads
the modules that make, measure and write sound (numpy and the rest take a
fifth of a second to import): they load while the engines speak.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voiceguide.durations import DurationError, parse_duration
from voiceguide.environment import Environment
from voiceguide.errors import InputError
from voiceguide.overrides import HoldSetting, Overrides, apply_overrides, check_scale, parse_hold_option
from voiceguide.overrides import load_profile as _load_profile
from voiceguide.plan.planner import expand, lines_of, place, sounds_of
from voiceguide.plan.timeline import Timeline
from voiceguide.routine import RATE_RANGE, Routine, Voice, load_routine
from voiceguide.speech.clips import DEFAULT_VOICE, Progress, Speech
from voiceguide.speech.engines import VoiceInfo, create_engine, engine_names

if TYPE_CHECKING:
    from pydub import AudioSegment

    from voiceguide.loudness import Analyses
    from voiceguide.render import Level, Measured
    from voiceguide.sounds import Sounds

__all__ = [
    "DEFAULT_BITRATE", "DEFAULT_LOUDNESS", "RATE_RANGE", "Built", "HoldSetting", "Overrides", "Session", "Voice",
    "adjust", "build_session", "check_scale", "load", "load_profile", "parse_hold_option", "plan_session",
    "sidecar_kinds", "voices",
]

DEFAULT_LOUDNESS = -16.0  # LUFS, integrated: the norm for spoken word
DEFAULT_BITRATE = 64  # kbps, constant: clear speech in mono, about 29 MB an hour (see voiceguide.mp3.BITRATES)


def load(path: str | os.PathLike[str], environment: Environment | None = None) -> Routine:
    """Read and check a routine file; raise RoutineError listing every problem in it as FILE:LINE:COL."""
    return load_routine(path, engine_names(environment or Environment.from_os()))


def voices(engine: str, environment: Environment | None = None) -> list[VoiceInfo]:
    """The voices of the speech engine named ``engine``: id, name, languages."""
    return create_engine(engine, environment or Environment.from_os()).voices()


def sidecar_kinds() -> tuple[str, ...]:
    """The sidecar files build_session can write beside an MP3."""
    from voiceguide.export.sidecars import SIDECARS

    return tuple(SIDECARS)


def load_profile(path: str | os.PathLike[str], environment: Environment | None = None) -> Overrides:
    """Read a profile file of standing preferences (holds, hold-scale, voice)."""
    return _load_profile(path, engine_names(environment or Environment.from_os()))


def adjust(routine: Routine, holds: Mapping[str, str | int] | None = None, hold_scale: float | None = None,
           profile: Overrides | None = None) -> Routine:
    """The routine with holds set by step id (``{"tennis-balls": "90s"}``, or milliseconds) and the others
    multiplied by ``hold_scale``; ``profile`` (see load_profile) gives what these leave unset."""
    settings: dict[str, HoldSetting] = {}
    for step_id, hold in (holds or {}).items():
        try:
            ms = hold if isinstance(hold, int) else parse_duration(hold)
        except DurationError as error:
            raise InputError(f"hold {step_id}: {error}") from None
        if ms <= 0:
            raise InputError(f"hold {step_id}: a hold must be longer than zero")
        settings[step_id] = HoldSetting(ms, f"hold {step_id}")
    if hold_scale is not None:
        try:
            check_scale(hold_scale)
        except ValueError as error:
            raise InputError(f"hold scale {error}") from None
    wanted = Overrides(holds=settings, hold_scale=hold_scale)
    return apply_overrides(routine, wanted.over(profile) if profile else wanted)


@dataclass(frozen=True)
class Session:
    """A planned session: its routine and its timeline, every clip made. Build renders exactly this."""

    routine: Routine
    timeline: Timeline
    environment: Environment = field(repr=False, compare=False)
    _speech: Speech = field(repr=False, compare=False)
    _sounds: Sounds = field(repr=False, compare=False)
    _analyses: Analyses | None = field(repr=False, compare=False)


def plan_session(routine: Routine, voice: Voice | None = None, environment: Environment | None = None,
         jobs: int | None = None, progress: Progress | None = None, for_build: bool = True) -> Session:
    """Plan the session exactly as build will render it: clips are made (or taken from the cache) here.

    ``voice`` wins over every voice the routine sets (the command line's
    --engine, --voice and --rate). ``jobs``: lines spoken at once (default:
    every core). ``progress`` is told (done, total) as lines are spoken.
    ``for_build``: each new clip is analysed for the level search as it
    arrives, on a core that would otherwise wait.
    """
    environment = environment or Environment.from_os()
    from voiceguide.sounds import Sounds

    speech = Speech(environment, jobs=jobs)
    sounds = Sounds(environment)
    sections = expand(routine, voice or Voice(), DEFAULT_VOICE)
    lines = lines_of(sections)
    speech.start(lines)
    try:
        from voiceguide.export import cover as covers
        from voiceguide.loudness import Analyses
        from voiceguide.render import analyse, analyse_sound
        from voiceguide.render import bed as beds

        analyses = Analyses(environment.cache) if for_build else None
        used = sounds_of(sections)
        # A sound file that is not audio is reported before the build goes on (speech begun is dropped).
        for sound in used:
            if sound.path is not None:
                sounds.samples(sound)
        beds.check(routine.background, environment.tools)

        # While the engine speaks, the built-in sounds are made (and, for a build, they and each new clip are
        # analysed and the cover drawn): work for the cores that would otherwise wait between one speech worker
        # and the next.
        def while_speaking() -> None:
            for sound in used:
                sounds.samples(sound)
                if analyses is not None:
                    analyse_sound(analyses, sounds, sound)
            if analyses is not None and routine.cover is None:
                covers.generated(routine.title, environment.cache)

        with ThreadPoolExecutor(max_workers=1) as helper:
            made = helper.submit(while_speaking)
            speech.prepare(lines, progress, made=(lambda clip: analyse(analyses, clip)) if analyses else None)
            made.result()
    finally:
        speech.stop()
    timeline = place(routine, sections, speech.length, sounds.length)
    return Session(routine, timeline, environment, speech, sounds, analyses)


@dataclass(frozen=True)
class Built:
    """A session written as an MP3 file."""

    path: Path
    size: int  # bytes
    level: Level  # how loud its parts were made
    measured: Measured  # how loud it came out: its speech, and the whole file
    timeline: Timeline
    environment: Environment = field(repr=False, compare=False)

    def audio_segment(self) -> AudioSegment:
        """The session as a pydub AudioSegment (44.1 kHz mono, 16 bits), sample for sample as the timeline
        places it: decoded from the MP3, whose Info frame tells the decoder the delay and padding to take off."""
        import miniaudio
        from pydub import AudioSegment

        from voiceguide.units import SAMPLE_RATE

        decoded = miniaudio.decode_file(str(self.path), output_format=miniaudio.SampleFormat.SIGNED16,
                                        nchannels=1, sample_rate=SAMPLE_RATE)
        samples = decoded.samples[: self.timeline.duration]
        return AudioSegment(data=samples.tobytes(), sample_width=2, frame_rate=SAMPLE_RATE, channels=1)


def build_session(session: Session, target: str | os.PathLike[str], bitrate: int = DEFAULT_BITRATE,
          loudness: float = DEFAULT_LOUDNESS, sidecars: tuple[str, ...] = ()) -> Built:
    """Render the planned session to the MP3 file ``target`` at ``loudness`` LUFS, with its tags, chapters,
    lyrics and cover, and the ``sidecars`` asked for (lrc, vtt, json, m3u) beside it; every file atomically."""
    from voiceguide import export, tools
    from voiceguide.errors import Location
    from voiceguide.export import cover as covers
    from voiceguide.export.sidecars import write_sidecars
    from voiceguide.loudness import Analyses
    from voiceguide.mp3 import BITRATES, Encoder
    from voiceguide.render import render

    if bitrate not in BITRATES:
        raise InputError(f"bitrate {bitrate} is not one of {', '.join(map(str, BITRATES))}")
    path = Path(target)
    routine, environment = session.routine, session.environment
    tools.release_freed_memory()
    if routine.cover is not None:  # a file that is not an image is reported before any sound is made
        cover = covers.from_file(routine.cover, routine.cover_at or Location(str(routine.path)))
    else:  # drawn while the engine spoke
        cover = covers.generated(routine.title, environment.cache)
    encoder = Encoder(environment.tools.encoder, bitrate, environment.cache)
    with export.atomic(path) as temp:
        level, measured = render(session.timeline, session._speech, session._sounds, temp, loudness, encoder,
                                 session._analyses or Analyses(environment.cache), environment.tools,
                                 export.tags(session.timeline, cover))
    write_sidecars(session.timeline, path, list(sidecars))
    return Built(path, path.stat().st_size, level, measured, session.timeline, environment)
