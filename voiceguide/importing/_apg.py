"""audio_program_generator's phrase files (github.com/jeffwright13/audio_program_generator): one
`phrase; seconds` a line, read as a voiceguide routine.

What apg does with them, as its source (audio_program_generator/apg.py) shows: it speaks each phrase, then
adds that many seconds of silence (decimals allowed, 0 for none); a phrase of `*` is a silence alone. The
background sound, its attenuation and fades, the accent and slow speech are options of its command line, not
part of the file.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from voiceguide.importing._shared import Draft, Reading, duration_text, short_title, title_from_name
from voiceguide.routine.model import MAX_SESSION_MS

KIND = "audio_program_generator phrase file"
SILENCE = "*"
LINE = re.compile(r"^(?P<phrase>.*);(?P<gap>\s*)(?P<seconds>.*?)\s*$")
SECONDS = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def looks_like(text: str) -> bool:
    """Whether the text's first line that is not blank is a `phrase; seconds` line."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    found = LINE.match(first)
    return found is not None and SECONDS.fullmatch(found["seconds"]) is not None


def read(path: str, text: str) -> tuple[Draft, Reading]:
    """The routine the phrase file at ``path``, holding ``text``, stands for: a step for each line that speaks
    its phrase and rests its seconds. Every line that is not `phrase; seconds` is a problem."""
    reading = Reading(path)
    lines = text.splitlines()
    if not any(";" in line for line in lines):
        reading.problem(reading.at(1, 1), "no 'phrase; seconds' line in the file: not an audio_program_generator "
                                          "phrase file (its --book-mode text is not read)")
        reading.stop_if_wrong()
    header = [f"Imported from the audio_program_generator phrase file {Path(path).name} by `voiceguide import`.",
              "Each line is a step that says its phrase, then rests the seconds the line gives."]
    draft = Draft(header, {"title": title_from_name(path)})
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        found = LINE.match(line)
        if found is None:
            reading.problem(reading.at(number, 1), "expected 'phrase; seconds': a phrase, a semicolon and the "
                                                   "seconds of silence after it")
            continue
        phrase = found["phrase"].strip()
        column = found.start("seconds") + 1
        seconds = found["seconds"]
        if not SECONDS.fullmatch(seconds):
            got = f"'{seconds}'" if seconds else "nothing"
            reading.problem(reading.at(number, column), "expected the seconds of silence after the phrase, a number "
                                                        f"such as 5 or 2.5, got {got}")
            continue
        exact = Decimal(seconds) * 1000
        ms = int(exact.to_integral_value())
        if ms > MAX_SESSION_MS:
            reading.problem(reading.at(number, column), f"{seconds} seconds of silence: longer than a whole "
                                                        "session may last (12 hours)")
            continue
        rest = duration_text(ms) if ms else None
        where = reading.at(number, len(line) - len(line.lstrip()) + 1)
        if not phrase:
            reading.problem(where, "no phrase before ';' (write * for a silence alone)")
        elif phrase == SILENCE:
            if rest is not None:
                draft.step(f"line {number}: silence", "Silence", rest=rest)
        else:
            say = reading.spoken(phrase, where, "phrase")
            if say is not None:
                draft.step(f"line {number}", short_title(phrase), say=say, rest=rest)
        if ms != exact:
            reading.lose(reading.at(number, column), f"{seconds} seconds is kept to the millisecond: {duration_text(ms)}")
    reading.stop_if_wrong()
    return draft, reading
