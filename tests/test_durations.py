"""Durations as people write them, and as the voice says them."""

from __future__ import annotations

import pytest

from voiceguide.durations import DurationError, format_clock, number_words, parse_duration, spoken_duration


@pytest.mark.parametrize(("text", "ms"), [
    (45, 45_000), (2.5, 2_500), ("45", 45_000), ("45s", 45_000), ("1m30s", 90_000), ("1:30", 90_000),
    ("2 min", 120_000), ("1.5m", 90_000), ("90 seconds", 90_000), ("1h", 3_600_000), ("1h 30m", 5_400_000),
    ("1 hour, 30 minutes", 5_400_000), ("500ms", 500), ("0", 0), ("1:02:03", 3_723_000), ("0:30", 30_000),
    (" 10 sec ", 10_000),
])
def test_parse(text: object, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(("text", "message"), [
    ("-5", "a duration cannot be negative, got '-5'"),
    (-1, "a duration cannot be negative, got -1"),
    ("abc", "expected a duration such as 45, 45s, 1m30s, 1:30, 2 min, 1.5m, 90 seconds or 1h, got 'abc'"),
    ("30s 1m", "units out of order in '30s 1m'; write larger units first"),
    ("5 parsecs", "unknown unit 'parsecs' in '5 parsecs'; use h, m, s or ms"),
    ("1:75", "seconds must be under 60 in '1:75'"),
    ("1:75:00", "minutes must be under 60 in '1:75:00'"),
    (True, "expected a duration such as 45, 45s, 1m30s, 1:30, 2 min, 1.5m, 90 seconds or 1h, got true"),
    ([1], "expected a duration such as 45, 45s, 1m30s, 1:30, 2 min, 1.5m, 90 seconds or 1h, got a list"),
    ("1m30", "expected a duration such as 45, 45s, 1m30s, 1:30, 2 min, 1.5m, 90 seconds or 1h, got '1m30'"),
])
def test_refused(text: object, message: str) -> None:
    with pytest.raises(DurationError) as error:
        parse_duration(text)
    assert str(error.value) == message


@pytest.mark.parametrize(("ms", "words"), [
    (90_000, "one minute thirty seconds"), (45_000, "forty-five seconds"), (60_000, "one minute"),
    (3_600_000, "one hour"), (3_723_000, "one hour two minutes three seconds"), (1_000, "one second"),
    (300, "one second"), (121_000, "two minutes one second"),
])
def test_spoken(ms: int, words: str) -> None:
    assert spoken_duration(ms) == words


def test_number_words() -> None:
    assert [number_words(n) for n in (0, 13, 21, 100, 115, 1999)] == [
        "zero", "thirteen", "twenty-one", "one hundred", "one hundred and fifteen",
        "one thousand nine hundred and ninety-nine"]


def test_clock() -> None:
    assert [format_clock(ms) for ms in (0, 5_000, 65_400, 3_723_000)] == ["0:00", "0:05", "1:05.4", "1:02:03"]
