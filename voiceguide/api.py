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
import string
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voiceguide.durations import DurationError, format_clock, parse_duration
from voiceguide.environment import Environment
from voiceguide.errors import InputError
from voiceguide.overrides import (
    Fit,
    HoldSetting,
    Overrides,
    apply_overrides,
    check_fit,
    check_scale,
    parse_fit,
    parse_hold_option,
    set_holds,
    skipped_holds,
)
from voiceguide.overrides import load_profile as _load_profile
from voiceguide.plan.planner import expand, lines_of, place, sounds_of
from voiceguide.plan.timeline import Timeline
from voiceguide.routine import RATE_RANGE, Routine, Step, Voice, load_routine
from voiceguide.speech.clips import DEFAULT_VOICE, Progress, Speech
from voiceguide.speech.engines import VoiceInfo, create_engine, engine_names
from voiceguide.speech.engines.languages import speaking
from voiceguide.templates import (
    DEFAULT_TEMPLATE,
    TEMPLATES,
    schema,
    schema_text,
    template_text,
    write_schema,
    write_template,
)
from voiceguide.templates import summary as template_summary
from voiceguide.units import FRAME, SAMPLE_RATE, milliseconds, samples

if TYPE_CHECKING:
    from pydub import AudioSegment

    from voiceguide.batch import Outcome, Pair
    from voiceguide.importing import Imported
    from voiceguide.loudness import Analyses
    from voiceguide.render import Level, Measured
    from voiceguide.sounds import Sounds

__all__ = [
    "DEFAULT_BITRATE", "DEFAULT_LOUDNESS", "RATE_RANGE", "Built", "Fit", "HoldSetting", "Overrides", "Session", "Voice",
    "adjust", "build_session", "build_sessions", "check_scale", "import_routine", "load", "load_profile", "parse_fit",
    "parse_hold_option", "plan_session", "sidecar_kinds", "skipped_holds", "step_ids", "voices",
    # Help while writing a routine: its schema for editors, and routines to start from (voiceguide.templates).
    "DEFAULT_TEMPLATE", "TEMPLATES", "schema", "schema_text", "template_summary", "template_text", "write_schema",
    "write_template",
]

DEFAULT_LOUDNESS = -16.0  # LUFS, integrated: the norm for spoken word
DEFAULT_BITRATE = 64  # kbps, constant: clear speech in mono, about 29 MB an hour (see voiceguide.mp3.BITRATES)
# Times the holds are scaled together to fit a session's length before one hold is tuned to the millisecond:
# each scaling changes what `{hold}` lines say, so lengths settle over a few plans.
FIT_SCALINGS = 6


def load(path: str | os.PathLike[str], environment: Environment | None = None) -> Routine:
    """Read and check a routine file; raise RoutineError listing every problem in it as FILE:LINE:COL."""
    return load_routine(path, engine_names(environment or Environment.from_os()))


def step_ids(routine: Routine) -> list[str]:
    """The ids of the session's steps in order, as `plan` counts them: the intro, the lead-in, each top-level
    step (a group is one) and the outro, those the routine has. Nothing is spoken to know them."""
    return [section.id for section in expand(routine, Voice(), DEFAULT_VOICE)]


def voices(engine: str, environment: Environment | None = None, language: str | None = None) -> list[VoiceInfo]:
    """The voices of the speech engine named ``engine``: id, name, languages; with ``language`` (a code such as
    de or pt-br, or a name such as German), only those that speak it, the best first."""
    found = create_engine(engine, environment or Environment.from_os()).voices()
    return found if language is None else speaking(found, language)


def sidecar_kinds() -> tuple[str, ...]:
    """The sidecar files build_session can write beside an MP3."""
    from voiceguide.export.sidecars import SIDECARS

    return tuple(SIDECARS)


def load_profile(path: str | os.PathLike[str], environment: Environment | None = None) -> Overrides:
    """Read a profile file of standing preferences (holds, hold-scale or fit, voice, language)."""
    return _load_profile(path, engine_names(environment or Environment.from_os()))


def adjust(routine: Routine, holds: Mapping[str, str | int] | None = None, hold_scale: float | None = None,
           profile: Overrides | None = None) -> Routine:
    """The routine with holds set by step id (``{"tennis-balls": "90s"}``, or milliseconds) and the others
    multiplied by ``hold_scale``; ``profile`` (see load_profile) gives what these leave unset, and its holds
    for steps the routine does not have are skipped (skipped_holds says which)."""
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
         jobs: int | None = None, progress: Progress | None = None, for_build: bool = True,
         fit: Fit | str | int | None = None, keep: Collection[str] = ()) -> Session:
    """Plan the session exactly as build will render it: clips are made (or taken from the cache) here.

    ``voice`` wins over every voice the routine sets (the command line's
    --engine, --voice and --rate). ``jobs``: lines spoken at once (default:
    every core). ``progress`` is told (done, total) as lines are spoken.
    ``for_build``: each new clip is analysed for the level search as it
    arrives, on a core that would otherwise wait. ``fit`` (``"20m"``, or
    milliseconds): the session is made to last that long, to within half an
    MP3 frame (13 ms), by scaling its holds but those of the steps in ``keep``
    (the holds set with adjust); the session's Routine has the holds it got.
    """
    environment = environment or Environment.from_os()
    if fit is not None and not isinstance(fit, Fit):
        try:
            fit = parse_fit(fit, f"fit {fit}") if isinstance(fit, str) else Fit(check_fit(fit), f"fit {fit} ms")
        except ValueError as error:
            raise InputError(f"fit {fit}: {error}") from None
    from voiceguide.sounds import Sounds

    speech = Speech(environment, jobs=jobs)
    sounds = Sounds(environment)
    chosen = voice or Voice()
    sections = expand(routine, chosen, DEFAULT_VOICE)
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
    if fit is not None:

        def replan(changed: Routine) -> Timeline:
            # Lines that say {hold} change with it: spoken anew, and kept in the cache like every clip.
            parts = expand(changed, chosen, DEFAULT_VOICE)
            speech.prepare(lines_of(parts))
            return place(changed, parts, speech.length, sounds.length)

        routine, timeline = _fit(routine, timeline, fit, set(keep), replan)
    return Session(routine, timeline, environment, speech, sounds, analyses)


def _fit(routine: Routine, timeline: Timeline, fit: Fit, keep: set[str],
         replan: Callable[[Routine], Timeline]) -> tuple[Routine, Timeline]:
    """The routine with the holds not in ``keep`` scaled so that its session lasts ``fit``, and its timeline.

    A session is a whole number of MP3 frames (the planner puts every hold's
    end on the frame grid), so it lasts the frame count nearest the length
    asked: within half a frame, 13 ms. The holds are scaled together until
    the session is that close or stops coming closer, then the one hold whose
    change moves the least else is tuned to the millisecond.
    """
    scaled = [step_id for step_id in routine.hold_ids() if step_id not in keep]
    if not routine.hold_ids():
        raise InputError(f"{fit.source}: this routine has no holds, and fitting changes only the holds")
    if not scaled:
        raise InputError(f"{fit.source}: every hold of this routine is set with --hold or in the profile, "
                         "and those keep their length; fitting changes only the others")
    target = samples(fit.ms)
    goal = round(target / FRAME) * FRAME
    held = _held(timeline, scaled)
    fixed = timeline.duration - held
    if fixed + FRAME >= target:
        what = ("speech, rests, pauses and the holds you set" if keep & set(routine.hold_ids())
                else "speech, rests and pauses")
        raise InputError(f"{fit.source}: the session cannot last {format_clock(fit.ms)}: its {what} alone "
                         f"take {format_clock(milliseconds(fixed))}")
    steps = {step.id: step for step in routine.all_steps() if step.id in scaled}
    factor = 1.0
    for _ in range(FIT_SCALINGS):
        if timeline.duration == goal:
            return routine, timeline
        held = _held(timeline, scaled)
        factor *= max(target - (timeline.duration - held), FRAME) / held
        holds = {step_id: max(1, round((steps[step_id].hold or 0) * factor)) for step_id in scaled}
        changed = set_holds(routine, holds)
        if changed == routine:
            break
        routine, timeline = changed, replan(changed)
    if timeline.duration == goal:
        return routine, timeline
    # Tune one hold: preferably one no line speaks (its change says nothing anew), held fewest times.
    counts = {step_id: sum(1 for e in timeline.events if e.kind == "hold" and e.step == step_id) for step_id in scaled}
    now = {step.id: step for step in routine.all_steps()}
    order = sorted(scaled, key=lambda step_id: (_speaks_hold(now[step_id]), counts[step_id], -(now[step_id].hold or 0)))
    best = routine, timeline
    for step_id in order:
        found = _tune(routine, timeline, step_id, goal, target, replan)
        if abs(found[1].duration - target) < abs(best[1].duration - target):
            best = found
        if best[1].duration == goal:
            break
    if abs(best[1].duration - target) > FRAME:
        raise InputError(f"{fit.source}: could not fit the session to {format_clock(fit.ms)}: the closest "
                         f"it came is {format_clock(milliseconds(best[1].duration))}")
    return best


def _held(timeline: Timeline, step_ids: list[str]) -> int:
    """Samples spent in the holds of these steps."""
    return sum(event.length for event in timeline.events if event.kind == "hold" and event.step in step_ids)


def _speaks_hold(step: Step) -> bool:
    """Whether a line of the step says its hold (``{hold}``), which then changes with it."""
    return any(name == "hold" for text in step.say + step.between
               for _, name, _, _ in string.Formatter().parse(text.template))


def _tune(routine: Routine, timeline: Timeline, step_id: str, goal: int, target: int,
          replan: Callable[[Routine], Timeline]) -> tuple[Routine, Timeline]:
    """The routine with one step's hold the shortest for which the session lasts at least ``goal`` samples,
    found by bisection (the length only grows with a hold), or a millisecond shorter if that comes closer to
    ``target``; with the timeline of each."""
    plans: dict[int, tuple[Routine, Timeline]] = {}

    def at(ms: int) -> tuple[Routine, Timeline]:
        if ms not in plans:
            changed = set_holds(routine, {step_id: ms})
            plans[ms] = changed, replan(changed)
        return plans[ms]

    start = next(step.hold for step in routine.all_steps() if step.id == step_id) or 1
    plans[start] = routine, timeline
    count = max(1, sum(1 for e in timeline.events if e.kind == "hold" and e.step == step_id))
    step = max(1, abs(round((goal - timeline.duration) * 1000 / SAMPLE_RATE / count)))
    if timeline.duration < goal:
        low, high = start, start + step
        while at(high)[1].duration < goal:
            low, high, step = high, high + step, step * 2
    else:
        low, high = max(1, start - step), start
        while low > 1 and at(low)[1].duration >= goal:
            low, high, step = max(1, low - step), low, step * 2
        if at(low)[1].duration >= goal:
            return at(low)
    while high - low > 1:
        middle = (low + high) // 2
        if at(middle)[1].duration >= goal:
            high = middle
        else:
            low = middle
    return min(at(high), at(low), key=lambda found: abs(found[1].duration - target))


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

        decoded = miniaudio.decode_file(str(self.path), output_format=miniaudio.SampleFormat.SIGNED16,
                                        nchannels=1, sample_rate=SAMPLE_RATE)
        decoded_samples = decoded.samples[: self.timeline.duration]
        return AudioSegment(data=decoded_samples.tobytes(), sample_width=2, frame_rate=SAMPLE_RATE, channels=1)


def build_session(session: Session, target: str | os.PathLike[str], bitrate: int = DEFAULT_BITRATE,
          loudness: float = DEFAULT_LOUDNESS, sidecars: tuple[str, ...] = ()) -> Built:
    """Render the planned session to the MP3 file ``target`` at ``loudness`` LUFS, with its tags, chapters,
    lyrics and cover, and the ``sidecars`` asked for (lrc, vtt, json, m3u) beside it; every file atomically."""
    from voiceguide import export, tools
    from voiceguide.errors import Location
    from voiceguide.export import cover as covers
    from voiceguide.export.sidecars import sidecar_texts
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
    # The MP3 and its sidecars are replaced together, or none of them is.
    with export.atomic(path, sidecar_texts(session.timeline, path, list(sidecars))) as temp:
        level, measured = render(session.timeline, session._speech, session._sounds, temp, loudness, encoder,
                                 session._analyses or Analyses(environment.cache), environment.tools,
                                 export.tags(session.timeline, cover))
    return Built(path, path.stat().st_size, level, measured, session.timeline, environment)


def build_sessions(pairs: Sequence[Pair], overrides: Overrides | None = None, environment: Environment | None = None,
                   jobs: int | None = None, bitrate: int = DEFAULT_BITRATE, loudness: float = DEFAULT_LOUDNESS,
                   sidecars: tuple[str, ...] = (), strict: bool = False, progress: Progress | None = None,
                   done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Build many sessions at once: each voiceguide.batch.Pair (a routine, a profile or None, the MP3 to
    write; batch.pairs_of names them) goes through load_profile, load, adjust, plan_session and build_session
    with ``overrides`` over its profile. Every line is spoken once for all of them, and the sessions are
    rendered side by side, one process a core. A pair that fails does not stop the others: each Outcome
    (in the order of ``pairs``, and given to ``done`` as it ends) says how its pair ended."""
    from voiceguide import batch

    settings = batch.Settings(overrides or Overrides(), jobs, bitrate, loudness, tuple(sidecars), strict)
    stages = batch.Stages(load, load_profile, adjust, plan_session, build_session)
    return batch.build_all(pairs, settings, environment or Environment.from_os(), stages, progress, done)


def import_routine(path: str | os.PathLike[str], source: str | None = None) -> Imported:
    """Read a file of another tool, a w2a workout or an audio_program_generator phrase file (``source``:
    "w2a" or "apg"; by default told from the file), as a voiceguide routine: its text, which ``.save(path)``
    writes, and what could not be carried over. Bad input raises RoutineError (FILE:LINE:COL)."""
    from voiceguide.importing import import_file

    return import_file(path, source)
