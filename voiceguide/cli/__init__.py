"""The command line: the only package that knows click.

Errors from the core arrive as VoiceguideError and leave as one line each on
stderr with an exit code; a traceback appears only with --debug.

This front is light on purpose: ``main`` takes Ctrl-C in hand before the
commands (click and the core) load, which takes a fifth of a second. From
then on a Ctrl-C ends the command with one line, "interrupted", and exit
code 130, never a traceback.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

# Neither typing nor enum is imported: each takes milliseconds in which a Ctrl-C would still be Python's own
# (a traceback). Type checkers know the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from types import FrameType
else:
    try:  # the C module beneath `signal`, which builds enums on import: a millisecond in which Ctrl-C is not ours
        import _signal as signal
    except ImportError:
        import signal


class Exit:
    """Exit codes, plain ints."""

    OK = 0
    FAILURE = 1
    BAD_INPUT = 2
    INTERRUPTED = 130
    READER_LEFT = 141  # what a shell reports for a program whose output's reader went away (128 + SIGPIPE)


# Whether a command is at work. While it is, Ctrl-C raises KeyboardInterrupt, so that it undoes what it began
# (temporary files, engines, encoders) and says so; before and after, there is nothing to undo.
_at_work = False


def _on_ctrl_c(signum: int, frame: FrameType | None) -> None:
    if not _at_work:
        try:
            os.write(2, b"interrupted\n")
        except OSError:
            pass  # no stderr to say it on: the exit code says it
        os._exit(Exit.INTERRUPTED)
    if _importing(frame):
        # Raised inside the import machinery, it can leave a module's lock held, and the threads that import
        # that module next (a speech worker's reader importing numpy) wait forever: raised once it is done.
        _again_soon(0.01)
        return
    raise KeyboardInterrupt


def _importing(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _again_soon(delay: float) -> None:
    """Send Ctrl-C to this thread, the main one, once more ``delay`` seconds from now: as a signal, which wakes
    it from a wait (a flag alone would be seen only once the wait ends). Called where a KeyboardInterrupt was
    raised, which only happens on the main thread."""
    main = _thread.get_ident()

    def deliver() -> None:
        time.sleep(delay)
        if hasattr(signal, "pthread_kill"):
            signal.pthread_kill(main, signal.SIGINT)
        else:
            _thread.interrupt_main()

    _thread.start_new_thread(deliver, ())


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """A KeyboardInterrupt raised inside a finalizer (a ``__del__``) is dropped by Python with a traceback,
    and the command would go on to its end: instead it is raised again, a moment later, where it counts."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        _again_soon(0)
        return
    sys.__unraisablehook__(unraisable)


def main() -> None:
    """The ``voiceguide`` command. Once its output is flushed it leaves at once: Python's own teardown would
    free every object one by one and stop the threads numpy keeps, 50 to 100 ms after a build, for memory
    the system takes back anyway. Every file it writes is complete before then (see voiceguide.export)."""
    global _at_work
    # A Ctrl-C ignored where this started (a background job, nohup) stays ignored, as Python itself leaves it.
    previous, hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    if previous is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_ctrl_c)
        sys.unraisablehook = _unraisable
    try:
        # Before numpy is first imported: OpenBLAS would start a thread per core, which spins on the cores the
        # speech workers need, for matrix products too small to share out.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from voiceguide.cli.commands import run

        _at_work = True
        try:
            code = run()
        finally:
            _at_work = False
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # a reader that went away (voiceguide plan | head): nothing more can reach it
        os._exit(code)
    finally:  # reached only where os._exit does not leave (a test calling main)
        _at_work = False
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook


def __getattr__(name: str) -> object:
    """The click group and the rest of the commands' module, loaded on first use (tests, scripts)."""
    if name.startswith("__") or name == "commands":  # asked by the import system before the module is loaded
        raise AttributeError(name)
    import importlib

    commands = importlib.import_module("voiceguide.cli.commands")

    try:
        return getattr(commands, name)
    except AttributeError:
        raise AttributeError(f"module 'voiceguide.cli' has no attribute {name!r}") from None
