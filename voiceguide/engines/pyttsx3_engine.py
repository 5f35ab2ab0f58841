"""The default engine: pyttsx3 (espeak-ng on Linux, the system voices on macOS and Windows).

pyttsx3 keeps one engine per process, ignores rate changes on a reused engine
and prints to stdout, so every clip is spoken by a fresh worker process
(pyttsx3_worker) whose output is captured, with a timeout.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

from voiceguide import tools
from voiceguide.engines import Engine, VoiceInfo
from voiceguide.errors import EngineError

WORKER = [sys.executable, "-m", "voiceguide.engines.pyttsx3_worker"]
INFO_TIMEOUT = 30.0
INFO_MAX_AGE = 24 * 3600.0  # seconds; a system espeak-ng updated in place is noticed within a day


class Pyttsx3Engine(Engine):
    name = "pyttsx3"

    def __init__(self) -> None:
        # Ask the worker once: it proves pyttsx3 and its backend load, and
        # brings the version and voices back in one start-up.
        self._info = _worker_info(tuple(WORKER))

    def version(self) -> str:
        return self._info["version"]

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(v["id"], v["name"], tuple(v["languages"])) for v in self._info["voices"]]

    def default_voice(self) -> str:
        return self._info["default"]

    def synthesize(self, text: str, voice: str, rate: int, volume: float, path: Path, timeout: float) -> None:
        request = json.dumps({"text": text, "voice": voice, "rate": rate, "volume": volume, "path": str(path)})
        # No mention of the text here: the speech layer names it in its message.
        _run_worker(list(WORKER), request, timeout)


@functools.lru_cache(maxsize=None)
def _worker_info(worker: tuple[str, ...]) -> dict:
    """pyttsx3's version and voices: kept on disk for a day, since asking takes a process start."""
    def usable(text: str) -> bool:
        try:
            _checked_info(text)
        except EngineError:
            return False
        return True

    ask = functools.partial(_run_worker, [*worker, "--info"], "", INFO_TIMEOUT, "starting pyttsx3")
    return _checked_info(tools.remembered(_stored_info(worker), ask, usable, INFO_MAX_AGE))


def _checked_info(text: str) -> dict:
    try:
        info = json.loads(text)
        assert isinstance(info["voices"], list) and info["version"] and info["default"]
    except (ValueError, KeyError, TypeError, AssertionError):
        raise EngineError(f"pyttsx3 worker gave an unreadable answer: {text[:200]!r}") from None
    return info


def _stored_info(worker: tuple[str, ...]) -> Path:
    """Where the answer for this installation is kept: another Python, pyttsx3 or espeak-ng asks again."""
    identity = [list(worker), tools.installed(), tools.force_bundled(), tools.system_espeak(), sys.platform]
    return tools.kept("engines", "pyttsx3", identity, ".json")


def _run_worker(command: list[str], request: str, timeout: float, doing: str = "") -> str:
    try:
        # stdout carries only the worker's answer; pyttsx3's own prints go to stderr there.
        result = subprocess.run(command, input=request, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EngineError(_doing(doing, f"no answer from pyttsx3 after {timeout:g} s")) from None
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
