"""The commands, their options, and how the core's errors leave them (see voiceguide.cli)."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from voiceguide import __version__, api
from voiceguide.api import RATE_RANGE, Fit, HoldSetting, Overrides, Voice, check_scale, parse_fit, parse_hold_option
from voiceguide.cache import Stored
from voiceguide.cli import Exit
from voiceguide.durations import format_clock
from voiceguide.environment import Environment
from voiceguide.errors import InputError, RoutineError, VoiceguideError, after_ctrl_c, printable
from voiceguide.units import milliseconds

# The MP3 bitrates a phone plays in CBR, in kbps (voiceguide.mp3.BITRATES, not imported: it loads numpy).
BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)

CONTEXT = {"help_option_names": ["-h", "--help"]}


class HoldType(click.ParamType):
    """``ID=DURATION`` for --hold, checked where it is typed."""

    name = "ID=DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_hold_option(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class ScaleType(click.ParamType):
    name = "FACTOR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return check_scale(float(value))
        except ValueError as error:
            message = str(error) if "must be" in str(error) else f"expected a number such as 1.5, got {value!r}"
            self.fail(message, param, ctx)


class FitType(click.ParamType):
    """A session length for --fit, e.g. ``20m``, checked where it is typed."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Fit:
        if isinstance(value, Fit):
            return value
        try:
            return parse_fit(str(value), f"--fit {value}")
        except ValueError as error:
            self.fail(str(error), param, ctx)


class SidecarType(click.ParamType):
    """A comma-separated list of sidecar kinds, e.g. ``lrc,vtt``."""

    name = "KINDS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        kinds = tuple(dict.fromkeys(k.strip().lower() for k in str(value).split(",") if k.strip()))
        unknown = [k for k in kinds if k not in api.sidecar_kinds()]
        if unknown:
            self.fail(f"unknown sidecar {unknown[0]!r}; choose from {', '.join(api.sidecar_kinds())}", param, ctx)
        return kinds


class Group(click.Group):
    """Turns the core's errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(Exit.INTERRUPTED)
        except Exception as error:
            if after_ctrl_c(error):
                # Raised while undoing what Ctrl-C stopped (an encoder that Ctrl-C ended too): still Ctrl-C.
                click.echo("interrupted", err=True)
                ctx.exit(Exit.INTERRUPTED)
            if isinstance(error, VoiceguideError):
                for line in error.lines():
                    click.echo(line, err=True)
                _debug_traceback(ctx)
                ctx.exit(error.exit_code)
            if isinstance(error, BrokenPipeError):
                # `voiceguide voices | head`: the reader has what it wanted; the rest of the output goes nowhere.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                ctx.exit(Exit.READER_LEFT)
            # A bug of ours: say so in one line, details with --debug.
            click.echo(f"voiceguide: internal error: {type(error).__name__}: {error} (run with --debug for details)", err=True)
            _debug_traceback(ctx)
            ctx.exit(Exit.FAILURE)


def _debug_traceback(ctx: click.Context) -> None:
    if ctx.obj and ctx.obj.get("debug"):
        traceback.print_exc()


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="voiceguide")
@click.option("--debug", is_flag=True, help="Show a traceback when something fails.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Turn a scripted routine into one MP3 that talks you through it.

    \b
    Example:
      voiceguide plan scripts/sciatica-self-massage.yaml
      voiceguide build scripts/sciatica-self-massage.yaml --hold tennis-balls=90s
    """
    ctx.ensure_object(dict)["debug"] = debug


# Any path: one that is a file, or cannot be written, is met as the cache would meet it from
# $VOICEGUIDE_CACHE_DIR (one note, and the build goes on without storing), not as a usage error.
cache_dir_option = click.option(
    "--cache-dir", type=click.Path(path_type=Path),
    help="Where everything made is kept: clips, sounds, encoded pieces, levels (default: $VOICEGUIDE_CACHE_DIR, "
         "or the user cache folder).")


def _environment(cache_dir: Path | None = None) -> Environment:
    return Environment.from_os(cache_dir)


def _check_voice_model(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None and value.suffix.casefold() != ".onnx":
        raise click.BadParameter(f"expected a Piper voice model, a file ending in .onnx, got '{value}'", ctx, param)
    return value


def session_options(command: Callable, several: bool = False) -> Callable:
    """Options shared by `plan` and `build`, so both accept the same words and plan what build makes;
    ``several``: --profile may be repeated or name a folder (build makes a session for each)."""
    profile = (click.option("--profile", "profiles", multiple=True, type=click.Path(path_type=Path),
                            help="YAML file of standing preferences: holds, hold-scale or fit, voice, language. Repeat it, "
                                 "or name a folder of them, to build a session with each.")
               if several else
               click.option("--profile", type=click.Path(dir_okay=False, path_type=Path),
                            help="YAML file of standing preferences: holds, hold-scale or fit, voice, language."))
    options = [
        click.option("--hold", "holds", multiple=True, type=HoldType(),
                     help="Set one step's hold, e.g. --hold tennis-balls=90s (repeatable)."),
        click.option("--hold-scale", type=ScaleType(), help="Multiply every hold not set explicitly, e.g. 1.5."),
        click.option("--fit", type=FitType(),
                     help="Make the session last this long, e.g. 20m, by scaling every hold not set explicitly."),
        profile,
        click.option("--engine", help="Speech engine: pyttsx3 (the default), piper, or a plugin's."),
        click.option("--voice", help="Voice id, name or language, e.g. en-us (see `voiceguide voices`)."),
        click.option("--voice-model", type=click.Path(dir_okay=False, path_type=Path), callback=_check_voice_model,
                     help="A Piper voice model (.onnx, with its .onnx.json beside it); implies --engine piper."),
        click.option("--rate", type=click.IntRange(*RATE_RANGE), help="Speaking rate in words per minute."),
        cache_dir_option,
        click.option("--jobs", "-j", type=click.IntRange(1, 64), help="Clips to synthesize at once (default: all cores)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
        click.option("--strict", is_flag=True, help="Treat warnings about cue timing as errors (exit 2)."),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), command)


def _overrides(environment: Environment, holds: tuple[tuple[str, int], ...], hold_scale: float | None,
               fit: Fit | None, profile: Path | None, engine: str | None, voice: str | None, rate: int | None,
               voice_model: Path | None) -> Overrides:
    command_line = _command_line(holds, hold_scale, fit, engine, voice, rate, voice_model)
    return command_line.over(api.load_profile(profile, environment)) if profile else command_line


def _command_line(holds: tuple[tuple[str, int], ...], hold_scale: float | None, fit: Fit | None,
                  engine: str | None, voice: str | None, rate: int | None, voice_model: Path | None) -> Overrides:
    """What the command line sets, which wins over a profile."""
    if fit is not None and hold_scale is not None:
        raise InputError("--fit and --hold-scale both say how long the holds are; give one of them")
    if voice_model is not None:
        if voice is not None:
            raise click.UsageError("--voice and --voice-model both choose the voice; give one of them")
        # A model file is a Piper voice; relative to the current folder, as it was typed.
        engine, voice = engine or "piper", str(voice_model)
    return Overrides(
        holds={step_id: HoldSetting(ms, f"--hold {step_id}") for step_id, ms in holds},
        hold_scale=hold_scale,
        voice=Voice(engine=engine, voice=voice, rate=rate, engine_at=None, voice_at=None),
        fit=fit,
    )


def _plan(routine: Path, options: dict[str, Any], building: bool = False) -> api.Session:
    environment = _environment(options["cache_dir"])
    overrides = _overrides(environment, options["holds"], options["hold_scale"], options["fit"], options["profile"],
                           options["engine"], options["voice"], options["rate"], options["voice_model"])
    original = api.load(routine, environment)
    loaded = api.adjust(original, profile=overrides)
    # A profile is shared between routines: its holds for steps this one lacks are only noted.
    skipped = api.skipped_holds(original, overrides)
    if skipped is not None:
        click.echo(str(skipped), err=True)
    with _Progress(options["quiet"] or not environment.is_terminal) as progress:
        session = api.plan_session(loaded, overrides.voice, environment, options["jobs"], progress, for_build=building,
                                   fit=overrides.fit, keep=tuple(overrides.holds))
    warnings = list(session.timeline.warnings)
    if warnings and options["strict"]:
        raise RoutineError(warnings)
    for warning in warnings:
        click.echo(f"{warning.where}: warning: {warning.message}", err=True)
    return session


class _Progress:
    """A progress bar on stderr that appears only once there is something to synthesize."""

    def __init__(self, quiet: bool):
        # A bar in a log file is noise: the caller shows it only to a person at a terminal.
        self.quiet = quiet
        self.bar: Any = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="Speaking", file=sys.stderr, show_pos=True)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
            self.bar = None

    def finish(self) -> None:
        """Close the bar now, and show no other: what follows is printed below it."""
        self.__exit__(None, None, None)
        self.quiet = True


@cli.command(context_settings=CONTEXT)
@click.argument("routines", nargs=-1, required=True, type=click.Path(path_type=Path))
@cache_dir_option
def check(routines: tuple[Path, ...], cache_dir: Path | None) -> None:
    """Check routine files and report every problem as FILE:LINE:COL.

    \b
    Example:
      voiceguide check scripts/*.yaml
    """
    failed = False
    environment = _environment(cache_dir)
    for path in routines:
        try:
            routine = api.load(path, environment)
        except InputError as error:
            for line in error.lines():
                click.echo(line, err=True)
            failed = True
            continue
        # Counted as `plan` counts them, so both commands say the same number.
        steps = len(api.step_ids(routine))
        click.echo(f"{path}: ok ({printable(routine.title)}: {steps} step{'' if steps == 1 else 's'})")
    if failed:
        raise click.exceptions.Exit(Exit.BAD_INPUT)


@cli.command(context_settings=CONTEXT)
@click.argument("routine", type=click.Path(path_type=Path))
@session_options
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON (format 1).")
def plan(routine: Path, as_json: bool, **options: Any) -> None:
    """Show the session second by second, exactly as `build` will render it.

    \b
    Example:
      voiceguide plan scripts/sciatica-self-massage.yaml --hold-scale 1.5
      voiceguide plan scripts/box-breathing.yaml --json
      voiceguide plan scripts/meditation.yaml --fit 20m
    """
    session = _plan(routine, options)
    if as_json:
        click.echo(json.dumps(session.timeline.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(session.timeline.title)
        click.echo(session.timeline.table())


@cli.command(context_settings=CONTEXT)
@click.argument("routines", metavar="ROUTINE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@functools.partial(session_options, several=True)
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Where to write the MP3 (default: output/ROUTINE.mp3); with several sessions, the folder to "
                   "write them to (default: output/, as ROUTINE-PROFILE.mp3).")
@click.option("--bitrate", type=click.Choice([str(b) for b in BITRATES]), default=str(api.DEFAULT_BITRATE),
              show_default=True, help="MP3 bitrate in kbps (constant).")
@click.option("--loudness", type=click.FloatRange(-40, -6), default=api.DEFAULT_LOUDNESS, show_default=True,
              help="Integrated loudness to reach, in LUFS (-16 is the spoken-word norm).")
@click.option("--with", "sidecars", type=SidecarType(), default="",
              help="Sidecar files to write beside the MP3, comma-separated: lrc, vtt, json, m3u.")
@click.pass_context
def build(ctx: click.Context, routines: tuple[Path, ...], output: Path | None, bitrate: str, loudness: float,
          sidecars: tuple[str, ...], profiles: tuple[Path, ...], **options: Any) -> None:
    """Render a routine to one MP3: speech, holds and chimes, ready for a phone.

    Several routines (or a folder of them) and several --profile files
    (or a folder) build every routine with every profile, side by side,
    each line spoken once for all; a session that fails does not stop the
    others. Exit code 0 when all were built, 2 when every failure was bad
    input, 1 otherwise.

    \b
    Example:
      voiceguide build scripts/sciatica-self-massage.yaml
      voiceguide build scripts/piriformis-stretch.yaml --hold figure-four=45s -o ~/stretch.mp3
      voiceguide build scripts/sciatica-self-massage.yaml --profile patients/ -o sessions/
    """
    if len(routines) > 1 or routines[0].is_dir() or len(profiles) > 1 or any(p.is_dir() for p in profiles):
        _build_many(routines, profiles, output, int(bitrate), loudness, sidecars, options)
        return
    routine = routines[0]
    options["profile"] = profiles[0] if profiles else None
    if output is not None and output.is_dir():  # as click says it for a path that must be a file
        param = next(param for param in ctx.command.params if param.name == "output")
        raise click.BadParameter(f"File {str(output)!r} is a directory.", ctx, param)
    session = _plan(routine, options, building=True)
    target = output or session.environment.output_dir / f"{routine.stem}.mp3"
    # A build's files (the MP3 and its sidecars) are replaced together, or (a full disk, say) none of them is.
    built = api.build_session(session, target, int(bitrate), loudness, sidecars)
    duration = format_clock(milliseconds(session.timeline.duration))
    click.echo(f"{target}  {duration}  {built.size / 1_000_000:.1f} MB")
    # The voice is levelled to the target; a bed heard through long holds makes the whole file measure quieter,
    # and that is what a player's loudness normalisation sees.
    click.echo(f"loudness: speech {built.measured.speech:.1f} LUFS, whole file {built.measured.whole:.1f} LUFS")


def _build_many(routines: tuple[Path, ...], profiles: tuple[Path, ...], output: Path | None, bitrate: int,
                loudness: float, sidecars: tuple[str, ...], options: dict[str, Any]) -> None:
    """Build every routine with every profile (see voiceguide.batch): a line for each as it ends, then a sum."""
    from voiceguide import batch

    started = time.monotonic()
    environment = _environment(options["cache_dir"])
    overrides = _command_line(options["holds"], options["hold_scale"], options["fit"], options["engine"],
                              options["voice"], options["rate"], options["voice_model"])
    if output is not None and (output.is_file() or output.suffix.casefold() == ".mp3"):
        raise click.UsageError(f"-o names the folder to write several sessions to, got '{output}'")
    pairs = batch.pairs_of(batch.routine_files(routines), batch.routine_files(profiles),
                           output or environment.output_dir)
    # Each note (a routine's warning, a profile's skipped hold) and the sessions it concerns, said once at the
    # end: plain when it concerns every session, else after the ones it does, whose profile may be its cause.
    notes: dict[str, list[str]] = {}

    def done(outcome: batch.Outcome) -> None:
        progress.finish()  # the bar of the speech, before the first line of a session
        for note in outcome.notes:
            notes.setdefault(note, []).append(outcome.pair.name)
        figures = outcome.figures
        if figures is None:
            for line in outcome.error:
                click.echo(f"{outcome.pair.name}: {line}", err=True)
            return
        click.echo(f"{outcome.pair.name}: {outcome.pair.target}  {format_clock(milliseconds(figures.duration))}  "
                   f"{figures.size / 1_000_000:.1f} MB  loudness: speech {figures.speech:.1f} LUFS, "
                   f"whole file {figures.whole:.1f} LUFS")

    with _Progress(options["quiet"] or not environment.is_terminal) as progress:
        outcomes = api.build_sessions(pairs, overrides, environment, options["jobs"], bitrate, loudness, sidecars,
                                      options["strict"], progress, done)
    for note, names in notes.items():
        click.echo(note if len(names) == len(pairs) else f"{', '.join(names)}: {note}", err=True)
    failed = sum(1 for outcome in outcomes if outcome.figures is None)
    click.echo(f"{len(outcomes) - failed} built, {failed} failed in {time.monotonic() - started:.1f} s")
    if failed:
        raise click.exceptions.Exit(batch.exit_code(outcomes))


@cli.group(context_settings=CONTEXT)
def cache() -> None:
    """Inspect or empty the cache: spoken clips, sounds, encoded pieces and what was worked out from them.

    \b
    Example:
      voiceguide cache info
    """


@cache.command("info", context_settings=CONTEXT)
@cache_dir_option
def cache_info(cache_dir: Path | None) -> None:
    """Show where the cache is and what it holds, kind by kind: how many files, how much space.

    \b
    Example:
      voiceguide cache info
    """
    store = _environment(cache_dir).cache
    click.echo(str(store.root))
    click.echo("\n".join(_stored(store.contents())) or "nothing stored")


@cache.command("clear", context_settings=CONTEXT)
@cache_dir_option
def cache_clear(cache_dir: Path | None) -> None:
    """Delete everything in the cache and say what it was; the next build makes what it needs again.

    \b
    Example:
      voiceguide cache clear
    """
    store = _environment(cache_dir).cache
    removed = store.clear()
    click.echo(f"removed from {store.root}:\n" + "\n".join(_stored(removed)) if removed else f"nothing to remove in {store.root}")


def _stored(kinds: list[Stored]) -> list[str]:
    """Kinds of stored things as a table: count, kind, size; then the whole."""
    if not kinds:
        return []
    rows = [(str(kind.count), kind.kind, _size(kind.size)) for kind in kinds]
    rows.append((str(sum(k.count for k in kinds)), "files in all", _size(sum(k.size for k in kinds))))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{count:>{widths[0]}}  {kind:<{widths[1]}}  {size:>{widths[2]}}" for count, kind, size in rows]


def _size(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB" if count >= 1_000_000 else f"{-(-count // 1000)} kB"


def run() -> int:
    """Run the command the process was given; its exit code. Ctrl-C anywhere in it, click's own parsing
    included, ends with "interrupted" and 130 (click alone would say "Aborted!" and 1)."""
    try:
        code = cli.main(prog_name="voiceguide", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort as error:
        interrupted = isinstance(error.__cause__, KeyboardInterrupt)
        click.echo("interrupted" if interrupted else "Aborted!", err=True)
        return Exit.INTERRUPTED if interrupted else Exit.FAILURE
    except KeyboardInterrupt:  # between click's steps
        click.echo("interrupted", err=True)
        return Exit.INTERRUPTED
    except SystemExit as leaving:
        code = leaving.code
    if code is None:
        return Exit.OK
    if not isinstance(code, int):
        print(code, file=sys.stderr)
        return Exit.FAILURE
    return code


# Each of these modules adds its commands to `cli`: imported last, once `cli` and the shared options exist.
from voiceguide.cli import importing, serving, voices, writing  # noqa: E402, F401
