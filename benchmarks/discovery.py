"""Benchmark input discovery on a large fMRIPrep tree of small files.

Builds a raw BIDS dataset with fMRIPrep derivatives for 200 participants x 4
runs (tiny 4-D images, full confounds tables), then times, each in a fresh
process and repeated (medians printed, wall and CPU time):

- the baseline: a plain ``BIDSLayout(..., derivatives=True)`` of the same tree
  reading every preprocessed run's RepetitionTime, as the tutorials write it;
- bidsapp's discovery (``discover``: every run's files checked, its metadata
  read) with an empty work directory (cold), then again (cached run checks);
- what each task of a scheduler's job array pays: ``bidsapp ... participant
  --dry-run --participant-label 007`` with the cache in place.

Goal (issue 15): under 3 s cold, under 1 s cached.

With ``--profile DIR``, the cold and cached discoveries of the first repeat are
also profiled (cProfile, ``DIR/cold.prof`` and ``DIR/cached.prof``; read them
with ``python -m pstats``), outside the timed runs.

Usage: ``python benchmarks/discovery.py [--participants 200] [--repeats 3] [--keep DIR] [--profile DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

N_VOLUMES = 50
RUNS = (("rest", None), ("rest", None), ("motor", 1), ("motor", 2))


def make_tree(root: Path, n_participants: int) -> Path:
    """Write the raw + fMRIPrep tree; return the raw dataset's path."""
    bids = root / "bids"
    deriv = bids / "derivatives" / "fmriprep"
    for path, desc in ((bids, {"Name": "bench", "BIDSVersion": "1.10.0"}),
                       (deriv, {"Name": "fMRIPrep", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
                                "GeneratedBy": [{"Name": "fMRIPrep", "Version": "23.2.0"}]})):
        path.mkdir(parents=True)
        (path / "dataset_description.json").write_text(json.dumps(desc))
    (bids / "task-rest_bold.json").write_text(json.dumps({"RepetitionTime": 2.0, "TaskName": "rest"}))
    (bids / "task-motor_bold.json").write_text(json.dumps({"RepetitionTime": 2.0, "TaskName": "motor"}))
    image = nib.Nifti1Image(np.zeros((2, 2, 2, N_VOLUMES), np.float32), np.eye(4))
    mask = nib.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4))
    columns = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "csf", "white_matter",
               "global_signal", "framewise_displacement", "cosine00", "cosine01"]
    confounds = "\t".join(columns) + "\n" + "\n".join(["\t".join(["0.1"] * len(columns))] * N_VOLUMES) + "\n"
    lines = ["participant_id\tgroup"]
    for index in range(1, n_participants + 1):
        sub = f"sub-{index:03d}"
        lines.append(f"{sub}\t{'control' if index % 2 else 'patient'}")
        (bids / sub / "func").mkdir(parents=True)
        (deriv / sub / "func").mkdir(parents=True)
        for task_index, (task, run) in enumerate(RUNS):
            run_raw = f"_run-{run:02d}" if run else f"_acq-{task_index}"
            run_der = f"_run-{run}" if run else f"_acq-{task_index}"
            raw = bids / sub / "func" / f"{sub}_task-{task}{run_raw}_bold.nii.gz"
            nib.save(image, raw)
            if task == "motor":
                (raw.parent / raw.name.replace("_bold.nii.gz", "_events.tsv")).write_text(
                    "onset\tduration\ttrial_type\n10\t10\tlf\n30\t10\trf\n")
            stem = deriv / sub / "func" / f"{sub}_task-{task}{run_der}"
            bold = Path(f"{stem}_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")
            nib.save(image, bold)
            Path(f"{stem}_space-MNI152NLin2009cAsym_desc-preproc_bold.json").write_text(
                json.dumps({"RepetitionTime": 2.0, "SkullStripped": False}))
            nib.save(mask, f"{stem}_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz")
            Path(f"{stem}_desc-confounds_timeseries.tsv").write_text(confounds)
            Path(f"{stem}_desc-confounds_timeseries.json").write_text("{}")
    (bids / "participants.tsv").write_text("\n".join(lines) + "\n")
    return bids


DISCOVER = """
import sys
from bidsapp.cli import parse_arguments
from bidsapp.config import build_config
from bidsapp.inputs.discovery import discover
inventory = discover(build_config(parse_arguments(sys.argv[1:]), ["bidsapp"]), defer_problems=True)
assert len(inventory.runs) > 0 and all(run.repetition_time > 0 for run in inventory.runs)
"""


def time_command(command: list[str]) -> tuple[float, float]:
    """Run a command in a fresh process; return its wall and CPU time in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the tree here and keep it")
    parser.add_argument("--profile", type=Path, help="write cProfile files of a cold and a cached discovery here")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bidsapp-bench-"))
    started = time.perf_counter()
    bids = make_tree(root, args.participants)
    n_files = sum(1 for path in bids.rglob("*") if path.is_file())
    print(f"tree: {args.participants} participants x {len(RUNS)} runs, {n_files} files, "
          f"built in {time.perf_counter() - started:.1f} s; medians of {args.repeats} repeats, each in a fresh "
          f"process (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    baseline_command = [sys.executable, "-c", (
        "from bids import BIDSLayout; import sys; "
        "layout = BIDSLayout(sys.argv[1], validate=False, derivatives=True); "
        "files = layout.get(scope='derivatives', desc='preproc', suffix='bold', extension='.nii.gz'); "
        "[f.get_metadata()['RepetitionTime'] for f in files]"), str(bids)]
    options = [str(bids), str(root / "out"), "participant", "--skip-bids-validation", "-w"]
    script = root / "discover.py"
    script.write_text(DISCOVER)
    figures: dict[str, list[tuple[float, float]]] = {"baseline": [], "cold": [], "cached": [], "task": []}
    for repeat in range(args.repeats):
        work = root / f"work{repeat}"
        figures["baseline"].append(time_command(baseline_command))
        figures["cold"].append(time_command([sys.executable, str(script), *options, str(work)]))
        figures["cached"].append(time_command([sys.executable, str(script), *options, str(work)]))
        figures["task"].append(time_command([sys.executable, "-m", "bidsapp", *options, str(work), "--dry-run",
                                             "--participant-label", "007"]))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        for name in ("cold", "cached"):
            subprocess.run([sys.executable, "-m", "cProfile", "-o", str(args.profile / f"{name}.prof"), str(script),
                            *options, str(root / "work-profile")], check=True, stdout=subprocess.DEVNULL)
    median = {key: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
              for key, values in figures.items()}
    base_wall, base_cpu = median["baseline"]
    print(f"pybids BIDSLayout + metadata (tutorial baseline): {base_wall:6.2f} s wall, {base_cpu:6.2f} s CPU")
    for key, label, goal in (("cold", "bidsapp discovery + run checks, cold index", "< 3 s"),
                             ("cached", "bidsapp discovery + run checks, cached index", "< 1 s"),
                             ("task", "one array task: --dry-run --participant-label 007", "")):
        wall, cpu = median[key]
        print(f"{label:50s} {wall:6.2f} s wall, {cpu:6.2f} s CPU  goal {goal or '-':5s}  "
              f"ratio to baseline {wall / base_wall:.2f} wall, {cpu / base_cpu:.2f} CPU")


if __name__ == "__main__":
    main()
