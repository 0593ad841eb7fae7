"""Benchmark input discovery on a large fMRIPrep tree of small files.

Builds a raw BIDS dataset with fMRIPrep derivatives for 200 participants x 4
runs (tiny 4-D images, full confounds tables), then times ``bidsapp
--dry-run`` discovery twice in fresh processes: first with an empty work
directory (pybids indexes the tree) and then reusing the cached index. The
baseline is a plain ``BIDSLayout(..., derivatives=...)`` of the same tree, as a
user following the tutorials would write it.

Goal (issue 2): under 15 s first, under 2 s cached.

Usage: ``python benchmarks/discovery.py [--participants 200] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
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
               "global_signal", "framewise_displacement"]
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


def time_command(command: list[str]) -> float:
    """Run a command in a fresh process; return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="build the tree here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bidsapp-bench-"))
    started = time.perf_counter()
    bids = make_tree(root, args.participants)
    n_files = sum(1 for path in bids.rglob("*") if path.is_file())
    print(f"tree: {args.participants} participants x {len(RUNS)} runs, {n_files} files, "
          f"built in {time.perf_counter() - started:.1f} s")

    baseline = time_command([sys.executable, "-c", (
        "from bids import BIDSLayout; import sys; "
        "layout = BIDSLayout(sys.argv[1], validate=False, derivatives=True); "
        "files = layout.get(scope='derivatives', desc='preproc', suffix='bold', extension='.nii.gz'); "
        "[f.get_metadata()['RepetitionTime'] for f in files]"), str(bids)])
    command = [sys.executable, "-m", "bidsapp", str(bids), str(root / "out"), "participant",
               "--dry-run", "--skip-bids-validation", "-w", str(root / "work")]
    first = time_command(command)
    cached = time_command(command)
    print(f"pybids BIDSLayout + metadata (tutorial baseline): {baseline:6.2f} s")
    print(f"bidsapp discovery, first run (indexing):           {first:6.2f} s   goal < 15 s   "
          f"ratio to baseline {first / baseline:.2f}")
    print(f"bidsapp discovery, cached index:                   {cached:6.2f} s   goal <  2 s   "
          f"ratio to baseline {cached / baseline:.2f}")


if __name__ == "__main__":
    main()
