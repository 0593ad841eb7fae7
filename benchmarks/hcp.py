"""Benchmark the participant level on HCP course-layout data at the real sizes (issue 4).

Writes a synthetic course-layout dataset: 360 parcels, four resting runs of
1200 frames and both runs of the seven HCP tasks at their real lengths, with
EV files under the HCP condition names (noise data: this measures speed, not
results). Then, in fresh processes, times

1. the bare baseline: ``np.load`` of every input array (what any analysis of
   these files must at least do), and
2. ``bidsapp HCP_DIR OUT participant --nprocs N``: run summaries, rest
   connectivity (per run and combined, Fisher z, network means), the seven task
   GLMs with their contrasts and selective averages, and the reports,

and prints the wall times, participants per second, the ratio of the two
(goal under 2), the CPU time (robust to other load on the machine) and the peak
resident memory of the largest process (goal under 1 GB whatever the number of
participants; ``resource.getrusage``). Both run on the same, freshly written
(so cached) files.

Usage: ``python benchmarks/hcp.py [--subjects 100] [--nprocs 2] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Frames of each HCP task run, and the EV files of each task (HCP condition names).
TASKS = {
    "MOTOR": (284, ["cue", "lf", "lh", "rf", "rh", "t"], []),
    "WM": (405, [f"{b}_{s}" for b in ("0bk", "2bk") for s in ("body", "faces", "places", "tools")],
           ["0bk_cor", "0bk_err", "2bk_cor", "2bk_err", "all_bk_cor", "all_bk_err"]),
    "EMOTION": (176, ["fear", "neut"], []),
    "GAMBLING": (253, ["win", "loss"], ["win_event", "loss_event", "neut_event"]),
    "LANGUAGE": (316, ["cue", "math", "story"], ["present_math", "present_story", "question_math",
                                                 "question_story", "response_math", "response_story"]),
    "RELATIONAL": (232, ["match", "relation"], ["error"]),
    "SOCIAL": (274, ["mental", "rnd"], ["mental_resp", "other_resp"]),
}
TR = 0.72
N_PARCELS = 360


def bold_names() -> list[str]:
    """The HCP course's run order (``bold<k>`` is entry k)."""
    rest = [f"rfMRI_REST{i}_{d}" for i in (1, 2) for d in ("LR", "RL")]
    return rest + [f"tfMRI_{task}_{d}" for task in TASKS for d in ("RL", "LR")]


def write_events(ev_dir: Path, frames: int, blocks: list[str], trials: list[str], rng) -> None:
    """Blocks of 12 s every 15 s from 8 s, conditions in turn; 2-s trials of the trial-level EVs."""
    ev_dir.mkdir(parents=True, exist_ok=True)
    onsets = np.arange(8.0, frames * TR - 15.0, 15.0)
    for i, condition in enumerate(blocks):
        rows = "".join(f"{onset:g}\t12\t1\n" for onset in onsets[i::len(blocks)])
        (ev_dir / f"{condition}.txt").write_text(rows)
    for condition in trials:
        times = np.sort(rng.uniform(8.0, frames * TR - 10.0, size=6))
        (ev_dir / f"{condition}.txt").write_text("".join(f"{t:.3f}\t2\t1\n" for t in times))


def make_dataset(root: Path, n_subjects: int, rest_frames: int) -> Path:
    """Write the course layout; return its path."""
    from bidsapp.inputs.parcel_labels import glasser_table

    table = glasser_table()
    hcp = root / "hcp"
    hcp.mkdir(parents=True)
    np.save(hcp / "regions.npy", np.array([[n, w, f"{m:g}"] for n, w, m in
                                           zip(table["name"], table["network"], table["myelin"], strict=True)]))
    rng = np.random.default_rng(0)
    for s in range(n_subjects):
        subject = hcp / "subjects" / str(100000 + s)
        (subject / "timeseries").mkdir(parents=True)
        for k, name in enumerate(bold_names(), start=1):
            task = name.split("_")[1]
            frames = rest_frames if name.startswith("rfMRI") else TASKS[task][0]
            data = (10000 + 100 * rng.standard_normal((N_PARCELS, frames))).astype(np.float32)
            np.save(subject / "timeseries" / f"bold{k}_Atlas_MSMAll_Glasser360Cortical.npy", data)
            if name.startswith("tfMRI"):
                write_events(subject / "EVs" / name, frames, TASKS[task][1], TASKS[task][2], rng)
    return hcp


LOAD_ALL = """
import sys, time
from pathlib import Path
import numpy as np
files = sorted(Path(sys.argv[1]).glob("subjects/*/timeseries/*.npy"))
start = time.perf_counter()
total = sum(np.load(f).nbytes for f in files)
print(time.perf_counter() - start, len(files), total)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--rest-frames", type=int, default=1200)
    parser.add_argument("--keep", type=Path, help="build the data here and keep it (default: a temporary directory)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bidsapp_hcp_bench_"))
    start = time.perf_counter()
    hcp = make_dataset(root, args.subjects, args.rest_frames)
    print(f"dataset: {args.subjects} subjects x 18 runs at {hcp} ({time.perf_counter() - start:.1f} s to write)")

    result = subprocess.run([sys.executable, "-c", LOAD_ALL, str(hcp)], check=True, capture_output=True, text=True)
    load_s, n_files, n_bytes = result.stdout.split()
    load_s = float(load_s)
    print(f"baseline: np.load of {n_files} arrays ({int(n_bytes) / 1e9:.2f} GB as float32): {load_s:.2f} s")

    bidsapp = Path(sys.executable).with_name("bidsapp")
    command = [str(bidsapp), str(hcp), str(root / "out"), "participant", "--nprocs", str(args.nprocs),
               "-w", str(root / "work")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_average = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak_gb = after.ru_maxrss / 1e6  # kB on Linux
    print(f"bidsapp participant level, --nprocs {args.nprocs}: {wall:.1f} s, "
          f"{args.subjects / wall:.2f} participants/s, {wall / args.subjects:.2f} s per participant")
    print(f"CPU time: {cpu:.1f} s, {cpu / args.subjects:.2f} s per participant (load average before: "
          f"{load_average:.1f}, after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"ratio to the bare load: {wall / load_s:.0f} (goal under 2)")
    print(f"peak RSS of the largest process: {peak_gb:.2f} GB (goal under 1 GB)")
    print(f"outputs: {root / 'out'}")


if __name__ == "__main__":
    main()
