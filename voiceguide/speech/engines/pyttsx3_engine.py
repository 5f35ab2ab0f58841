"""The default engine: pyttsx3 (espeak-ng on Linux, the system voices on macOS and Windows).

pyttsx3 keeps one engine per process, ignores rate changes on a reused engine
and prints to stdout, so every clip is spoken by a fresh process whose output
is kept from us, with a timeout. On Linux that process is a child forked by a
worker that stays up and has pyttsx3 loaded (pyttsx3_worker --fork), one
worker for each line spoken at once; elsewhere it is a worker of its own.
"""

from __future__ import annotations

import functools
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from voiceguide.environment import Environment
from voiceguide.errors import EngineError, EngineTimeout
from voiceguide.speech.engines import Engine, VoiceInfo
from voiceguide.tools import installed

WORKER = [sys.executable, "-m", "voiceguide.speech.engines.pyttsx3_worker"]
INFO_TIMEOUT = 30.0
INFO_MAX_AGE = 24 * 3600.0  # seconds; a system espeak-ng updated in place is noticed within a day
# Workers that fork a child a line (see pyttsx3_worker.speak_forked): Linux only, where forking a process that has
# loaded espeak-ng is safe; macOS's speech framework is not, and Windows cannot fork.
FORKING = sys.platform.startswith("linux")


class Pyttsx3Engine(Engine):
    name = "pyttsx3"

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        # Ask the worker once: it proves pyttsx3 and its backend load, and
        # brings the version and voices back in one start-up.
        self._info = _worker_info(environment, tuple(WORKER))
        self._idle: list[_ForkingWorker] = []  # forking workers between two lines
        self._lock = threading.Lock()

    def version(self) -> str:
        return self._info["version"]

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(v["id"], v["name"], tuple(v["languages"])) for v in self._info["voices"]]

    def default_voice(self) -> str:
        return self._info["default"]

    def synthesize(self, text: str, voice: str, rate: int, volume: float, path: Path, timeout: float) -> None:
        request = json.dumps({"text": text, "voice": voice, "rate": rate, "volume": volume, "path": str(path)})
        # No mention of the text here: the speech layer names it in its message.
        if not FORKING:
            _run_worker(self.environment, list(WORKER), request, timeout)
            return
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = _ForkingWorker(self.environment, list(WORKER))
        try:
            worker.speak(request, timeout)
        except BaseException:
            worker.kill()  # it may be stuck in the middle of a line: never asked again
            raise
        with self._lock:
            self._idle.append(worker)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


class _ForkingWorker:
    """A pyttsx3 worker started with --fork: a request a line in, an answer a line out."""

    def __init__(self, environment: Environment, command: list[str]) -> None:
        # What it says on stderr (only why it failed to start or stopped) goes to a file, which never fills
        # up and blocks it as a pipe would, and is read when it is gone.
        self._said = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen([*command, "--fork"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=self._said, bufsize=0, env=environment.child_env())
        except OSError as error:
            self._said.close()
            raise EngineError(f"cannot start the pyttsx3 worker: {error}") from None
        self._buffer = b""

    def speak(self, request: str, timeout: float) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(request.encode() + b"\n")
        except OSError:
            raise self._ended() from None
        answer = self._answer(timeout)
        try:
            why = json.loads(answer).get("error")
        except (ValueError, AttributeError):
            raise EngineError(f"pyttsx3 worker gave an unreadable answer: {answer[:200]!r}") from None
        if why:
            raise EngineError(str(why))

    def _answer(self, timeout: float) -> bytes:
        assert self._process.stdout is not None
        output = self._process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([output], [], [], left)[0]:
                raise EngineTimeout(f"no answer from pyttsx3 after {timeout:g} s")
            chunk = os.read(output, 1 << 12)
            if not chunk:
                raise self._ended()
            self._buffer += chunk
        answer, _, self._buffer = self._buffer.partition(b"\n")
        return answer

    def _ended(self) -> EngineError:
        """Why the worker stopped: its last word on stderr, or its exit code."""
        code = self._process.wait()
        self._said.seek(0)
        said = _last_line(self._said.read().decode(errors="replace"))
        self._said.close()
        return EngineError(said or f"worker exited with code {code}")

    def kill(self) -> None:
        self._process.kill()  # its child, if one is speaking, goes with it (see pyttsx3_worker)
        self._process.wait()
        self._said.close()

    def close(self) -> None:
        """Let it end: it leaves once its input ends."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=INFO_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
        self._said.close()


@functools.cache
def _worker_info(environment: Environment, worker: tuple[str, ...]) -> dict:
    """pyttsx3's version and voices: kept on disk for a day, since asking takes a process start."""
    def usable(text: str) -> bool:
        try:
            _checked_info(text)
        except EngineError:
            return False
        return True

    ask = functools.partial(_run_worker, environment, [*worker, "--info"], "", INFO_TIMEOUT, "starting pyttsx3")
    # Another Python, pyttsx3 or espeak-ng asks again.
    tools = environment.tools
    identity = [list(worker), installed(), tools.bundled, tools.system_espeak(), sys.platform]
    return _checked_info(environment.cache.answer("pyttsx3", identity, ask, usable, INFO_MAX_AGE))


def _checked_info(text: str) -> dict:
    try:
        info = json.loads(text)
        assert isinstance(info["voices"], list) and info["version"] and info["default"]
    except (ValueError, KeyError, TypeError, AssertionError):
        raise EngineError(f"pyttsx3 worker gave an unreadable answer: {text[:200]!r}") from None
    return info


def _run_worker(environment: Environment, command: list[str], request: str, timeout: float, doing: str = "") -> str:
    try:
        # stdout carries only the worker's answer; pyttsx3's own prints go to stderr there.
        result = subprocess.run(command, input=request, capture_output=True, text=True, timeout=timeout,
                                env=environment.child_env())
    except subprocess.TimeoutExpired:
        raise EngineTimeout(_doing(doing, f"no answer from pyttsx3 after {timeout:g} s")) from None
    except OSError as error:
        raise EngineError(_doing(doing, f"cannot start the pyttsx3 worker: {error}")) from None
    if result.returncode != 0:
        raise EngineError(_doing(doing, _last_line(result.stderr) or f"worker exited with code {result.returncode}"))
    return result.stdout


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _doing(doing: str, reason: str) -> str:
    return f"{doing}: {reason}" if doing else reason
