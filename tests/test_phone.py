"""What a phone needs from a session, measured on the built MP3: loudness, chapters, lyrics, cover, sidecars."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from audio_probe import decode, ffmpeg, loudness
from click.testing import CliRunner
from mutagen.id3 import ID3
from PIL import Image

from voiceguide.cli import cli
from voiceguide.environment import Environment

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "scripts").glob("*.yaml"))
# Loudness does not depend on hold lengths (silence is gated out): short holds keep the tests quick.
SHORT = ("--hold-scale", "0.5")


def plan_and_build(routine: Path, output: Path, cache: Path, *options: str, build_only: tuple[str, ...] = ()) -> dict:
    common = ["--cache-dir", str(cache), *options]
    planned = CliRunner().invoke(cli, ["plan", str(routine), "--json", *common])
    assert planned.exit_code == 0, planned.stderr
    built = CliRunner().invoke(cli, ["build", str(routine), "-o", str(output), "-q", *common, *build_only])
    assert built.exit_code == 0, built.stderr
    return json.loads(planned.stdout)


def ebur128(path: Path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) of a file, by ffmpeg's ebur128 filter."""
    result = subprocess.run([ffmpeg(), "-nostdin", "-hide_banner", "-nostats", "-i", str(path),
                             "-af", "ebur128=peak=true:framelog=quiet", "-f", "null", "-"], capture_output=True, text=True)
    integrated = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", result.stderr)[-1])
    peak = float(re.findall(r"Peak:\s+(-?[\d.]+) dBFS", result.stderr)[-1])
    return integrated, peak


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_loudness_is_spoken_word_standard(script: Path, tmp_path: Path, speech_cache: Path) -> None:
    output = tmp_path / "session.mp3"
    plan_and_build(script, output, speech_cache, *SHORT)
    integrated, peak = ebur128(output)
    assert integrated == pytest.approx(-16.0, abs=1.0)
    assert peak <= -1.0


@pytest.mark.slow
def test_loudness_option_changes_the_target(tmp_path: Path, speech_cache: Path) -> None:
    output = tmp_path / "quiet.mp3"
    plan_and_build(ROOT / "scripts" / "piriformis-stretch.yaml", output, speech_cache, *SHORT,
                   build_only=("--loudness", "-23"))
    integrated, peak = ebur128(output)
    assert integrated == pytest.approx(-23.0, abs=1.0)
    assert peak <= -1.0


@pytest.mark.slow
def test_chimes_sit_under_the_speech(tmp_path: Path, speech_cache: Path) -> None:
    output = tmp_path / "session.mp3"
    plan = plan_and_build(ROOT / "scripts" / "sciatica-self-massage.yaml", output, speech_cache, *SHORT)
    audio = decode(output)

    def heard(event: dict) -> float:
        return loudness(audio[round(event["start"] * 44100) : round(event["end"] * 44100)])

    speech = sorted(heard(e) for e in plan["events"] if e["kind"] == "speech" and e["end"] - e["start"] > 2)
    chimes = [heard(e) for e in plan["events"] if e["kind"] == "chime"]
    typical_speech = speech[len(speech) // 2]
    # Heard clearly, never startling: several LU under the speech, never above it.
    assert all(typical_speech - 16 < chime < typical_speech - 3 for chime in chimes), (typical_speech, str(chimes))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, speech_cache: Path) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("phone")
    output = folder / "stretch.mp3"
    plan = plan_and_build(ROOT / "scripts" / "piriformis-stretch.yaml", output, speech_cache,
                          build_only=("--with", "lrc,vtt,json,m3u"))
    return plan, output


@pytest.mark.slow
def test_chapters_follow_the_steps(session: tuple[dict, Path]) -> None:
    plan, output = session
    tags = ID3(output)
    assert tags.version == (2, 3, 0)
    (toc,) = tags.getall("CTOC")
    chapters = {chap.element_id: chap for chap in tags.getall("CHAP")}
    ordered = [chapters[element] for element in toc.child_element_ids]
    assert len(ordered) == len(plan["steps"]) == 4
    for chapter, step in zip(ordered, plan["steps"]):
        assert chapter.sub_frames["TIT2"].text == [step["title"]]
        assert chapter.start_time == round(step["start"] * 1000)
        assert chapter.end_time == round(step["end"] * 1000)
    assert ordered[-1].end_time == round(plan["duration"] * 1000)


@pytest.mark.slow
def test_lyrics_follow_the_speech(session: tuple[dict, Path]) -> None:
    plan, output = session
    tags = ID3(output)
    (synced,) = tags.getall("SYLT")
    spoken = [e for e in plan["events"] if "text" in e]
    assert synced.format == 2
    assert [(text, ms) for text, ms in synced.text] == [(e["text"], round(e["start"] * 1000)) for e in spoken]
    (plain,) = tags.getall("USLT")
    assert plain.text.splitlines() == [e["text"] for e in spoken]


@pytest.mark.slow
def test_cover_is_present_and_small(session: tuple[dict, Path], tmp_path: Path, speech_cache: Path) -> None:
    _, output = session
    (art,) = ID3(output).getall("APIC")
    assert len(art.data) < 300_000
    assert Image.open(io.BytesIO(art.data)).size == (600, 600)
    # A routine's own cover is used; a large one is made small.
    picture = tmp_path / "big.png"
    Image.effect_noise((2400, 2400), 90).convert("RGB").save(picture)
    assert picture.stat().st_size > 300_000
    routine = tmp_path / "r.yaml"
    routine.write_text("title: Own cover\ncover: big.png\nsteps:\n  - {title: A, say: Stand tall., hold: 2s}\n")
    plan_and_build(routine, tmp_path / "own.mp3", speech_cache)
    (own,) = ID3(tmp_path / "own.mp3").getall("APIC")
    assert len(own.data) < 300_000
    assert max(Image.open(io.BytesIO(own.data)).size) == 600


@pytest.mark.slow
def test_sidecars_agree_with_the_mp3_and_the_plan(session: tuple[dict, Path]) -> None:
    plan, output = session
    assert json.loads(output.with_suffix(".json").read_text()) == plan
    synced = ID3(output).getall("SYLT")[0].text
    lrc = [line for line in output.with_suffix(".lrc").read_text().splitlines() if re.match(r"\[\d\d:", line)]
    assert len(lrc) == len(synced)
    for line, (text, ms) in zip(lrc, synced):
        minutes, seconds, hundredths, said = re.fullmatch(r"\[(\d\d):(\d\d)\.(\d\d)\](.*)", line).groups()
        assert said == text
        assert abs(int(minutes) * 60_000 + int(seconds) * 1000 + int(hundredths) * 10 - ms) < 10
    vtt = output.with_suffix(".vtt").read_text()
    assert vtt.startswith("WEBVTT\n")
    times = re.findall(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})", vtt)
    spoken = [e for e in plan["events"] if "text" in e]
    assert len(times) == len(spoken)
    for found, event in zip(times, spoken):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, found)
        assert (h1 * 3600 + m1 * 60 + s1) * 1000 + ms1 == round(event["start"] * 1000)
        assert (h2 * 3600 + m2 * 60 + s2) * 1000 + ms2 == round(event["end"] * 1000)
    m3u = output.with_suffix(".m3u").read_text().splitlines()
    assert m3u == ["#EXTM3U", f"#EXTINF:{round(plan['duration'])},{plan['title']}", output.name]


def test_unknown_sidecar_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["build", str(ROOT / "scripts" / "box-breathing.yaml"), "--with", "lrc,pdf"])
    assert result.exit_code == 2
    assert "unknown sidecar 'pdf'; choose from lrc, vtt, json, m3u" in result.stderr


@pytest.mark.parametrize("kind", [pytest.param("speech", marks=pytest.mark.slow), "noise", "low-tone", "sparse"])
def test_loudness_measured_in_process_agrees_with_ebur128(kind: str, tmp_path: Path, speech_cache: Path) -> None:
    """The meter the level search uses gives what ffmpeg's ebur128 gives, for sounds that the K-weighting treats
    differently (a 60 Hz tone is turned down by its high-pass, noise raised by its shelf)."""
    from voiceguide.loudness import Loudness

    rng = np.random.default_rng(3)
    t = np.arange(44100 * 8) / 44100
    if kind == "speech":
        output = tmp_path / "box.mp3"
        plan_and_build(ROOT / "scripts" / "box-breathing.yaml", output, speech_cache, *SHORT)
        samples = decode(output)
    elif kind == "noise":
        samples = np.round(rng.normal(0, 3000, len(t))).astype("<i2")
    elif kind == "low-tone":
        samples = np.round(9000 * np.sin(2 * np.pi * 60 * t)).astype("<i2")
    else:  # short bursts in long silence: the gates decide
        samples = np.zeros(len(t) * 3, dtype="<i2")
        for start in range(0, len(samples) - 44100, 44100 * 5):
            samples[start : start + 22050] = np.round(rng.normal(0, 6000, 22050)).astype("<i2")
    meter = Loudness()
    for start in range(0, len(samples), 100_000):  # in pieces, as a mix arrives
        meter.write(samples[start : start + 100_000])
    ours, peak = meter.result()
    result = subprocess.run([ffmpeg(), "-nostdin", "-hide_banner", "-nostats", "-f", "s16le", "-ar", "44100", "-ac", "1",
                             "-i", "pipe:0", "-af", "ebur128=framelog=quiet:peak=sample", "-f", "null", "-"],
                            input=samples.tobytes(), capture_output=True)
    theirs = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", result.stderr.decode())[-1])
    their_peak = float(re.findall(r"Peak:\s+(-?[\d.]+) dBFS", result.stderr.decode())[-1])
    assert ours == pytest.approx(theirs, abs=0.06)
    assert peak == pytest.approx(their_peak, abs=0.06)


@pytest.mark.slow
@pytest.mark.parametrize("script", ["sciatica-self-massage", "box-breathing"])
def test_forecast_predicts_the_mix(script: str, environment: Environment) -> None:
    """The level search's forecast of the loudness, at gains that the limiter does not touch and at gains it
    works hard at, is what mixing the session and measuring it gives."""
    from voiceguide import api, render
    from voiceguide.loudness import Analyses, Forecast, Loudness
    from voiceguide.sounds import Sounds
    from voiceguide.speech.clips import Speech

    routine = api.load(ROOT / "scripts" / f"{script}.yaml", environment)
    timeline = api.plan_session(routine, environment=environment, for_build=False).timeline
    # The clips the plan was made from, read back from the environment's cache.
    speech = Speech(environment)
    sounds = Sounds(environment)
    pending = render.layers(timeline, speech, sounds)
    forecast = Forecast([(layer.start, layer.length, layer.source, layer.load) for layer in pending], Analyses())
    for gain_db, sound_gain, ceiling in [(-6.0, 0.5, -3.0), (0.0, 1.0, -3.0), (8.0, 1.4, -3.0), (13.0, 1.4, -4.0)]:
        level = render.Level(10 ** (gain_db / 20), sound_gain, ceiling)
        meter = Loudness()
        render.mix(pending, meter, level, 0, timeline.duration)
        predicted = forecast.loudness([level.gain if layer.spoken else level.sound_gain for layer in pending], ceiling)
        assert predicted == pytest.approx(meter.result()[0], abs=0.1), (gain_db, ceiling)


@pytest.mark.slow
def test_meter_hears_what_the_file_holds(tmp_path: Path, speech_cache: Path, metered: list) -> None:
    """What the build measured of its session, each repeated countdown decoded once and counted as often as
    it is heard, is what ebur128 measures of the whole file."""
    cache = tmp_path / "cache"
    shutil.copytree(speech_cache, cache, ignore=shutil.ignore_patterns("frames-*", "levels"))
    output = tmp_path / "box.mp3"
    plan_and_build(ROOT / "scripts" / "box-breathing.yaml", output, cache, "--hold-scale", "1.5")
    assert metered, "a first build measures its session"
    integrated, peak = ebur128(output)
    assert metered[-1][0] == pytest.approx(integrated, abs=0.1)
    assert metered[-1][1] == pytest.approx(peak, abs=0.2)


def test_true_peak_finds_the_peaks_between_samples() -> None:
    """A tone at a quarter of the sample rate, sampled 45 degrees off its crests, peaks 3 dB over its samples;
    the meter finds its crests, also where a larger sample elsewhere would hide them from a sample meter."""
    from voiceguide.loudness import true_peak

    n = np.arange(44100)
    quarter = 24000 * np.sin(np.pi / 2 * n + np.pi / 4)  # every sample at 0.707 of the crest
    assert np.max(np.abs(quarter)) == pytest.approx(24000 / np.sqrt(2), rel=1e-6)
    assert true_peak(quarter) == pytest.approx(24000, rel=0.02)
    low = 20000 * np.sin(2 * np.pi * 440 * n / 44100)
    assert true_peak(low) == pytest.approx(20000, rel=0.001)
    hidden = np.concatenate([np.zeros(5000), [20000.0], np.zeros(5000), quarter[:2000], np.zeros(5000)])
    assert true_peak(hidden) == pytest.approx(24000, rel=0.02)
    assert true_peak(np.zeros(100)) == 0.0
    # Given the peak of what was measured before, it finds a larger one, and otherwise answers that.
    assert true_peak(hidden, 10000.0) == pytest.approx(24000, rel=0.02)
    assert true_peak(hidden, 30000.0) == 30000.0
    assert true_peak(np.zeros(0), 500.0) == 500.0


def test_the_decoder_called_straight_decodes_as_miniaudio_does(monkeypatch: pytest.MonkeyPatch,
                                                              environment: Environment) -> None:
    """The meter calls miniaudio's MP3 decoder straight in its compiled module, and through the miniaudio
    module where that has no such call: both give the samples miniaudio's own mp3_read_f32 gives."""
    import sys

    import miniaudio

    from voiceguide.mp3 import _meter, lame_command

    tone = (12000 * np.sin(2 * np.pi * 330 * np.arange(44100) / 44100)).astype("<i2")
    frames = subprocess.run(lame_command(environment.tools.ffmpeg, 64), input=tone.tobytes(), capture_output=True,
                            check=True).stdout
    expected = np.frombuffer(miniaudio.mp3_read_f32(frames).samples, np.float32)
    assert len(expected) > 44100 and np.max(np.abs(expected)) > 0.3
    try:
        _meter._decoder.cache_clear()
        straight = _meter._decoder()
        assert straight.__name__ == "decoded"
        assert np.array_equal(straight(frames), expected)
        monkeypatch.setitem(sys.modules, "_miniaudio", None)  # as if it had no such call
        _meter._decoder.cache_clear()
        assert np.array_equal(_meter._decoder()(frames), expected)
    finally:
        _meter._decoder.cache_clear()


def test_measuring_keeps_energies_not_sounds() -> None:
    """What the meters keep of a long sound is its energy per block: the sound itself is let go as it is
    analysed (a part kept for the next block must not hold on to all it came from)."""
    import tracemalloc

    from voiceguide.loudness import Binned, Energies

    tracemalloc.start()
    try:
        kept = [Energies(), Binned()]
        for _ in range(20):  # 200 s of sound, 70 MB as the float32 squares it is analysed in
            for meter in kept:
                meter.write(np.full(441_001, 1000, dtype="<i2"))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 4 * 2**20


def test_limiter_holds_the_ceiling_without_jumps() -> None:
    from voiceguide.loudness import limit

    rng = np.random.default_rng(5)
    t = np.arange(44100 * 3) / 44100
    # Speech-like: a buzz with sharp pulses, far over the ceiling once the gain is applied.
    source = (6000 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t))
              + rng.normal(0, 500, len(t))).astype("<i2")
    source[44100::7000] = 30000
    out = limit(source, 4.0, -3.0).astype(np.float64)
    top = 32767 * 10 ** (-3 / 20)
    assert np.max(np.abs(out)) <= top + 0.5
    gain = out / np.where(np.abs(source) > 200, source * 4.0, np.nan)
    steady = gain[~np.isnan(gain)]
    assert steady.max() <= 1.0 + 1e-3 and steady.min() > 0.05
    # The gain follows the peaks smoothly: between neighbouring loud samples it moves by well under 1 dB.
    loud = np.flatnonzero(np.abs(source) > 2000)
    close = loud[1:][np.diff(loud) == 1]
    step = np.abs(20 * np.log10(gain[close] / gain[close - 1]))
    assert np.nanmax(step) < 0.5
    # Under the ceiling nothing changes but the gain.
    quiet = np.round(source * 0.1).astype("<i2")
    assert np.array_equal(limit(quiet, 1.0, -3.0), quiet)


def test_limiter_gain_is_exact_over_a_long_clip() -> None:
    """The limiter's gain is the average over its window of the least gain needed around each sample, as worked
    out exactly (in double precision, window by window), to a unit of the output: a running sum in single
    precision drifted by a part in a thousand over a clip of a minute (up to 265 units off)."""
    from voiceguide.loudness import LOOKAHEAD, limit

    rng = np.random.default_rng(11)
    t = np.arange(44100 * 60) / 44100
    source = (7000 * np.sin(2 * np.pi * 160 * t) * (1 + 0.8 * np.sin(2 * np.pi * 0.7 * t))
              + rng.normal(0, 400, len(t))).astype("<i2")
    gain, top = 2.2, 32767 * 10 ** (-3 / 20)
    scaled = source * gain
    needed = np.minimum(top / np.maximum(np.abs(scaled), 1e-9), 1.0)
    # The least need within LOOKAHEAD on either side, then its mean over LOOKAHEAD + 1 samples, centred.
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(needed, LOOKAHEAD, constant_values=1.0),
                                                       2 * LOOKAHEAD + 1)
    held = windows.min(axis=1)
    size = LOOKAHEAD + 1
    half = size // 2
    padded = np.concatenate([np.full(half, held[0]), held, np.full(size - half, held[-1])])
    mean = np.convolve(padded, np.ones(size) / size, mode="valid")[: len(held)]
    exact = np.round(np.clip(scaled * mean, -top, top))
    out = limit(source, gain, -3.0).astype(np.float64)
    assert np.max(np.abs(out - exact)) <= 1.0
    # Far from any sample over the ceiling the gain is exactly the one asked.
    calm = np.convolve(np.abs(scaled) > top, np.ones(4 * LOOKAHEAD), mode="same") == 0
    assert calm.any() and np.array_equal(out[calm], np.round(scaled[calm]))


def test_a_drawn_cover_is_kept_and_a_damaged_one_drawn_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build draws the cover once: later builds take its bytes from the cache (drawing takes as long as the rest
    of a build whose clips are all cached). What the cache gives back is what was drawn, or it is drawn again."""
    from voiceguide.cache import Cache
    from voiceguide.export import cover

    cache = Cache(tmp_path / "cache")
    drawn = cover.generated("Hamstring stretch", cache)
    assert Image.open(io.BytesIO(drawn)).size == (600, 600)
    (stored,) = (tmp_path / "cache").rglob("*.arrays")
    assert cover.COVERS in stored.parts

    def draw(title: str) -> bytes:
        raise AssertionError(f"drawn again: {title}")

    monkeypatch.setattr(cover, "_drawn", draw)
    assert cover.generated("Hamstring stretch", cache) == drawn
    # Another title is another cover.
    with pytest.raises(AssertionError, match="drawn again: Hips"):
        cover.generated("Hips", cache)
    # A stored cover with a byte changed is not given back: it is drawn again.
    monkeypatch.undo()
    data = bytearray(stored.read_bytes())
    data[-100] ^= 0x55
    stored.write_bytes(data)
    assert cover.generated("Hamstring stretch", cache) == drawn
