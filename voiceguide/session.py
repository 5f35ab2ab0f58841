"""The stages in order: routine file, overrides, parts, clips, timeline, MP3.

Planning starts the speech engines as soon as it knows the lines, and only
then loads the modules that make, measure and write sound (numpy and the
rest take a fifth of a second to import): they load while the engines speak.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voiceguide.overrides import Overrides, apply_overrides
from voiceguide.planner import chimes_of, expand, lines_of, place
from voiceguide.routine import Routine, load_routine
from voiceguide.speech import DEFAULT_VOICE, Progress, Speech
from voiceguide.timeline import Timeline

if TYPE_CHECKING:
    from voiceguide.render import Level
    from voiceguide.sounds import Sounds

DEFAULT_TARGET_LUFS = -16.0  # integrated loudness of a session: the norm for spoken word


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
    lines = lines_of(sections)
    speech.start(lines)
    try:
        from voiceguide import background
        from voiceguide import cover as covers
        from voiceguide.render import analyse, analyse_sound

        chimes = chimes_of(sections)
        # A sound file that is not audio is reported before the build goes on (speech begun is dropped).
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

        with ThreadPoolExecutor(max_workers=1) as helper:
            made = helper.submit(while_speaking)
            speech.prepare(lines, progress, made=analyse if building else None)
            made.result()
    finally:
        speech.stop()
    return Session(routine, place(routine, sections, speech.length, sounds.length))


@dataclass(frozen=True)
class Built:
    size: int  # bytes of the MP3
    level: Level  # how loud its parts were made


def build_session(session: Session, speech: Speech, sounds: Sounds, target: Path, bitrate: int,
                  loudness: float = DEFAULT_TARGET_LUFS, sidecars: tuple[str, ...] = ()) -> Built:
    """Render the planned session to ``target`` at ``loudness`` LUFS."""
    from voiceguide import cover as covers
    from voiceguide import tools
    from voiceguide.errors import Location
    from voiceguide.export import write_session
    from voiceguide.render import render
    from voiceguide.sidecars import write_sidecars

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
