"""Benchmark: build time and peak memory of voiceguide against the naive pydub approach.

    python benchmarks/bench.py [--quick] [--runs N] [--pairs N] [--piper-pairs N] [--lengths 10,60,180]
                               [--no-bed] [--no-sample] [--no-piper] [--no-batch] [--batch-only]

Generates routines of 10, 60 and 180 minutes with the same spoken text (they
differ only in hold lengths), then measures, each as a separate process
(`python -m voiceguide ...` with a benchmark-owned cache and output folder):
a cold build (empty cache), a warm build, a rebuild after `--hold ID=...`,
and `plan`; and the naive baseline (benchmarks/naive.py: pydub `+=` over every
event, one export to MP3). The same routines under `background: rain` are
built cold (paired with the plain cold builds), warm and rebuilt (paired with
the plain rebuilds); the sample routine scripts/sciatica-self-massage.yaml,
whose lines say `{hold}`, is rebuilt after a new hold with pyttsx3. With
`--engine piper` the sample routine is measured in benchmarks/piper.py's
rounds: a replay of pure Piper (Piper's own API) paired with a cold build,
then a warm build and the same `{hold}` rebuild. The sample routine is also
built for 50 profiles that vary two holds its lines name: one `build` of
them all against 50 separate `build` commands, cold and warm, in sessions a
minute. Prints tables and the
project's targets marked PASS/FAIL, and writes everything to
benchmarks/results.json.

Peak memory is that of the whole process tree (voiceguide, its speech
workers, ffmpeg): the sum of the RSS of every process in the tree, sampled
from /proc every 10 ms, and never less than the largest single process's
ru_maxrss as the kernel reports it through wait4(). See README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import piper as piper_bench  # benchmarks/piper.py: this folder comes first on sys.path, ahead of Piper itself
from measuring import MB, measure, ratios, summary

HERE = Path(__file__).resolve().parent
NAIVE = HERE / "naive.py"
RESULTS = HERE / "results.json"
# pydub keeps the whole session as 44.1 kHz 16-bit mono and copies it on every `+=`.
PCM_BYTES_PER_SECOND = 44100 * 2
NAIVE_MEMORY_LIMIT = 4 * 1024 * MB

RATE = 160
STEPS = 8
# The step whose hold `--hold` changes for the rebuild.
REBUILD_STEP = "step-4"
# The background bed the generated routines are built under, for the rows "under a bed".
BED = "rain"
# A routine whose lines say {hold}: a new hold on its SAMPLE_STEP speaks new lines.
SAMPLE = Path("scripts") / "sciatica-self-massage.yaml"
SAMPLE_STEP = piper_bench.REBUILD_STEP
# Many sessions at once: the sample routine with this many profiles, each a pair of holds on two steps whose lines
# say {hold} (as a clinic's patients' own holds differ: in steps of 5 and 15 seconds).
BATCH_VARIANTS = 50
BATCH_HOLDS = (("palms", 45, 5, 10), ("knuckles", 60, 15, 5))  # step, first hold (s), step (s), how many values

TARGETS = {
    "rebuild_vs_naive_60": 20.0,      # naive 60 min / rebuild 60 min, at least
    "rebuild_60_s": 0.5,              # rebuild of 60 min, seconds, under
    "warm_180_over_10": 1.5,          # warm 180 min / warm 10 min, at most
    "build_peak_mb": 150.0,           # peak memory of any build, under
    "cold_minus_synthesis_s": 1.0,    # what a cold build adds to pure synthesis, under
    "plan_cached_s": 0.3,             # plan on a cached routine, under
    "bed_cold_over_plain_60": 2.0,    # cold build under the bed / without it, 60 min (paired), at most
    "bed_rebuild_over_plain_60": 3.0, # rebuild under the bed / without it, 60 min (paired), at most
    "hold_line_rebuild_s": 0.5,       # sample routine rebuilt after a hold its lines name, pyttsx3, at most
    "hold_line_rebuild_piper_s": 0.8, # the same with --engine piper, at most
    "piper_cold_over_pure": piper_bench.TARGETS["cold_vs_pure"],  # first Piper build / pure Piper (paired), at most
    "piper_build_peak_mb": piper_bench.TARGETS["peak_mb"],        # peak of any Piper build (whole tree), at most
}


# ---------------------------------------------------------------- routines

SAY = [
    ("Settle in", ["Lie on your back with your knees bent and your feet flat on the floor.",
                   "Let your arms rest by your sides and breathe out slowly."]),
    ("Pelvic tilt", ["Gently press your lower back into the floor.",
                     "Keep the movement small and let your breath stay easy."]),
    ("Knee to chest", ["Bring your right knee toward your chest and hold it with both hands.",
                       "Relax your shoulders and let the hip soften."]),
    ("Figure four", ["Cross your right ankle over your left knee.",
                     "Draw the left thigh in until you feel the stretch in your buttock."]),
    ("Spinal twist", ["Let both knees fall slowly to the left.",
                      "Turn your head to the right if your neck allows it."]),
    ("Child's pose", ["Come onto your hands and knees, then sit back toward your heels.",
                      "Rest your forehead on the floor and stretch your arms forward."]),
    ("Cat and cow", ["Move slowly between arching and rounding your back.",
                     "Follow the rhythm of your breath, in as you arch, out as you round."]),
    ("Final rest", ["Lie back down and let your whole body become heavy.",
                    "There is nothing left to do but breathe."]),
]


def routine_yaml(hold_s: int, background: str | None = None) -> str:
    """A realistic routine whose spoken text does not depend on ``hold_s`` (no {hold} in it)."""
    lines = [f"background: {background}"] if background else []
    lines += [
        "title: Benchmark session",
        "description: Generated by benchmarks/bench.py.",
        "voice:",
        f"  rate: {RATE}",
        "chime: bell",
        "countdown: 3",
        "intro:",
        "  - Welcome. This session takes you through eight gentle positions.",
        "  - Move slowly, and stop if anything hurts.",
        "lead-in: 5s",
        "closing: gong",
        "steps:",
    ]
    for index, (title, say) in enumerate(SAY, 1):
        lines += [f"  - title: {title}", f"    id: step-{index}", "    say:"]
        lines += [f"      - {json.dumps(text)}" for text in say]
        lines.append(f"    hold: {hold_s}s")
        if index % 2:
            lines.append("    halfway: true")
        else:
            lines.append("    remaining: [30s]")
        if index == 3:
            lines.append("    cues:\n      - {at: 20s, say: Keep breathing into your belly.}")
        if index in (2, 5):
            lines += ["    rest: 6s", "    next: true"]
    lines += ["outro:", "  - That is the end of the session.", "  - Take your time before you get up."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the benchmark

class Bench:
    def __init__(self, root: Path, runs: int, pairs: int, quick: bool, lengths: list[int], source: Path | None,
                 bed: bool = True):
        self.root = root
        self.runs = runs
        self.pairs = pairs
        self.quick = quick
        self.lengths = lengths
        self.bed = bed
        self.cache = root / "cache"
        # Builds under the bed keep a cache of their own, so that a cold build of one kind leaves the other's warm.
        self.bed_cache = root / "cache-bed"
        self.out = root / "out"
        self.logs = root / "logs"
        self.routines = root / "routines"
        for folder in (self.out, self.logs, self.routines):
            folder.mkdir(parents=True, exist_ok=True)
        # Bytecode is cached as for an installed package, but under the temp folder, so
        # that no process compiles voiceguide anew and nothing is written beside the sources.
        self.env = dict(os.environ, TMPDIR=str(root), PYTHONPYCACHEPREFIX=str(root / "pycache"))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env.pop("VOICEGUIDE_CACHE_DIR", None)
        if source is not None:
            # Ahead of the installed (editable) package, for voiceguide and its speech workers.
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")]))
        # The worker moved with the engines into speech/: a revision from before the move has it in engines/.
        package = (source or Path(__file__).resolve().parent.parent) / "voiceguide"
        moved = (package / "speech" / "engines" / "pyttsx3_worker.py").exists()
        self.worker_module = f"voiceguide.{'speech.' if moved else ''}engines.pyttsx3_worker"
        self.notes: list[str] = []
        self.others: list[float] = []
        self.synthesis_lines = 0
        self._voice: str | None = None

    def voiceguide(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "voiceguide", *args]

    def run(self, name: str, command: list[str]) -> dict:
        return self.report(name, measure(command, self.root, self.env, self.logs, name))

    def report(self, name: str, result: dict) -> dict:
        self.others.append(result["others_cores"])
        print(f"  {name:<28} {result['wall_s']:8.2f} s {result['peak_mb']:8.1f} MB   "
              f"(cpu {result['cpu_s']:.2f} s; other processes: {result['others_cores']:.2f} cores)", flush=True)
        return result

    def plan_json(self, routine: Path, *extra: str, cache: Path | None = None) -> dict:
        command = self.voiceguide("plan", str(routine), "--cache-dir", str(cache or self.cache), "--quiet", "--json",
                                  *extra)
        result = subprocess.run(command, cwd=self.root, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"plan failed: {result.stderr.strip()}")
        return json.loads(result.stdout)

    # -- routines

    def make_routines(self) -> dict[int, dict]:
        """Routines whose totals come out at the wanted lengths (calibrated with one plan)."""
        probe_hold = 60
        probe = self.routines / "probe.yaml"
        probe.write_text(routine_yaml(probe_hold))
        timeline = self.plan_json(probe)
        holds = [e for e in timeline["events"] if e["kind"] == "hold"]
        fixed = timeline["duration"] - sum(e["end"] - e["start"] for e in holds)
        sessions = {}
        for minutes in self.lengths:
            hold_s = max(40, round((minutes * 60 - fixed) / len(holds)))
            path = self.routines / f"session-{minutes}min.yaml"
            path.write_text(routine_yaml(hold_s))
            timeline = self.plan_json(path)
            texts = {e["text"] for e in timeline["events"] if "text" in e}
            sessions[minutes] = {
                "routine": path,
                "hold_s": hold_s,
                "timeline": timeline,
                "duration_s": timeline["duration"],
                "events": len(timeline["events"]),
                "distinct_texts": len(texts),
            }
            (self.routines / f"session-{minutes}min.json").write_text(json.dumps(timeline))
            print(f"  {minutes:>3} min routine: holds {hold_s} s, {timeline['duration'] / 60:.1f} min, "
                  f"{len(timeline['events'])} events, {len(texts)} distinct lines", flush=True)
            if self.bed:
                sessions[minutes]["bed"] = self.bed_routine(minutes, hold_s, timeline)
        all_texts = [{e["text"] for e in s["timeline"]["events"] if "text" in e} for s in sessions.values()]
        if any(texts != all_texts[0] for texts in all_texts):
            raise RuntimeError("the generated routines do not speak the same lines")
        return sessions

    def bed_routine(self, minutes: int, hold_s: int, plain: dict) -> dict:
        """The routine of ``minutes`` under BED; checked to be as long as the plain one and to speak the same."""
        path = self.routines / f"session-{minutes}min-{BED}.yaml"
        path.write_text(routine_yaml(hold_s, background=BED))
        timeline = self.plan_json(path, cache=self.bed_cache)
        spoken = [[{e[k] for e in t["events"] if "text" in e} for k in ("text", "start")] for t in (timeline, plain)]
        if timeline["duration"] != plain["duration"] or spoken[0] != spoken[1]:
            raise RuntimeError(f"the {minutes} min routine under {BED} is not timed as the plain one")
        return {"routine": path, "duration_s": timeline["duration"]}

    # -- voiceguide

    def build(self, name: str, routine: Path, *extra: str, cache: Path | None = None, output: str = "") -> dict:
        mp3 = self.out / f"{output or routine.stem}.mp3"
        return self.run(name, self.voiceguide("build", str(routine), "--cache-dir", str(cache or self.cache),
                                              "-o", str(mp3), "--quiet", *extra))

    def forget_made(self, cache: Path | None = None) -> None:
        """Empty the cache of everything a build makes (clips, sounds, pieces, levels), as for a routine never
        built before; answers about the installed tools stay, as they do on a machine that has built anything."""
        cache = cache or self.cache
        for entry in cache.glob("*") if cache.is_dir() else ():
            if entry.name != "answers":
                shutil.rmtree(entry, ignore_errors=True)

    def voiceguide_runs(self, minutes: int, session: dict) -> dict:
        routine = session["routine"]
        bed = session.get("bed")
        # Each cold build right after a replay of pure synthesis: the machine's speed drifts, and the two
        # members of a pair see about the same machine. The cold build under the bed goes right after the
        # plain one in even pairs and right before its replay in odd ones: the ratio of the two compares
        # builds seconds apart, and neither always runs first.
        cold, synthesis, bed_cold = [], [], []
        for i in range(self.pairs):
            if bed and i % 2:
                bed_cold.append(self.bed_build(f"{minutes}min {BED} cold build #{i + 1}", bed, cold=True))
            synthesis.append(self.pure_synthesis(session["timeline"]))
            self.forget_made()
            cold.append(self.build(f"{minutes}min cold build #{i + 1}", routine))
            if bed and not i % 2:
                bed_cold.append(self.bed_build(f"{minutes}min {BED} cold build #{i + 1}", bed, cold=True))
        warm = [self.build(f"{minutes}min warm build #{i + 1}", routine) for i in range(self.runs)]
        bed_warm = [self.bed_build(f"{minutes}min {BED} warm build #{i + 1}", bed) for i in range(self.runs) if bed]
        rebuild, bed_rebuild = [], []
        for i in range(self.runs):
            # A different hold each time, so no run can reuse the previous run's output. Under the bed the same
            # holds (in a cache of its own), alternating which of the two goes first.
            hold = f"{REBUILD_STEP}={session['hold_s'] + 7 * (i + 1)}s"
            if bed and i % 2:
                bed_rebuild.append(self.bed_build(f"{minutes}min {BED} rebuild #{i + 1}", bed, "--hold", hold))
            rebuild.append(self.build(f"{minutes}min rebuild #{i + 1}", routine, "--hold", hold))
            if bed and not i % 2:
                bed_rebuild.append(self.bed_build(f"{minutes}min {BED} rebuild #{i + 1}", bed, "--hold", hold))
        plan = [self.run(f"{minutes}min plan #{i + 1}",
                         self.voiceguide("plan", str(routine), "--cache-dir", str(self.cache), "--quiet"))
                for i in range(self.runs)]
        found = {"cold": summary(cold), "warm": summary(warm), "rebuild": summary(rebuild), "plan": summary(plan)}
        if all(synthesis):
            pairs = [round(build["wall_s"] - synth, 4) for build, synth in zip(cold, synthesis)]
            found["pure_synthesis"] = {"wall_s": round(statistics.median(synthesis), 4), "runs": synthesis}
            found["cold_minus_synthesis"] = {"wall_s": round(statistics.median(pairs), 4), "runs": pairs}
        if bed:
            found["bed"] = {
                "background": BED, "duration_s": bed["duration_s"],
                "cold": summary(bed_cold), "warm": summary(bed_warm), "rebuild": summary(bed_rebuild),
                "cold_over_plain": ratios(bed_cold, cold), "warm_over_plain": ratios(bed_warm, warm, paired=False),
                "rebuild_over_plain": ratios(bed_rebuild, rebuild),
            }
        return found

    def bed_build(self, name: str, bed: dict, *extra: str, cold: bool = False) -> dict:
        if cold:
            self.forget_made(self.bed_cache)
        return self.build(name, bed["routine"], *extra, cache=self.bed_cache)

    # -- the sample routine

    def sample_runs(self, routine: Path) -> dict:
        """The sample routine, whose lines say {hold}, with pyttsx3, the default engine, run as a user runs it
        (without --engine), in a cache of its own: a first build, warm builds, then rebuilds after
        `--hold SAMPLE_STEP=...`, a new hold each run, so each speaks new lines. Piper's are in piper_runs."""
        cache = self.root / "cache-sample-pyttsx3"
        found: dict = {"routine": str(SAMPLE), "step": SAMPLE_STEP, "engines": {"pyttsx3": None}, "hold_s": None}
        missing = self.missing_engine("pyttsx3", cache)
        if missing:
            self.notes.append(f"sample routine with pyttsx3 not measured: {missing}")
            return found
        first = self.build("sample pyttsx3 first build", routine, cache=cache, output="sample-pyttsx3")
        timeline = self.plan_json(routine, cache=cache)
        base = round(next(e["end"] - e["start"] for e in timeline["events"]
                          if e["kind"] == "hold" and e.get("step") == SAMPLE_STEP))
        warm = [self.build(f"sample pyttsx3 warm build #{i + 1}", routine, cache=cache, output="sample-pyttsx3")
                for i in range(self.runs)]
        holds = [f"{SAMPLE_STEP}={base + piper_bench.REBUILD_LONGER_S * (i + 1)}s" for i in range(self.runs)]
        rebuild = [self.build(f"sample pyttsx3 rebuild #{i + 1}", routine, "--hold", hold, cache=cache,
                              output="sample-pyttsx3") for i, hold in enumerate(holds)]
        found["engines"]["pyttsx3"] = {"first": summary([first]), "warm": summary(warm),
                                       "rebuild": summary(rebuild), "holds": holds}
        if self.bed:
            found["engines"][f"pyttsx3 under {BED}"] = self.sample_under_bed(routine, holds)
        # Planned with the first rebuild's hold, whose lines are in the cache by now.
        spoken = [{e["text"] for e in self.plan_json(routine, *extra, cache=cache)["events"] if "text" in e}
                  for extra in ((), ("--hold", holds[0]))]
        found["new_lines"] = len(spoken[1] - spoken[0])
        found["hold_s"] = base
        return found

    def sample_under_bed(self, routine: Path, holds: list[str]) -> dict:
        """The sample routine under BED, as a user adds a bed to it, in a cache of its own: a first build, warm
        builds, then the same `{hold}` rebuilds as without the bed. Its many cues make many dips in the bed, each
        a stretch to encode anew when a hold before it moves, which the generated routines, with few cues, do not
        show."""
        cache = self.root / f"cache-sample-{BED}"
        under = self.routines / f"{routine.stem}-{BED}.yaml"
        under.write_text(f"background: {BED}\n" + routine.read_text(encoding="utf-8"), encoding="utf-8")
        first = self.build(f"sample under {BED} first build", under, cache=cache, output=f"sample-{BED}")
        warm = [self.build(f"sample under {BED} warm build #{i + 1}", under, cache=cache, output=f"sample-{BED}")
                for i in range(self.runs)]
        rebuild = [self.build(f"sample under {BED} rebuild #{i + 1}", under, "--hold", hold, cache=cache,
                              output=f"sample-{BED}") for i, hold in enumerate(holds)]
        return {"first": summary([first]), "warm": summary(warm), "rebuild": summary(rebuild), "holds": holds}

    # -- many sessions at once

    def batch_runs(self, routine: Path) -> dict:
        """The sample routine built for BATCH_VARIANTS profiles: one `build` with every profile against as many
        separate `build` commands, each in a cache of its own; first cold (made cache emptied first), then warm.
        """
        profiles = self.routines / "profiles"
        profiles.mkdir(exist_ok=True)
        for number in range(BATCH_VARIANTS):
            holds = []
            for index, (step, first, step_s, values) in enumerate(BATCH_HOLDS):
                place = number // math.prod(v for *_, v in BATCH_HOLDS[:index]) % values
                holds.append(f"  {step}: {first + step_s * place}s")
            (profiles / f"patient-{number + 1:02d}.yaml").write_text("holds:\n" + "\n".join(holds) + "\n")
        files = sorted(profiles.glob("*.yaml"))
        together, apart = self.root / "cache-batch", self.root / "cache-separate"
        found: dict = {"routine": str(SAMPLE), "sessions": len(files), "holds": [list(h) for h in BATCH_HOLDS]}

        def one_build(kind: str) -> dict:
            return self.run(f"batch {kind}", self.voiceguide("build", str(routine), "--profile", str(profiles),
                                                             "--cache-dir", str(together), "-o",
                                                             str(self.out / "batch"), "--quiet"))

        def separate(kind: str) -> dict:
            runs = [self.build(f"separate {kind} {file.stem}", routine, "--profile", str(file), cache=apart,
                               output=f"separate/{routine.stem}-{file.stem}") for file in files]
            return {"wall_s": round(sum(r["wall_s"] for r in runs), 4), "peak_mb": max(r["peak_mb"] for r in runs),
                    "cpu_s": round(sum(r["cpu_s"] for r in runs), 4), "runs": runs}

        (self.out / "separate").mkdir(exist_ok=True)
        for kind in ("cold", "warm"):
            if kind == "cold":
                self.forget_made(together)
                self.forget_made(apart)
            found[kind] = {"batch": one_build(kind), "separate": separate(kind)}
            for way in ("batch", "separate"):
                measured = found[kind][way]
                measured["sessions_per_minute"] = round(len(files) * 60 / measured["wall_s"], 1)
            found[kind]["speedup"] = round(found[kind]["separate"]["wall_s"] / found[kind]["batch"]["wall_s"], 2)
            print(f"  {kind}: one build {found[kind]['batch']['sessions_per_minute']:.1f} sessions a minute, "
                  f"separate builds {found[kind]['separate']['sessions_per_minute']:.1f} "
                  f"({found[kind]['speedup']:.2f}x)", flush=True)
        same = sum((self.out / "batch" / f"{routine.stem}-{file.stem}.mp3").read_bytes()
                   == (self.out / "separate" / f"{routine.stem}-{file.stem}.mp3").read_bytes() for file in files)
        found["identical_files"] = same
        return found

    # -- Piper

    def piper_runs(self, routine: Path, rounds: int, source: Path | None) -> dict | None:
        """The sample routine with --engine piper, in piper.py's rounds, each in a cache of its own: pure Piper
        (Piper's own API, the same lines) and a cold build, paired, which goes first alternating; then a warm
        build and the {hold} rebuild (the routine's hold on SAMPLE_STEP made 5 s longer)."""
        folder = self.root / "piper"
        folder.mkdir()
        missing = self.missing_engine("piper", folder / "cache-voices")
        if missing:
            self.notes.append(f"Piper rows not measured (they need the natural extra and its voice): {missing}")
            return None
        try:
            piper = piper_bench.Bench(folder, source, routine)
        except subprocess.CalledProcessError as error:
            why = (error.stderr or "").strip().splitlines()[-1:] or [f"exit code {error.returncode}"]
            self.notes.append(f"Piper rows not measured: the sample routine's lines could not be listed ({why[0]})")
            return None
        piper.warm_up()
        found = []
        for number in range(rounds):
            found.append(piper.round(number))
            for kind, result in found[-1].items():
                self.report(f"piper {kind} #{number + 1}", result)
        return {"routine": str(SAMPLE), "lines": piper.count, "rebuild_hold": piper.rebuild_hold,
                "new_lines": piper.new_lines, "summary": piper_bench.summarise(found), "rounds": found}

    def missing_engine(self, engine: str, cache: Path) -> str | None:
        """Why ``engine`` cannot speak here (its extra not installed, no voice), or None when it can."""
        listed = subprocess.run(self.voiceguide("voices", "--engine", engine, "--cache-dir", str(cache)),
                                cwd=self.root, env=self.env, capture_output=True, text=True)
        if listed.returncode == 0 and listed.stdout.strip():
            return None
        return (listed.stderr.strip().splitlines() or ["no voice listed"])[-1]

    def pure_synthesis(self, timeline: dict) -> float | None:
        """Wall time of only the speech a cold build makes, with the same parallelism.

        Replays what the pyttsx3 engine does for a routine whose clips are not
        in the cache, as many lines at once as cores, the longest first: on
        Linux, one `pyttsx3_worker --fork` for each line spoken at once, which
        forks a child a line; elsewhere one worker process a line. Nothing is
        decoded, trimmed, cached, planned or rendered. The engine's version and
        voices are asked once, outside the timing: a build finds them kept on
        in the cache (see Cache.answer), as these builds do.
        """
        worker = [sys.executable, "-m", self.worker_module]
        lines = {(e["text"], e["voice"].get("rate"), e["voice"].get("volume", 1.0))
                 for e in timeline["events"] if "text" in e}
        folder = self.root / "synthesis"
        try:
            if self._voice is None:
                info = subprocess.run([*worker, "--info"], capture_output=True, text=True, env=self.env, check=True)
                self._voice = json.loads(info.stdout)["default"]
            voice = self._voice
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            requests = queue.SimpleQueue()
            for index, (text, rate, volume) in enumerate(sorted(lines, key=lambda line: -len(line[0]))):
                requests.put(json.dumps({"text": text, "voice": voice, "rate": rate or RATE, "volume": volume or 1.0,
                                         "path": str(folder / f"{index}.wav")}))
            failures: list[str] = []

            def speak_all() -> None:
                forking = sys.platform.startswith("linux")
                forker = (subprocess.Popen([*worker, "--fork"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL, text=True, env=self.env) if forking else None)
                try:
                    while True:
                        try:
                            request = requests.get_nowait()
                        except queue.Empty:
                            return
                        if forker is None:
                            subprocess.run(worker, input=request, capture_output=True, text=True, env=self.env,
                                           check=True)
                            continue
                        forker.stdin.write(request + "\n")
                        forker.stdin.flush()
                        if forker.stdout.readline().strip() != "{}":
                            failures.append(request)
                finally:
                    if forker is not None:
                        forker.stdin.close()
                        forker.wait()

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                for done in [pool.submit(speak_all) for _ in range(os.cpu_count() or 1)]:
                    done.result()
            took = time.perf_counter() - started
            if failures:
                raise ValueError(f"{len(failures)} lines not spoken")
        except (OSError, subprocess.CalledProcessError, ValueError, KeyError) as error:
            note = (f"pure synthesis could not be timed with the worker ({error}); "
                    "cold minus warm is used instead")
            if note not in self.notes:
                self.notes.append(note)
            return None
        self.synthesis_lines = len(lines)
        print(f"  {'pure synthesis':<28} {took:8.2f} s  ({len(lines)} lines, {os.cpu_count()} at once)", flush=True)
        return round(took, 4)

    # -- naive

    def naive_synth(self, timeline: dict) -> dict:
        texts = sorted({e["text"] for e in timeline["events"] if "text" in e})
        texts_file = self.root / "naive-texts.json"
        texts_file.write_text(json.dumps(texts))
        return self.run("naive synthesis (once)", [sys.executable, str(NAIVE), "synth", str(texts_file),
                                                     str(self.root / "naive-clips"), "--rate", str(RATE)])

    def naive(self, minutes: int, session: dict) -> dict | None:
        estimate = 2 * session["duration_s"] * PCM_BYTES_PER_SECOND + 200 * MB
        limit = min(NAIVE_MEMORY_LIMIT, 0.8 * _available_memory())
        if estimate > limit:
            self.notes.append(f"naive {minutes} min skipped: it would need about {estimate / MB:.0f} MB "
                              f"(limit {limit / MB:.0f} MB)")
            return None
        if self.quick and minutes > 60:
            self.notes.append(f"naive {minutes} min skipped with --quick (it takes the longest)")
            return None
        timeline = self.routines / f"session-{minutes}min.json"
        result = self.run(f"{minutes}min naive", [sys.executable, str(NAIVE), "assemble", str(timeline),
                                                  str(self.root / "naive-clips"),
                                                  str(self.out / f"naive-{minutes}min.mp3")])
        return summary([result])


def _available_memory() -> int:
    with open("/proc/meminfo") as file:
        for line in file:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return NAIVE_MEMORY_LIMIT


def export_revision(rev: str, root: Path) -> tuple[Path, str]:
    """``git archive`` the voiceguide package at ``rev`` into ``root``/src."""
    commit = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    source = root / "src"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", commit, "voiceguide"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    return source, commit


def loadavg() -> str:
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def machine(env: dict[str, str], commit: str | None) -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as file:
        total = int(file.readline().split()[1]) * 1024
    try:
        found = subprocess.run([sys.executable, "-c", "import voiceguide; print(voiceguide.__version__, "
                                "voiceguide.__file__)"], capture_output=True, text=True, env=env,
                               cwd=env["TMPDIR"]).stdout.split()
        version, location = found[0], str(Path(found[1]).parent)
    except (OSError, IndexError):
        version, location = "?", "?"
    if commit is not None:
        return _machine(cpu, total, version, location, commit)
    try:
        head = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "voiceguide"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        head, dirty = "?", ""
    return _machine(cpu, total, version, location, head + (" + uncommitted changes in voiceguide/" if dirty else ""))


def _machine(cpu: str, total: int, version: str, location: str, commit: str) -> dict:
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(total / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "voiceguide": version,
        "voiceguide_from": location,
        "commit": commit,
    }


# ---------------------------------------------------------------- report

def targets(results: dict, synthesis: dict | None) -> list[dict]:
    sessions = results["sessions"]
    found = []

    def add(name: str, value: float | None, passed: bool | None, wanted: str, detail: str = "") -> None:
        found.append({"target": name, "value": value, "wanted": wanted,
                      "result": "n/a" if passed is None else ("PASS" if passed else "FAIL"), "detail": detail})

    s60 = sessions.get("60")
    if s60 and s60.get("naive"):
        ratio = s60["naive"]["wall_s"] / s60["rebuild"]["wall_s"]
        add("rebuild 60 min vs naive 60 min", round(ratio, 2), ratio >= TARGETS["rebuild_vs_naive_60"],
            f">= {TARGETS['rebuild_vs_naive_60']:g}x",
            f"naive {s60['naive']['wall_s']:.2f} s / rebuild {s60['rebuild']['wall_s']:.2f} s")
    else:
        add("rebuild 60 min vs naive 60 min", None, None, f">= {TARGETS['rebuild_vs_naive_60']:g}x", "not measured")
    if s60:
        value = s60["rebuild"]["wall_s"]
        add("rebuild 60 min", value, value < TARGETS["rebuild_60_s"], f"< {TARGETS['rebuild_60_s']:g} s")
    s10, s180 = sessions.get("10"), sessions.get("180")
    if s10 and s180:
        ratio = s180["warm"]["wall_s"] / s10["warm"]["wall_s"]
        add("warm 180 min / warm 10 min", round(ratio, 2), ratio <= TARGETS["warm_180_over_10"],
            f"<= {TARGETS['warm_180_over_10']:g}x",
            f"{s180['warm']['wall_s']:.2f} s / {s10['warm']['wall_s']:.2f} s")
    builds = [(f"{m} min {kind}", run["peak_mb"]) for m, s in sessions.items()
              for kind in ("cold", "warm", "rebuild") for run in s[kind]["runs"]]
    where, peak = max(builds, key=lambda item: item[1])
    add("peak memory of any build", peak, peak < TARGETS["build_peak_mb"], f"< {TARGETS['build_peak_mb']:g} MB",
        f"largest: {where}")
    extra = {}
    for minutes, s in sessions.items():
        if synthesis:  # the median over cold builds, each less the replay of pure synthesis just before it
            extra[minutes] = round(s["cold_minus_synthesis"]["wall_s"], 3)
        else:
            extra[minutes] = round(s["cold"]["wall_s"] - s["warm"]["wall_s"], 3)
    worst = max(extra.values())
    how = ("each cold build less the pure synthesis timed just before it" if synthesis
           else "synthesis estimated as cold - warm")
    add("cold build minus pure synthesis", worst, worst < TARGETS["cold_minus_synthesis_s"],
        f"< {TARGETS['cold_minus_synthesis_s']:g} s",
        ", ".join(f"{m} min: {v:.2f} s" for m, v in extra.items()) + f" ({how})")
    plans = {m: s["plan"]["wall_s"] for m, s in sessions.items()}
    worst = max(plans.values())
    add("plan on cached routine", worst, worst < TARGETS["plan_cached_s"], f"< {TARGETS['plan_cached_s']:g} s",
        ", ".join(f"{m} min: {v:.2f} s" for m, v in plans.items()))
    bed = s60.get("bed") if s60 else None
    for kind, key in (("cold build", "bed_cold_over_plain_60"), ("rebuild", "bed_rebuild_over_plain_60")):
        name, wanted = f"{kind} under {BED} / without, 60 min", f"<= {TARGETS[key]:g}x"
        if bed:
            row = kind.split()[0]
            ratio = bed[f"{row}_over_plain"]
            add(name, ratio["ratio"], ratio["ratio"] <= TARGETS[key], wanted,
                f"median over {len(ratio['runs'])} pairs; medians {bed[row]['wall_s']:.2f} s / "
                f"{s60[row]['wall_s']:.2f} s")
        else:
            add(name, None, None, wanted, "not measured")
    sample = results.get("sample")
    measured = sample["engines"]["pyttsx3"] if sample else None
    name, wanted = "sample routine rebuilt after a new {hold} (pyttsx3)", f"<= {TARGETS['hold_line_rebuild_s']:g} s"
    if measured:
        value = measured["rebuild"]["wall_s"]
        add(name, value, value <= TARGETS["hold_line_rebuild_s"], wanted,
            f"--hold {SAMPLE_STEP}=..., {sample['new_lines']} new lines; median of {measured['rebuild']['n']}")
    else:
        add(name, None, None, wanted, "not measured")
    piper = results.get("piper")
    wanted = {"hold": f"<= {TARGETS['hold_line_rebuild_piper_s']:g} s",
              "cold": f"<= {TARGETS['piper_cold_over_pure']:g}x",
              "peak": f"<= {TARGETS['piper_build_peak_mb']:g} MB"}
    names = {"hold": "sample routine rebuilt after a new {hold} (piper)",
             "cold": "first build with --engine piper / pure Piper (paired)",
             "peak": "peak memory of any Piper build (whole process tree)"}
    if piper:
        found_piper = piper["summary"]
        n = len(piper["rounds"])
        value = found_piper["rebuild"]["wall_s"]
        add(names["hold"], value, value <= TARGETS["hold_line_rebuild_piper_s"], wanted["hold"],
            f"--hold {piper['rebuild_hold']}, {piper['new_lines']} new lines; median of {n}")
        ratio = found_piper["cold_vs_pure"]
        add(names["cold"], ratio["ratio"], ratio["ratio"] <= TARGETS["piper_cold_over_pure"], wanted["cold"],
            f"median over {n} pairs; medians {found_piper['cold']['wall_s']:.2f} s / "
            f"{found_piper['pure']['wall_s']:.2f} s")
        peak = found_piper["build_peak"]
        add(names["peak"], peak["peak_mb"], peak["peak_mb"] <= TARGETS["piper_build_peak_mb"], wanted["peak"],
            f"largest: {peak['where']}")
    else:
        for key, name in names.items():
            add(name, None, None, wanted[key], "not measured")
    return found


def table(results: dict) -> str:
    kinds = ["cold", "warm", "rebuild", "plan", "naive"]
    header = "| session | " + " | ".join(f"{k} s | {k} MB" for k in kinds) + " |"
    rule = "|---" * (1 + 2 * len(kinds)) + "|"
    rows = [header, rule]
    for minutes, s in results["sessions"].items():
        cells = [f"{minutes} min ({s['duration_s'] / 60:.1f})"]
        for kind in kinds:
            m = s.get(kind)
            if m:
                cells += [f"{m['wall_s']:.2f}", f"{m['peak_mb']:.0f}"]
            else:
                cells += ["skipped", "-"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def bed_table(results: dict) -> str:
    """The sessions under the bed, each beside the plain session of the same length (ratio: bed / plain)."""
    kinds = ["cold", "warm", "rebuild"]
    rows = ["| session | " + " | ".join(f"{k} s | {k} MB | {k} / plain" for k in kinds) + " |",
            "|---" * (1 + 3 * len(kinds)) + "|"]
    for minutes, s in results["sessions"].items():
        bed = s.get("bed")
        if not bed:
            continue
        cells = [f"{minutes} min under {bed['background']}"]
        for kind in kinds:
            cells += [f"{bed[kind]['wall_s']:.2f}", f"{bed[kind]['peak_mb']:.0f}",
                      f"{bed[f'{kind}_over_plain']['ratio']:.2f}x"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def sample_table(sample: dict) -> str:
    rows = ["| engine | first build s | first build MB | warm s | warm MB | {hold} rebuild s | {hold} rebuild MB |",
            "|---" * 7 + "|"]
    for engine, m in sample["engines"].items():
        if m is None:
            rows.append(f"| {engine} | not installed | - | - | - | - | - |")
            continue
        cells = [engine] + [f"{m[k]['wall_s']:.2f} | {m[k]['peak_mb']:.0f}" for k in ("first", "warm", "rebuild")]
        rows.append("| " + " | ".join(cells) + " |")
    plain, under = sample["engines"].get("pyttsx3"), sample["engines"].get(f"pyttsx3 under {BED}")
    if plain and under:
        rows.append(f"{{hold}} rebuild under {BED} / without: "
                    f"{under['rebuild']['wall_s'] / plain['rebuild']['wall_s']:.2f}x (ratio of medians; no target)")
    return "\n".join(rows)


def batch_table(batch: dict) -> str:
    """Many sessions at once: sessions a minute with one build of them all, and with a build each."""
    rows = ["| cache | one build s | sessions / min | peak MB | separate builds s | sessions / min | largest peak MB "
            "| one build / separate |", "|---" * 8 + "|"]
    for kind in ("cold", "warm"):
        together, apart = batch[kind]["batch"], batch[kind]["separate"]
        rows.append(f"| {kind} | {together['wall_s']:.2f} | {together['sessions_per_minute']:.1f} | "
                    f"{together['peak_mb']:.0f} | {apart['wall_s']:.2f} | {apart['sessions_per_minute']:.1f} | "
                    f"{apart['peak_mb']:.0f} | {batch[kind]['speedup']:.2f}x |")
    return "\n".join(rows)


def piper_table(piper: dict) -> str:
    """Piper's rows: medians over the rounds; "/ pure Piper" is paired for the cold build (the median of each
    round's ratio), the ratio of medians for the others."""
    found = piper["summary"]
    pure = found["pure"]["wall_s"]
    rows = ["| Piper, sample routine | s | MB | / pure Piper |", "|---|---|---|---|"]
    for label, kind, ratio in (
            (f"pure Piper ({piper['lines']} lines, Piper's own API)", "pure", "1.00x"),
            ("cold build", "cold", f"{found['cold_vs_pure']['ratio']:.2f}x (paired)"),
            ("warm build", "warm", f"{found['warm']['wall_s'] / pure:.2f}x"),
            (f"{{hold}} rebuild (--hold {piper['rebuild_hold']}, {piper['new_lines']} new lines)", "rebuild",
             f"{found['rebuild']['wall_s'] / pure:.2f}x")):
        rows.append(f"| {label} | {found[kind]['wall_s']:.2f} | {found[kind]['peak_mb']:.0f} | {ratio} |")
    return "\n".join(rows)


def sample_routine(commit: str | None) -> str | None:
    """The sample routine's text: at the revision benchmarked with --rev, else in the working tree."""
    if commit is None:
        path = HERE.parent / SAMPLE
        return path.read_text() if path.exists() else None
    shown = subprocess.run(["git", "-C", str(HERE.parent), "show", f"{commit}:{SAMPLE.as_posix()}"],
                           capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def target_lines(found: list[dict]) -> str:
    lines = []
    for t in found:
        value = "-" if t["value"] is None else f"{t['value']:g}"
        detail = f"  ({t['detail']})" if t["detail"] else ""
        lines.append(f"{t['result']:<4}  {t['target']}: {value} (target {t['wanted']}){detail}")
    return "\n".join(lines)


def print_batch(batch: dict) -> None:
    print(f"\nmany sessions at once: {batch['routine']} with {batch['sessions']} profiles (holds "
          + ", ".join(f"{step} {first}-{first + step_s * (values - 1)} s" for step, first, step_s, values in batch["holds"])
          + f"), one build against {batch['sessions']} separate builds, each in a cache of its own, cold then warm; "
          f"{batch['identical_files']} of {batch['sessions']} files byte for byte the same both ways")
    print(batch_table(batch))


def batch_only(args: argparse.Namespace) -> int:
    """Only the row of many sessions at once."""
    if sys.platform != "linux":
        sys.exit("needs Linux (/proc)")
    root = Path(tempfile.mkdtemp(prefix="voiceguide-bench-"))
    try:
        source, commit = (export_revision(args.rev, root) if args.rev
                          else (args.source.resolve(), None) if args.source else (None, None))
        bench = Bench(root, 1, 1, True, [], source, bed=False)
        print(f"load average {loadavg()}; temp folder: {root}")
        text = sample_routine(commit)
        if text is None:
            sys.exit(f"{SAMPLE} not found")
        routine = bench.routines / SAMPLE.name
        routine.write_text(text)
        print(f"many sessions at once ({SAMPLE} with {BATCH_VARIANTS} profiles):")
        found = {"machine": machine(bench.env, commit), "batch": bench.batch_runs(routine)}
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_batch(found["batch"])
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark voiceguide builds against the naive pydub approach.")
    parser.add_argument("--quick", action="store_true", help="one run of each (not the median of 3); skip naive 180 min")
    parser.add_argument("--runs", type=int, help="runs of warm, rebuild and plan (and of the sample routine's "
                                                  "warm and {hold} rebuilds) to take the median of (default 3)")
    parser.add_argument("--pairs", type=int, help="cold builds, each after a replay of pure synthesis and beside "
                                                   "one under the bed, to take the median of (default 5; 1 with "
                                                   "--quick)")
    parser.add_argument("--lengths", default="10,60,180", help="session lengths in minutes (default 10,60,180)")
    parser.add_argument("--no-bed", action="store_true", help=f"skip the sessions under a bed ({BED})")
    parser.add_argument("--piper-pairs", type=int, help="rounds of Piper rows (pure Piper and a cold build, "
                                                         "paired; a warm build; a {hold} rebuild) to take the "
                                                         "median of (default 3; 1 with --quick)")
    parser.add_argument("--no-sample", action="store_true", help=f"skip the pyttsx3 {{hold}} rebuilds of {SAMPLE}")
    parser.add_argument("--no-piper", action="store_true", help=f"skip the Piper rows ({SAMPLE} with --engine piper)")
    parser.add_argument("--no-batch", action="store_true", help=f"skip the row of {BATCH_VARIANTS} sessions at once")
    parser.add_argument("--batch-only", action="store_true", help=f"only the row of {BATCH_VARIANTS} sessions at "
                                                                  "once (results printed, written only with --json)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--rev", help="benchmark this git revision of voiceguide/ (exported with git archive) "
                                     "instead of the installed package, e.g. --rev HEAD")
    which.add_argument("--source", type=Path, help="benchmark the voiceguide package in this folder "
                                                   "(the folder that contains voiceguide/)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (routines, MP3s, logs)")
    parser.add_argument("--json", type=Path, help=f"where to write results (default {RESULTS})")
    args = parser.parse_args()
    if args.batch_only:
        return batch_only(args)
    args.json = args.json or RESULTS
    runs = args.runs or (1 if args.quick else 3)
    pairs = args.pairs or (1 if args.quick else 5)
    piper_pairs = args.piper_pairs or (1 if args.quick else 3)
    lengths = [int(x) for x in args.lengths.split(",")]
    if sys.platform != "linux":
        parser.error("needs Linux (/proc)")

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="voiceguide-bench-"))
    try:
        source, commit, revision = (None, None, None)
        if args.rev:
            source, commit = export_revision(args.rev, root)
            revision = commit
        elif args.source:
            source, commit = args.source.resolve(), f"source folder {args.source.resolve()}"
        bench = Bench(root, runs, pairs, args.quick, lengths, source, bed=not args.no_bed)
        info = machine(bench.env, commit)
        info["loadavg_start"] = loadavg()
        print(f"machine: {info['nproc']} cores, {info['cpu']}, {info['ram_gb']} GB RAM, Python {info['python']}, "
              f"load average {info['loadavg_start']}")
        if float(info["loadavg_start"].split()[0]) > 0.5:
            bench.notes.append(f"the machine was busy when the benchmark started (load average "
                               f"{info['loadavg_start']}): times may be high")
        print(f"voiceguide {info['voiceguide']} from {info['voiceguide_from']} ({info['commit']})")
        print(f"temp folder: {root}\nroutines:")
        sessions = bench.make_routines()
        print("voiceguide:")
        results: dict = {"machine": info, "runs": runs, "pairs": pairs, "piper_pairs": piper_pairs,
                         "quick": args.quick, "sessions": {}}
        for minutes, session in sessions.items():
            entry = {k: session[k] for k in ("hold_s", "duration_s", "events", "distinct_texts")}
            entry.update(bench.voiceguide_runs(minutes, session))
            results["sessions"][str(minutes)] = entry
        results["sample"] = results["piper"] = results["batch"] = None
        if not (args.no_sample and args.no_piper and args.no_batch):
            text = sample_routine(revision)
            routine = bench.routines / SAMPLE.name
            if text is None:
                bench.notes.append(f"{SAMPLE} not found: the sample routine was not measured")
            else:
                routine.write_text(text)
            if text is not None and not args.no_sample:
                print(f"sample routine ({SAMPLE}, new holds on {SAMPLE_STEP}):")
                results["sample"] = bench.sample_runs(routine)
            if text is not None and not args.no_piper:
                print(f"Piper ({SAMPLE} with --engine piper; a warm-up of each first, not measured):")
                results["piper"] = bench.piper_runs(routine, piper_pairs, source)
            if text is not None and not args.no_batch:
                print(f"many sessions at once ({SAMPLE} with {BATCH_VARIANTS} profiles):")
                results["batch"] = bench.batch_runs(routine)
        first = next(iter(sessions.values()))
        timed = [s["pure_synthesis"]["runs"] for s in results["sessions"].values() if "pure_synthesis" in s]
        synthesis = ({"wall_s": round(statistics.median([t for runs in timed for t in runs]), 4),
                      "n": sum(len(runs) for runs in timed), "lines": bench.synthesis_lines}
                     if timed and len(timed) == len(sessions) else None)
        results["pure_synthesis"] = synthesis
        print("naive (pyttsx3 clips, pydub += per event, one export):")
        results["naive_synthesis"] = bench.naive_synth(first["timeline"])
        for minutes, session in sessions.items():
            results["sessions"][str(minutes)]["naive"] = bench.naive(minutes, session)
        results["targets"] = targets(results, synthesis)
        busy = statistics.mean(bench.others)
        results["others_cores_mean"] = round(busy, 2)
        if busy > 0.2:
            bench.notes.append(f"other processes kept {busy:.2f} of {os.cpu_count()} cores busy on average "
                               f"during the measurements: times are inflated and noisy")
        results["notes"] = bench.notes
        results["total_s"] = round(time.perf_counter() - started, 1)
        info["loadavg_end"] = loadavg()
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    print()
    print("wall time in seconds, peak memory of the whole process tree in MB (MiB); "
          f"cold: median of {pairs}; warm, rebuild and plan: median of {runs}")
    print(table(results))
    if any("bed" in s for s in results["sessions"].values()):
        print(f"\nunder a bed (`background: {BED}`); x / plain: the same length without the bed, cold and rebuild "
              f"the median of paired ratios, warm the ratio of medians")
        print(bed_table(results))
    if results["sample"]:
        sample = results["sample"]
        print(f"\nsample routine {sample['routine']}: rebuilt after --hold {sample['step']}=..., a new hold each run "
              f"({sample.get('new_lines', '?')} new lines spoken); first build: one run")
        print(sample_table(sample))
    if results["piper"]:
        rounds = len(results["piper"]["rounds"])
        print(f"\n--engine piper: {'median of ' if rounds > 1 else ''}{rounds} round{'s' * (rounds > 1)}, each in a "
              f"cache of its own: pure Piper and a cold build (paired, which goes first alternating), a warm build, "
              f"a {{hold}} rebuild")
        print(piper_table(results["piper"]))
    if results["batch"]:
        print_batch(results["batch"])
    if synthesis:
        print(f"pure synthesis (speech workers only): {synthesis['wall_s']:.2f} s for {synthesis['lines']} lines; "
              f"naive pyttsx3 synthesis of the same lines in one process: "
              f"{results['naive_synthesis']['wall_s']:.2f} s (not in the naive column)")
    print()
    print(target_lines(results["targets"]))
    for note in bench.notes:
        print(f"note: {note}")
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {args.json}; total {results['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
