"""Wall time and peak memory of one process and all its descendants, read from /proc (Linux).

Used by bench.py; see README.md for why the peak is summed over the process tree.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

MB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_INTERVAL = 0.010


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants from /proc."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.peak = 0
        self.samples = 0
        self.max_processes = 0
        self._done = threading.Event()
        self._parents: dict[int, int] = {}

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(SAMPLE_INTERVAL)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def sample(self) -> None:
        alive = {int(name) for name in os.listdir("/proc") if name.isdigit()}
        for pid in [pid for pid in self._parents if pid not in alive]:
            del self._parents[pid]
        for pid in alive - self._parents.keys():
            try:
                with open(f"/proc/{pid}/stat", "rb") as file:
                    stat = file.read()
                self._parents[pid] = int(stat[stat.rfind(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        children = defaultdict(list)
        for pid, parent in self._parents.items():
            children[parent].append(pid)
        total = count = 0
        stack: list[tuple[int, tuple[int, int] | None, bytes | None]] = [(self.root, None, None)]
        while stack:
            pid, parent_mem, parent_command = stack.pop()
            memory = _statm(pid)
            command = _cmdline(pid)
            # Between fork() or vfork() and exec() a child is its parent's image, shared page for
            # page (still running the parent's command line): count that memory once. A child forked to
            # work without exec() (a speech worker's, a line each) adds the pages that are its own.
            if memory is not None and memory != parent_mem and (command is None or command != parent_command):
                total += memory[1] * PAGE
                count += 1
            elif memory is not None and command is not None and command == parent_command:
                total += _private(pid)
                count += 1
            stack.extend((child, memory, command) for child in children.get(pid, ()))
        self.samples += 1
        self.peak = max(self.peak, total)
        self.max_processes = max(self.max_processes, count)


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read()
    except OSError:
        return None


def _private(pid: int) -> int:
    """Bytes of memory that only process ``pid`` maps (none that it shares with the process it was forked from)."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as file:
            for line in file:
                if line.startswith((b"Private_Clean:", b"Private_Dirty:")):
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return total


def _statm(pid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as file:
            size, resident = file.read().split()[:2]
        return int(size), int(resident)
    except (OSError, ValueError):
        return None


def _cpu_busy() -> float:
    """Seconds of CPU time the whole machine has spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as file:
        fields = [int(x) for x in file.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(command: list[str], cwd: Path, env: dict[str, str], logs: Path, name: str) -> dict:
    """Run ``command`` once; its wall time and the peak memory of its process tree."""
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.out", "wb") as out, open(logs / f"{name}.err", "wb") as err:
        busy, own = _cpu_busy(), _own_cpu()
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        sampler = TreeSampler(process.pid)
        sampler.start()
        try:
            # wait4 gives this child's rusage; its ru_maxrss covers the child and every
            # descendant it waited for: the largest single process of the tree.
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            wall = time.perf_counter() - started
            sampler.stop()
        # CPU the rest of the machine used meanwhile (other users of a shared machine), in cores.
        others = _cpu_busy() - busy - (_own_cpu() - own) - (usage.ru_utime + usage.ru_stime)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        detail = (logs / f"{name}.err").read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{name} failed with exit code {process.returncode}: {' '.join(command)}\n" + "\n".join(detail))
    largest = usage.ru_maxrss * 1024  # kilobytes on Linux
    return {
        "wall_s": round(wall, 4),
        "peak_mb": round(max(sampler.peak, largest) / MB, 1),
        "tree_rss_mb": round(sampler.peak / MB, 1),
        "largest_process_mb": round(largest / MB, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "others_cores": round(max(0.0, others) / wall, 2),
        "max_processes": sampler.max_processes,
        "samples": sampler.samples,
    }


def summary(runs: list[dict]) -> dict:
    return {
        "wall_s": round(statistics.median(r["wall_s"] for r in runs), 4),
        "peak_mb": round(statistics.median(r["peak_mb"] for r in runs), 1),
        "n": len(runs),
        "runs": runs,
    }


def ratios(runs: list[dict], others: list[dict], paired: bool = True) -> dict:
    """Wall time of ``runs`` over that of ``others``: the median of each pair's ratio, or the ratio of medians."""
    if not paired:
        return {"ratio": round(statistics.median(r["wall_s"] for r in runs)
                               / statistics.median(r["wall_s"] for r in others), 3), "paired": False}
    each = [round(r["wall_s"] / o["wall_s"], 3) for r, o in zip(runs, others)]
    return {"ratio": round(statistics.median(each), 3), "paired": True, "runs": each}
