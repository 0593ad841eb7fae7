"""Benchmark the group level of the demo against a baseline commit (issue 12: within 10 % of before).

Builds the demo dataset once (``python -m bidsapp.demo DIR``, the same data
for both sides), checks the baseline commit (default ``207ead2``, the last
main before the group-level rework) out in a temporary ``git worktree``, and
for each side, in fresh processes run by this interpreter with ``PYTHONPATH``
pointing at that side's source tree:

1. runs the participant level of each demo part once (untimed for the
   comparison; its own outputs, its own work directory), as ``make run-demo``:
   fMRIPrep with the demo atlas and the PCC seed, and the HCP course layout;
2. times the group level of each part, ``--repeat N`` times (the group
   directory removed before each run), sides alternating: fMRIPrep
   ``--group-test twosample --group-column group --correction fdr fwe --n-perm 1000``
   and HCP ``--correction fdr fwe --n-perm 1000``, the Makefile's two group
   commands.

It prints which ``bidsapp/__init__.py`` each side imports (so the baseline is
known to run its own code), then per part and side the median wall time, the
median CPU time (user + system of the process and its workers: robust to other
load on the machine), the number of group analyses it reports ("Group level
done: N analyses") and of files it wrote under ``group/``, and the peak
resident memory of its largest process (``os.wait4``'s ``ru_maxrss``); then the
ratio current / baseline (goal at most 1.10) and the analyses only one side ran
(same count does not mean the same work: e.g. per-run connectivity before,
per-participant connectivity and seed maps after). The temporary worktree is removed
at the end, also on failure or interruption.

Usage: ``python benchmarks/group.py [--baseline REF] [--repeat 3] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BASELINE = "207ead2"
GOAL = 1.10
DONE = re.compile(r"Group level done: (\d+) analyses")
ANALYSIS = re.compile(r" INFO (\S+): \w+ test over \d+ participants")


@dataclass(frozen=True)
class Part:
    """One demo part: its input directory, the extra options of each level."""

    name: str
    data: str
    participant: tuple[str, ...]
    group: tuple[str, ...]


def demo_parts(data: Path) -> list[Part]:
    """The Makefile's ``run-demo`` commands, by demo part."""
    atlas = str(data / "atlas" / "atlas-DemoNetworks_dseg.nii.gz")
    corrections = ("--correction", "fdr", "fwe", "--n-perm", "1000")
    return [
        Part("fmriprep", "bids", ("--atlas", atlas, "--seeds", "PCC=0,-52,26"),
             ("--group-test", "twosample", "--group-column", "group", *corrections)),
        Part("hcp", "hcp", (), corrections),
    ]


@dataclass
class Run:
    """One finished process: wall and CPU seconds, peak RSS of its largest process, its log."""

    wall: float
    cpu: float
    rss_mb: float
    log: str


def run(command: list[str], source: Path, log: Path) -> Run:
    """Run ``command`` in ``source`` with ``PYTHONPATH=source``; stop the benchmark if it fails."""
    env = {**os.environ, "PYTHONPATH": str(source)}  # run in `source` too: `-m` and `-c` put the cwd first
    start = time.perf_counter()
    with log.open("w") as stream:
        process = subprocess.Popen(command, cwd=source, env=env, stdout=stream, stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted: stop the child before the worktree it runs from is removed
            process.terminate()
            process.wait()
            raise
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)}\nexited {process.returncode}; the end of its log ({log}):\n"
                 + "\n".join(text.splitlines()[-15:]))
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text)  # ru_maxrss: kB on Linux


@dataclass(frozen=True)
class Side:
    """The code one side runs: its source tree and its output and work directories."""

    name: str
    source: Path
    root: Path

    def bidsapp(self, part: Part, data: Path, level: str, options: tuple[str, ...]) -> list[str]:
        """``python -m bidsapp`` on one demo part."""
        return [sys.executable, "-m", "bidsapp", str(data / part.data), str(self.root / "out" / part.name), level,
                "-w", str(self.root / "work"), *options]

    def imported(self) -> Path:
        """The ``bidsapp/__init__.py`` this side imports; stop unless it is the side's own."""
        result = subprocess.run([sys.executable, "-c", "import bidsapp; print(bidsapp.__file__)"], check=True,
                                capture_output=True, text=True, cwd=self.source,
                                env={**os.environ, "PYTHONPATH": str(self.source)})
        path = Path(result.stdout.strip()).resolve()
        if not path.is_relative_to(self.source.resolve()):
            sys.exit(f"{self.name}: bidsapp imports from {path}, not from {self.source}")
        return path


def resolve(ref: str) -> str:
    """The full commit of ``ref``; stop with a clear line if it is not one."""
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"--baseline {ref}: not a commit of {REPO}; give a commit, branch or tag")
    return result.stdout.strip()


def time_group(sides: list[Side], parts: list[Part], data: Path, repeat: int, logs: Path) -> dict:
    """Every side's group level of every part, ``repeat`` times, sides alternating; the runs by part and side."""
    runs: dict[tuple[str, str], list[Run]] = {}
    for index in range(repeat):
        for part in parts:
            for side in sides if index % 2 == 0 else sides[::-1]:
                shutil.rmtree(side.root / "out" / part.name / "group", ignore_errors=True)
                log = logs / f"{side.name}_{part.name}_group_{index + 1}.log"
                done = run(side.bidsapp(part, data, "group", part.group), side.source, log)
                runs.setdefault((part.name, side.name), []).append(done)
    return runs


def summary(runs: list[Run], group_dir: Path) -> dict:
    """Medians, analyses reported and files written of one side's group runs of one part."""
    counts = {int(match.group(1)) for done in runs for match in DONE.finditer(done.log)}
    return {"wall": statistics.median(r.wall for r in runs), "cpu": statistics.median(r.cpu for r in runs),
            "rss": max(r.rss_mb for r in runs), "analyses": "/".join(map(str, sorted(counts))) or "?",
            "files": sum(1 for path in group_dir.rglob("*") if path.is_file()),
            "names": {match.group(1) for match in ANALYSIS.finditer(runs[0].log)}}


def benchmark(root: Path, commit: str, repeat: int) -> None:
    """Build the data and the baseline worktree, run both sides and print the figures."""
    data, logs = root / "data", root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    run([sys.executable, "-m", "bidsapp.demo", str(data)], REPO, logs / "demo.log")
    print(f"demo data: {data} ({time.perf_counter() - start:.1f} s to build)")
    worktree = Path(tempfile.mkdtemp(prefix="bidsapp_baseline_"))
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(worktree), commit],
                   check=True)
    try:
        sides = [Side("baseline", worktree, root / "baseline"), Side("current", REPO, root / "current")]
        for side in sides:
            print(f"{side.name:8}: imports {side.imported()}")
        parts = demo_parts(data)
        for side in sides:
            for part in parts:
                done = run(side.bidsapp(part, data, "participant", part.participant), side.source,
                           logs / f"{side.name}_{part.name}_participant.log")
                print(f"{side.name:8}: {part.name} participant level (untimed for the ratio) {done.wall:.1f} s")
        load = os.getloadavg()[0]
        runs = time_group(sides, parts, data, repeat, logs)
        print(f"\ngroup level, median of {repeat} run(s) (load average {load:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores)")
        print(f"{'part':9} {'side':9} {'wall s':>7} {'CPU s':>7} {'analyses':>8} {'files':>6} {'peak RSS MB':>11}")
        for part in parts:
            figures = {side.name: summary(runs[part.name, side.name], side.root / "out" / part.name / "group")
                       for side in sides}
            for name, row in figures.items():
                print(f"{part.name:9} {name:9} {row['wall']:7.2f} {row['cpu']:7.2f} {row['analyses']:>8} "
                      f"{row['files']:6d} {row['rss']:11.0f}")
            wall, cpu = (figures["current"][key] / figures["baseline"][key] for key in ("wall", "cpu"))
            print(f"{part.name:9} ratio current/baseline: wall {wall:.2f}, CPU {cpu:.2f} "
                  f"(goal <= {GOAL:.2f}: {'met' if wall <= GOAL else 'NOT met'})")
            for one, other in (("baseline", "current"), ("current", "baseline")):
                only = sorted(figures[one]["names"] - figures[other]["names"])
                print(f"{'':9} analyses only {one}: {', '.join(only) or 'none'}")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
        shutil.rmtree(worktree, ignore_errors=True)


def main() -> int:
    """Parse the options, run the benchmark in a kept or a temporary directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, metavar="REF",
                        help=f"commit to compare against (default {DEFAULT_BASELINE}, the last main before issue 12)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N", help="group runs per side and part (median)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work here and keep data, outputs and logs")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    commit = resolve(args.baseline)
    print(f"baseline: {args.baseline} = {commit[:12]}; current: {REPO}")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # so the worktree is removed
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        benchmark(args.keep.resolve(), commit, args.repeat)
        print(f"data, outputs and logs kept in {args.keep}")
    else:
        with tempfile.TemporaryDirectory(prefix="bidsapp_group_bench_") as folder:
            benchmark(Path(folder), commit, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
