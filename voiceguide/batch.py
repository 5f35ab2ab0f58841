"""Many sessions at once: every routine with every profile, their speech made once, their MP3s side by side.

A clinic builds the same routine for each of its patients, and the sessions
say mostly the same lines: a profile changes holds, so only the lines that
say ``{hold}`` differ. So every pair is expanded first and the lines of all
of them are spoken once, through the speech stage and its cache; then the
pairs are planned, rendered and encoded in worker processes, one a core,
which find every clip in the cache. A pair that fails is reported as such
and the others go on.

This module sits under the Python API (api.py), which hands it the API's own
functions (Stages): a pair goes through exactly what a single build goes
through, in a process of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, NamedTuple

from voiceguide.environment import Environment
from voiceguide.errors import InputError, RoutineError, VoiceguideError, after_ctrl_c
from voiceguide.overrides import Overrides, skipped_holds
from voiceguide.plan.planner import expand, lines_of
from voiceguide.plan.timeline import Line
from voiceguide.speech.clips import DEFAULT_VOICE, Progress, Speech

ROUTINE_FILES = "*.yaml"  # what a folder given as routines or profiles contributes
# Seconds the workers have, after Ctrl-C reached the whole process group, to undo what they were writing before
# they are sent it themselves (Ctrl-C sent to this process alone), and then before they are killed.
GRACE = 2.0
LAST_GRACE = 20.0


@dataclass(frozen=True)
class Pair:
    """One session to build: a routine, the profile it is built with (None: none), and the MP3 to write."""

    routine: Path
    profile: Path | None
    target: Path

    @property
    def name(self) -> str:
        """The pair as its files were given: ``ROUTINE + PROFILE``."""
        return f"{self.routine} + {self.profile}" if self.profile is not None else str(self.routine)


@dataclass(frozen=True)
class Settings:
    """What every pair is built with: the command line's overrides (a profile's come under them), the clips
    spoken at once, the MP3's bitrate and loudness, its sidecars, and whether cue warnings are errors."""

    overrides: Overrides = field(default_factory=Overrides)
    jobs: int | None = None
    bitrate: int = 64
    loudness: float = -16.0
    sidecars: tuple[str, ...] = ()
    strict: bool = False


class Stages(NamedTuple):
    """The API's functions a pair goes through, as a script would call them (api.py hands them over)."""

    load: Callable[..., Any]
    load_profile: Callable[..., Any]
    adjust: Callable[..., Any]
    plan: Callable[..., Any]
    build: Callable[..., Any]


@dataclass(frozen=True)
class Figures:
    """What a single build prints of its session: its length in samples, its size in bytes, and how loud its
    speech and the whole file came out (LUFS)."""

    duration: int
    size: int
    speech: float
    whole: float


@dataclass(frozen=True)
class Outcome:
    """How one pair ended: built (its figures), or failed (the error's lines and exit code); and the notes and
    warnings its planning gave, as a single build prints them."""

    pair: Pair
    figures: Figures | None = None
    notes: tuple[str, ...] = ()
    error: tuple[str, ...] = ()
    exit_code: int = 0


# ---------------------------------------------------------------- the pairs and their files

def routine_files(paths: Sequence[Path]) -> list[Path]:
    """``paths`` with each folder replaced by its routine files (``*.yaml``, by name), each file once."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(entry for entry in path.glob(ROUTINE_FILES) if entry.is_file())
            if not inside:
                raise InputError(f"{path}: no {ROUTINE_FILES} files in this folder")
            found += inside
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def pairs_of(routines: Sequence[Path], profiles: Sequence[Path], folder: Path) -> list[Pair]:
    """Every routine with every profile (with none, when none is given), each written to ``folder`` as
    ``ROUTINE-PROFILE.mp3`` (``ROUTINE.mp3`` without profiles); two pairs that would write the same file are
    refused."""
    pairs = [Pair(routine, profile, folder / f"{routine.stem}-{profile.stem}.mp3") for routine in routines
             for profile in profiles] if profiles else [Pair(routine, None, folder / f"{routine.stem}.mp3")
                                                        for routine in routines]
    writers: dict[Path, Pair] = {}
    for pair in pairs:
        other = writers.setdefault(pair.target, pair)
        if other is not pair:
            raise InputError(f"{other.name} and {pair.name} would both be written to {pair.target}: "
                             "give the routines or profiles different file names")
    return pairs


def exit_code(outcomes: Sequence[Outcome]) -> int:
    """0 when every pair was built; 2 when every failure was bad input (as a single build's would be); else 1."""
    failed = [outcome.exit_code for outcome in outcomes if outcome.exit_code]
    if not failed:
        return 0
    return 2 if all(code == InputError.exit_code for code in failed) else 1


# ---------------------------------------------------------------- building

def build_all(pairs: Sequence[Pair], settings: Settings, environment: Environment, stages: Stages,
              progress: Progress | None = None, done: Callable[[Outcome], None] | None = None,
              workers: int | None = None) -> list[Outcome]:
    """Build every pair; ``done`` is told each outcome as the pair ends, and the outcomes come back in the
    order of ``pairs``. ``progress`` is told (done, total) as the lines are spoken; ``workers``: sessions
    rendered at once (default: every core)."""
    speak(pairs, settings, environment, stages, progress)
    count = max(1, min(len(pairs), workers or os.cpu_count() or 1))
    return _Workers(count, settings, environment, stages).run(list(pairs), done or (lambda outcome: None))


def speak(pairs: Sequence[Pair], settings: Settings, environment: Environment, stages: Stages,
          progress: Progress | None = None) -> int:
    """Speak, once, every line of every pair that is not in the cache yet, and analyse each new clip for the
    level search; return how many lines the pairs say in all.

    Only the lines known before planning are spoken here (a ``fit`` may say
    ``{hold}`` lines anew while it plans). Whatever fails here (a file, a
    voice, the engine) is left for the pairs it concerns to meet again, in
    their workers, and report as their own.
    """
    from voiceguide.loudness import Analyses
    from voiceguide.render import analyse

    routines: dict[Path, Any] = {}
    profiles: dict[Path, Overrides | None] = {}
    speech = Speech(environment, jobs=settings.jobs)
    lines: dict[Line, None] = {}
    for pair in pairs:
        try:
            if pair.routine not in routines:
                routines[pair.routine] = _try(stages.load, pair.routine, environment)
            if pair.profile is not None and pair.profile not in profiles:
                profiles[pair.profile] = _try(stages.load_profile, pair.profile, environment)
            routine, profile = routines[pair.routine], profiles.get(pair.profile) if pair.profile else None
            if routine is None or (pair.profile is not None and profile is None):
                continue
            overrides = settings.overrides.over(profile) if profile else settings.overrides
            said = lines_of(expand(stages.adjust(routine, profile=overrides), overrides.voice, DEFAULT_VOICE))
            for line in said:
                speech.key(line)  # an engine or voice that does not exist: this pair's to report
            lines.update(dict.fromkeys(said))
        except VoiceguideError:
            continue
    analyses = Analyses(environment.cache)
    try:
        speech.prepare(list(lines), progress, made=lambda clip: analyse(analyses, clip))
    except VoiceguideError:
        pass  # each pair speaks what it still lacks, and the pairs that say the failing line report it
    finally:
        speech.stop()
    return len(lines)


def _try(load: Callable[..., Any], *arguments: object) -> Any:
    """What ``load`` gives, or None for a file with errors (its pairs report them as they are built)."""
    try:
        return load(*arguments)
    except VoiceguideError:
        return None


def build_pair(pair: Pair, settings: Settings, environment: Environment, stages: Stages,
               read: dict[tuple[str, Path], Any] | None = None) -> Outcome:
    """Plan and build one pair as the `build` command does (see cli.commands._plan), its errors caught.
    ``read``: the routines and profiles read so far, kept there (a worker reads each file once, not once a
    pair: a routine takes longer to read than its session, warm, to plan)."""
    notes: list[str] = []

    def loaded(kind: str, load: Callable[..., Any], path: Path) -> Any:
        if read is None:
            return load(path, environment)
        if (kind, path) not in read:
            read[kind, path] = load(path, environment)
        return read[kind, path]

    try:
        profile = loaded("profile", stages.load_profile, pair.profile) if pair.profile is not None else None
        overrides = settings.overrides.over(profile) if profile else settings.overrides
        original = loaded("routine", stages.load, pair.routine)
        routine = stages.adjust(original, profile=overrides)
        skipped = skipped_holds(original, overrides)
        if skipped is not None:
            notes.append(str(skipped))
        session = stages.plan(routine, overrides.voice, environment, settings.jobs, None, for_build=True,
                              fit=overrides.fit, keep=tuple(overrides.holds))
        warnings = list(session.timeline.warnings)
        if warnings and settings.strict:
            raise RoutineError(warnings)
        notes += [f"{warning.where}: warning: {warning.message}" for warning in warnings]
        built = stages.build(session, pair.target, settings.bitrate, settings.loudness, settings.sidecars)
        figures = Figures(session.timeline.duration, built.size, built.measured.speech, built.measured.whole)
        return Outcome(pair, figures, tuple(notes))
    except Exception as error:
        if after_ctrl_c(error):
            raise KeyboardInterrupt from error
        if isinstance(error, VoiceguideError):
            return Outcome(pair, None, tuple(notes), tuple(error.lines()), error.exit_code)
        return Outcome(pair, None, tuple(notes), (f"internal error: {type(error).__name__}: {error}",), 1)


# ---------------------------------------------------------------- the worker processes

class _Workers:
    """Processes that build pairs, one pair at a time each, handed out as they finish.

    The first pair of each routine goes first: the level it finds (see
    render.level, ``remember``) is there for that routine's other pairs to
    try, and when it fits they keep its encoded pieces, which most of their
    sounds share. A worker that dies fails its pair; another takes its place.
    """

    def __init__(self, count: int, settings: Settings, environment: Environment, stages: Stages):
        self.count = count
        self.settings = settings
        self.environment = _Spec.of(environment)
        self.stages = stages
        # Forked where that is safe and quick (Linux): the worker starts with everything loaded.
        self.context: Any = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        # Each worker's pipe: its process, and the number of the pair it builds (None: it waits for one).
        self.running: dict[Connection, tuple[multiprocessing.process.BaseProcess, int | None]] = {}
        self.pairs: list[Pair] = []

    def run(self, pairs: list[Pair], done: Callable[[Outcome], None]) -> list[Outcome]:
        self.pairs = pairs
        outcomes: dict[int, Outcome] = {}
        leaders = {pair.routine: number for number, pair in reversed(list(enumerate(pairs)))}
        ready = deque(sorted(leaders.values()))
        following = {routine: deque(number for number, pair in enumerate(pairs)
                                    if pair.routine == routine and number != leader)
                     for routine, leader in leaders.items()}
        try:
            while len(outcomes) < len(pairs):
                self._hand_out(ready)
                for number, outcome in self._finished():
                    outcomes[number] = outcome
                    if leaders[outcome.pair.routine] == number:
                        ready.extend(following.pop(outcome.pair.routine))
                    done(outcome)
        except BaseException:
            self._stop()
            raise
        self._end()
        return [outcomes[number] for number in range(len(pairs))]

    def _hand_out(self, ready: deque[int]) -> None:
        """Send the pairs that are ready to the workers that are idle, starting workers up to ``count``."""
        while ready:
            idle = next((connection for connection, (_, pair) in self.running.items() if pair is None), None)
            if idle is None:
                if len(self.running) >= self.count:
                    return
                idle = self._start()
            process, _ = self.running[idle]
            try:
                idle.send(self.pairs[ready[0]])
            except OSError:  # it died while it waited: the pair goes to another
                process.join()
                del self.running[idle]
                idle.close()
                continue
            self.running[idle] = (process, ready.popleft())

    def _start(self) -> Connection:
        ours, theirs = self.context.Pipe()
        for stream in (sys.stdout, sys.stderr):  # a forked copy of what is not yet written would be written twice
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        process = self.context.Process(target=_work, args=(theirs, self.settings, self.environment, self.stages),
                                       daemon=True)
        with _ctrl_c_held():
            process.start()
        theirs.close()
        self.running[ours] = (process, None)
        return ours

    def _finished(self) -> Iterator[tuple[int, Outcome]]:
        """The pairs that end next (waiting for at least one), by number, with their outcomes."""
        busy = {connection: entry for connection, entry in self.running.items() if entry[1] is not None}
        assert busy, "every pair handed out has its outcome, yet pairs are left"
        sentinels = {process.sentinel: connection for connection, (process, _) in busy.items()}
        for ready in wait([*busy, *sentinels]):
            connection = sentinels[ready] if isinstance(ready, int) else ready
            if connection not in self.running or self.running[connection][1] is None:
                continue  # both its answer and its end were ready: taken once
            process, number = self.running[connection]
            assert number is not None
            pair = self.pairs[number]
            try:
                # With the pair as it was given, not the copy that came back through the pipe.
                outcome = dataclasses.replace(connection.recv(), pair=pair)
                self.running[connection] = (process, None)
            except (EOFError, OSError):
                # Died building it (out of memory, a crash in a library): this pair fails, the others go on.
                process.join()
                del self.running[connection]
                connection.close()
                outcome = Outcome(pair, error=(f"the process building it ended unexpectedly (exit code "
                                               f"{process.exitcode})",), exit_code=1)
            yield number, outcome

    def _end(self) -> None:
        for connection, (process, _) in self.running.items():
            with contextlib.suppress(OSError):
                connection.send(None)
            connection.close()
            process.join()
        self.running = {}

    def _stop(self) -> None:
        """End every worker, letting each undo what it was writing (see export.atomic): Ctrl-C at a terminal
        reached them with this process; otherwise they are sent it, and killed only when they do not end."""
        processes = [process for process, _ in self.running.values()]
        for connection in self.running:
            connection.close()
        self.running = {}
        deadline = time.monotonic() + GRACE
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGINT)
        deadline = time.monotonic() + LAST_GRACE
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


@dataclass(frozen=True)
class _Spec:
    """An Environment as it travels to a worker: its stderr is the worker's own."""

    cache_dir: Path
    output_dir: Path
    bundled: bool

    @classmethod
    def of(cls, environment: Environment) -> _Spec:
        return cls(environment.cache_dir, environment.output_dir, environment.bundled)

    def environment(self) -> Environment:
        return Environment(self.cache_dir, self.output_dir, self.bundled, sys.stderr, is_terminal=False)


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Ctrl-C held back while a worker starts: it arrives in each process once that process is ready for it (a
    worker as it begins _work), never in the moment between, where it would end a worker with a traceback."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _work(connection: Connection, settings: Settings, spec: _Spec, stages: Stages) -> None:
    """A worker: builds the pairs it is sent, one at a time, and answers each with its Outcome; ends when sent
    None, when this process's parent is gone (its end of the pipe closed), or at Ctrl-C, which undoes the
    pair at hand (export.atomic removes what it wrote) and leaves the saying of "interrupted" to the parent."""
    try:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        environment = spec.environment()
        read: dict[tuple[str, Path], Any] = {}
        while True:
            pair = connection.recv()
            if pair is None:
                break
            connection.send(build_pair(pair, settings, environment, stages, read))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        # At once, as the command itself leaves (see voiceguide.cli.main): nothing is left to write.
        os._exit(0)
