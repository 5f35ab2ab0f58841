"""The stages in order: routine file, overrides, parts, clips, timeline, MP3."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from voiceguide import background, tools
from voiceguide import cover as covers
from voiceguide.errors import Location
from voiceguide.export import write_session
from voiceguide.loudness import DEFAULT_TARGET_LUFS, Meter
from voiceguide.overrides import Overrides, apply_overrides
from voiceguide.planner import chimes_of, expand, lines_of, place
from voiceguide.render import Level, analyse, analyse_sound, render
from voiceguide.routine import Routine, load_routine
from voiceguide.sidecars import write_sidecars
from voiceguide.sounds import Sounds
from voiceguide.speech import DEFAULT_VOICE, Clip, Progress, Speech
from voiceguide.timeline import Timeline


@dataclass(frozen=True)
class Session:
    routine: Routine
    timeline: Timeline


def plan_session(path: Path, overrides: Overrides, speech: Speech, sounds: Sounds,
                 progress: Progress | None = None, building: bool = False) -> Session:
    """Plan the session exactly as `build` will render it: clips are made (or taken from the cache) here.

    ``building``: the session is to be rendered, so each new clip is analysed for the level search too.
    """
    routine = apply_overrides(load_routine(path), overrides)
    sections = expand(routine, overrides.voice, DEFAULT_VOICE)
    chimes = chimes_of(sections)
    # A sound file that is not audio is reported before any speech is made.
    for chime in chimes:
        if chime.path is not None:
            sounds.samples(chime)
    background.check(routine.background)
    # While the engine speaks, the built-in chimes are made (and, for a build, they and each new clip are
    # analysed and the cover drawn): work for the cores that would otherwise wait between one speech worker
    # and the next.
    def while_speaking() -> None:
        for chime in chimes:
            sounds.samples(chime)
            if building:
                analyse_sound(sounds, chime)
        if building and routine.cover is None:
            covers.generated(routine.title)

    def spoken(clip: Clip) -> None:
        analyse(clip)
        # New speech means a level to find, and the session measured as encoded: its decoder is loaded now.
        Meter.prepare()

    with ThreadPoolExecutor(max_workers=1) as helper:
        made = helper.submit(while_speaking)
        speech.prepare(lines_of(sections), progress, made=spoken if building else None)
        made.result()
    return Session(routine, place(routine, sections, speech.length, sounds.length))


@dataclass(frozen=True)
class Built:
    size: int  # bytes of the MP3
    level: Level  # how loud its parts were made


def build_session(session: Session, speech: Speech, sounds: Sounds, target: Path, bitrate: int,
                  loudness: float = DEFAULT_TARGET_LUFS, sidecars: tuple[str, ...] = ()) -> Built:
    """Render the planned session to ``target`` at ``loudness`` LUFS."""
    routine = session.routine
    tools.release_freed_memory()
    levels: list[Level] = []
    with ThreadPoolExecutor(max_workers=1) as helper:
        cover: Callable[[], bytes]
        if routine.cover is not None:  # a file that is not an image is reported before any sound is made
            own = covers.from_file(routine.cover, routine.cover_at or Location(str(routine.path)))
            cover = lambda: own  # noqa: E731
        else:  # drawn while the engine spoke, or else while the encoder works
            cover = helper.submit(covers.generated, routine.title).result
        size = write_session(session.timeline, target,
                             lambda path, tags: levels.append(render(session.timeline, speech, sounds, path, loudness,
                                                                     bitrate, tags)),
                             cover)
    write_sidecars(session.timeline, target, list(sidecars))
    return Built(size, levels[0])
