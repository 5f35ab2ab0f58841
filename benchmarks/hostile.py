"""Benchmark: how long `voiceguide check` takes to refuse hostile routine files (target: within a second).

    python benchmarks/hostile.py [--runs N]

Each case is a file an attacker or a slip of the keyboard could give: control
characters, a NUL in a path, a lone surrogate, a number of 5,000 digits, a
device, a pipe, bells every millisecond through a 12-hour hold, 5,000 sides, a
line of 13,000 characters, groups nested deep, a file just under the size limit and one over it. Each is run
as a user runs it, `python -m voiceguide check FILE` in a process of its own,
and its wall time is the median of N runs. The answer must be exit 2 with one
line on stderr (or 0 for a file that is only large); the time includes
starting Python (about 0.2 s here).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.0
STEP = "steps:\n  - title: Sit\n    hold: 5s\n"


def cases(folder: Path) -> dict[str, Path | str]:
    def write(name: str, data: bytes | str) -> Path:
        path = folder / f"{name}.yaml"
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    fifo = folder / "pipe.yaml"
    os.mkfifo(fifo)
    deep = "title: T\nvoice: " + "[" * 5000 + "]" * 5000 + "\n" + STEP
    many = "title: T\nvars:\n" + "".join(f"  v{i}: x\n" for i in range(40_000)) + STEP
    blank = "title: T\n" + "\n" * 390_000 + STEP
    return {
        "control character": write("control", f"title: T\x07\n{STEP}"),
        "NUL in a path": write("nul", f'title: T\nchime: "a\\0b.wav"\n{STEP}'),
        "lone surrogate": write("surrogate", f'title: "\\ud800"\n{STEP}'),
        "5,000-digit number": write("digits", f"title: T\npause: {'9' * 5000}\n{STEP}"),
        "device": "/dev/zero",
        "pipe": fifo,
        "bells every 1 ms for 12 h": write("bells", "title: T\nsteps:\n  - title: Sit\n    hold: 12h\n"
                                                    "    bells: {every: 1ms}\n"),
        "5,000 sides": write("sides", "title: T\nsteps:\n  - title: Sit\n    hold: 5s\n    sides: ["
                                      + ", ".join(f"s{i}" for i in range(5000)) + "]\n"),
        "13,000-character line": write("long", f"title: T\nsteps:\n  - title: Sit\n    say: {'word ' * 2600}\n"
                                               "    hold: 5s\n"),
        "unspeakable text": write("unspeakable", 'title: T\nsteps:\n  - title: Sit\n    say: "{{}}"\n    hold: 5s\n'),
        "nested 5,000 deep": write("deep", deep),
        "40,000 values": write("many", many),
        "390 KB of blank lines": write("blank", blank),
        "a megabyte": write("megabyte", "title: T\n# " + "x" * 1_000_000 + "\n" + STEP),
    }


def timed(path: Path | str, runs: int) -> tuple[float, int, int]:
    times, code, lines = [], 0, 0
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "voiceguide", "check", str(path)], capture_output=True,
                              text=True, timeout=60)
        times.append(time.perf_counter() - began)
        code, lines = done.returncode, len(done.stderr.strip().splitlines())
    return statistics.median(times), code, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each case to take the median of (default 3)")
    runs = parser.parse_args().runs
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        env_ok = True
        for name, path in cases(Path(folder)).items():
            seconds, code, lines = timed(path, runs)
            worst = max(worst, seconds)
            ok = (code == 2 and lines == 1) or (code == 0 and name.endswith("blank lines"))
            env_ok &= ok
            print(f"  {name:<28} {seconds:6.2f} s  exit {code}, {lines} line{'s' if lines != 1 else ''}"
                  f"{'' if ok else '  (expected exit 2 and one line)'}")
    verdict = "PASS" if worst <= TARGET_S and env_ok else "FAIL"
    print(f"{verdict}  slowest: {worst:.2f} s (target <= {TARGET_S:g} s, one line and exit 2 each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
