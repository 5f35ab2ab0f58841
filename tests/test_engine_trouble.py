"""When the engine is in trouble: a line that hangs is tried again, an engine that keeps hanging is given up with
one line (not a wait of a minute for every line), a long wait says what it waits for, and a full disk under the
temporary folder is named as such rather than as an incomplete file."""

from __future__ import annotations

import io
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from voiceguide.environment import Environment
from voiceguide.errors import EngineError, EngineTimeout
from voiceguide.plan.timeline import Line
from voiceguide.routine import Voice
from voiceguide.speech import clips
from voiceguide.speech.engines import Engine, VoiceInfo

VOICE = Voice(engine="fake", rate=160, volume=1.0)


class Fake(Engine):
    """An engine that speaks a tone a word, or does what ``behave`` says for a line (called with the text and
    how many times it was asked for it)."""

    name = "fake"

    def __init__(self, environment: Environment, behave=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(environment)
        self.behave = behave
        self.asked: dict[str, int] = {}
        self.lock = threading.Lock()

    def version(self) -> str:
        return "fake 1"

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("v", "V", ("en",))]

    def default_voice(self) -> str:
        return "v"

    def synthesize(self, text: str, voice: str, rate: int, volume: float, path: Path, timeout: float) -> None:
        with self.lock:
            self.asked[text] = self.asked.get(text, 0) + 1
            times = self.asked[text]
        if self.behave is not None:
            self.behave(text, times, timeout, path)
            if path.exists():
                return
        tone = (8000 * np.sin(np.arange(int(22050 * 0.4 * len(text.split()))) / 3)).astype("<i2")
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(22050)
            wav.writeframes(tone.tobytes())


def speech_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behave=None, timeout: float = 0.2):  # type: ignore[no-untyped-def]
    stderr = io.StringIO()
    environment = Environment(cache_dir=tmp_path / "cache", stderr=stderr)
    engine = Fake(environment, behave)
    monkeypatch.setattr(clips, "create_engine", lambda name, environment: engine)
    return clips.Speech(environment, jobs=2, timeout=timeout), engine, stderr


def lines(count: int) -> list[Line]:
    return [Line(f"Line number {index} of the session.", VOICE) for index in range(count)]


def hang(text: str, times: int, timeout: float, path: Path) -> None:
    time.sleep(timeout)
    raise EngineTimeout(f"no answer from fake after {timeout:g} s")


def test_an_engine_that_hangs_on_every_line_is_given_up_after_a_few(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    speech, engine, _ = speech_with(tmp_path, monkeypatch, hang)
    with pytest.raises(EngineError, match="the engine seems to hang, giving up") as raised:
        speech.prepare(lines(20))
    # Three timeouts in a row give it up; the lines not yet begun are never tried (each would take a timeout).
    assert sum(engine.asked.values()) <= clips.GIVE_UP_AFTER + 1
    assert "\n" not in str(raised.value) and 'could not speak "Line number' in str(raised.value)


def test_a_line_that_hangs_once_is_tried_again_and_the_build_goes_on(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def once(text: str, times: int, timeout: float, path: Path) -> None:
        if text.startswith("Line number 3") and times == 1:
            hang(text, times, timeout, path)

    speech, engine, _ = speech_with(tmp_path, monkeypatch, once)
    wanted = lines(6)
    speech.prepare(wanted)
    assert all(speech.length(line) > 0 for line in wanted)
    assert engine.asked["Line number 3 of the session."] == 2


def test_timeouts_apart_do_not_add_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung line now and then, each time followed by lines that come back, never gives the engine up."""
    def every_other(text: str, times: int, timeout: float, path: Path) -> None:
        if int(text.split()[2]) % 3 == 0 and times == 1:
            hang(text, times, timeout, path)

    speech, _, _ = speech_with(tmp_path, monkeypatch, every_other)
    speech.prepare(lines(9))


def test_a_long_wait_says_what_it_waits_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(text: str, times: int, timeout: float, path: Path) -> None:
        time.sleep(0.3)

    monkeypatch.setattr(clips, "WAITING_NOTE_AFTER", 0.1)
    speech, _, stderr = speech_with(tmp_path, monkeypatch, slow, timeout=5.0)
    speech.prepare(lines(2))
    notes = stderr.getvalue().splitlines()
    assert notes and notes[0].startswith("note: still waiting for fake to speak \"Line number")


def test_a_full_disk_under_the_temporary_folder_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cut_short(text: str, times: int, timeout: float, path: Path) -> None:
        path.write_bytes(b"RIFF")  # what a write on a full disk leaves
        raise EngineError("pyttsx3 finished without writing a complete WAV file")

    speech, _, _ = speech_with(tmp_path, monkeypatch, cut_short)
    real = clips.shutil.disk_usage
    monkeypatch.setattr(clips.shutil, "disk_usage",
                        lambda folder: real(folder)._replace(free=0) if "voiceguide-" in str(folder) else real(folder))
    with pytest.raises(EngineError) as raised:
        speech.prepare(lines(1))
    message = str(raised.value)
    assert "no room left on the disk of the temporary folder" in message and "TMPDIR" in message
    assert "pyttsx3 finished without writing a complete WAV file" in message


def test_with_room_on_the_disk_the_engine_s_own_reason_stands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str, times: int, timeout: float, path: Path) -> None:
        raise EngineError("the engine broke")

    speech, _, _ = speech_with(tmp_path, monkeypatch, broken)
    with pytest.raises(EngineError, match="could not speak .*: the engine broke$"):
        speech.prepare(lines(1))
