"""Speak one line with pyttsx3 in a process of its own (run by Pyttsx3Engine).

Reads a JSON request on stdin and writes the WAV; with --info, prints the
version and voices as JSON. Errors end with one line on stderr and exit 3.

With --fork (Linux), it loads pyttsx3 once and speaks a request a line,
each in a child forked from it: a fresh pyttsx3 engine for every line, as in
a process of its own, without starting Python and loading pyttsx3 every
time (that was four fifths of the work). Each request is answered with a
line: {} once the WAV is whole, or {"error": "..."}.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import wave
from typing import TextIO


def main() -> int:
    # pyttsx3 prints "Audio saved to ..." on stdout; keep stdout for our answer only.
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        if sys.argv[1:] == ["--info"]:
            answer.write(json.dumps(info()))
        elif sys.argv[1:] == ["--fork"]:
            speak_forked(answer)
        else:
            speak(json.loads(sys.stdin.read()))
    except Exception as error:  # the parent shows this line to the user
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 3
    finally:
        answer.flush()
    return 0


def speak_forked(answer: TextIO) -> None:
    """Answer each request on stdin, a line each, by speaking it in a child of this process."""
    _loaded()
    # pyttsx3 prints a line for every file it saves: no one reads them here.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    for line in sys.stdin:
        answer.write(json.dumps(_spoken_in_child(json.loads(line))) + "\n")
        answer.flush()


def _spoken_in_child(request: dict) -> dict:
    """Speak ``request`` in a forked child (which makes its own pyttsx3 engine); {} or {"error": why}."""
    read, write = os.pipe()
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        os.close(read)
        code = 0
        try:
            _die_with(parent)
            speak(request)
        except BaseException as error:  # said to the parent, which answers with it
            os.write(write, f"{type(error).__name__}: {error}".encode())
            code = 3
        os._exit(code)  # the WAV is whole: no teardown, which is the parent's to do
    os.close(write)
    with os.fdopen(read, "rb") as said:
        why = said.read().decode(errors="replace")
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return {}
    return {"error": why or f"the speaking process ended with status {status}"}


def _die_with(parent: int) -> None:
    """Linux ends this process when ``parent``, which forked it, ends (killed after a timeout, say)."""
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it ended before that took hold
        os._exit(1)


@functools.lru_cache(maxsize=1)
def _loaded() -> str:
    """pyttsx3 imported and its espeak driver mended, once a process (a forked child has them already)."""
    from voiceguide.environment import Environment

    # The worker is a program of its own: it runs the tools its parent chose (Environment.child_env).
    backend = Environment.from_os().tools.load_espeak() if sys.platform.startswith("linux") else "system"
    import pyttsx3  # noqa: F401

    if sys.platform.startswith("linux"):
        _keep_last_chunk()
    return backend


def _engine():
    backend = _loaded()
    import pyttsx3

    return pyttsx3.init(), backend


def _keep_last_chunk() -> None:
    """Make pyttsx3's espeak driver keep the audio that arrives with the end of a message.

    Its callback writes the WAV when it sees the end-of-message event and only
    then adds the samples that came with that event, so up to a buffer's worth
    (one second) of the end of a line can be lost, depending on timing. Adding
    the samples first, then letting the driver handle the events, keeps them.
    """
    import ctypes

    from pyttsx3.drivers.espeak import EspeakDriver

    original = EspeakDriver._onSynth

    def on_synth(self, wav, numsamples, events):  # noqa: ANN001 -- pyttsx3's own signature
        if numsamples > 0 and self._speaking:
            self._data_buffer += ctypes.string_at(wav, numsamples * ctypes.sizeof(ctypes.c_short))
        return original(self, wav, 0, events)

    # Bound when the driver is created, so this must come before pyttsx3.init().
    EspeakDriver._onSynth = on_synth


def _settings_just_before_speaking(rate: int, volume: float) -> None:
    """Give espeak-ng the rate and volume again right before the text, in the same queue.

    Now and then a line came out at the driver's first rate of 200 words a
    minute, as if the rate set after it had been lost: rarely, but in about
    one build of the sample routine in eight when the next worker started
    while the parent was busy. Set again as the last thing before the text,
    the rate is the one the text is spoken at (0 builds in 80 then).
    """
    from pyttsx3.drivers import _espeak
    from pyttsx3.drivers.espeak import EspeakDriver

    original = EspeakDriver._start_synthesis

    def start_synthesis(self, text):  # noqa: ANN001 -- pyttsx3's own signature
        _espeak.SetParameter(_espeak.RATE, rate, 0)
        _espeak.SetParameter(_espeak.VOLUME, int(round(volume * 100, 2)), 0)
        return original(self, text)

    EspeakDriver._start_synthesis = start_synthesis


def info() -> dict:
    from importlib.metadata import version

    engine, backend = _engine()
    voices = [
        {"id": v.id, "name": v.name, "languages": [_text(lang) for lang in (v.languages or [])]}
        for v in engine.getProperty("voices")
    ]
    return {
        "version": f"pyttsx3 {version('pyttsx3')}; {sys.platform}; {backend} {_backend_version()}",
        "default": engine.getProperty("voice") or (voices[0]["id"] if voices else ""),
        "voices": voices,
    }


def _backend_version() -> str:
    try:
        from pyttsx3.drivers import _espeak

        return _espeak.Info(None).decode()
    except Exception:  # not espeak (macOS, Windows): the platform names the voices' source
        return ""


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def speak(request: dict) -> None:
    engine, _ = _engine()
    if sys.platform.startswith("linux"):
        _settings_just_before_speaking(int(request["rate"]), float(request["volume"]))
    engine.setProperty("voice", request["voice"])
    engine.setProperty("rate", int(request["rate"]))
    engine.setProperty("volume", float(request["volume"]))
    path = request["path"]
    engine.save_to_file(request["text"], path)
    engine.runAndWait()
    # runAndWait can return before the file is complete; wait until it is a whole WAV.
    deadline = time.monotonic() + 10
    while not _complete(path):
        if time.monotonic() > deadline:
            raise RuntimeError("pyttsx3 finished without writing a complete WAV file")
        time.sleep(0.02)


def _complete(path: str) -> bool:
    """True once the file holds every frame its header announces (the header is written first)."""
    try:
        with wave.open(path, "rb") as clip:
            frames = clip.getnframes()
            data = clip.readframes(frames)
            return frames > 0 and len(data) == frames * clip.getsampwidth() * clip.getnchannels()
    except (OSError, EOFError, wave.Error):
        return False


if __name__ == "__main__":
    code = main()
    # The WAV and the answer are complete: leaving without Python's teardown (and espeak-ng's) saves 15 to
    # 25 ms, for every line where a worker speaks one line (not forking: see Pyttsx3Engine).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
