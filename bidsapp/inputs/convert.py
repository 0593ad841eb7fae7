"""Convert the HCP course layout to the BIDS-style parcellated form (CONTRACT 3b).

Usage::

    python -m bidsapp.inputs.convert HCP_DIR OUT_DIR [--participant-label L ...]

For each subject and run of ``HCP_DIR/subjects/<id>/timeseries/bold<k>_...npy``
(parcels x time), ``OUT_DIR`` gets::

    sub-<id>/func/sub-<id>_task-<t>_dir-<LR|RL>[_run-<r>]_space-fsLR_seg-Glasser_stat-mean_timeseries.tsv
    sub-<id>/func/sub-<id>_task-<t>_dir-<LR|RL>[_run-<r>]_space-fsLR_seg-Glasser_stat-mean_timeseries.json
    sub-<id>/func/sub-<id>_task-<t>_dir-<LR|RL>_events.tsv      (from EVs/<run>/<condition>.txt)

time x parcels with the parcel names as header, values with 17 significant
digits (read back as float64, they equal the ``.npy`` values); the JSON gives
RepetitionTime (0.72 s) and the source file; events have onset, duration,
trial_type (the EV file name) and modulation (the EV amplitude). At the top:
``dataset_description.json``, ``participants.tsv``,
``atlases/atlas-Glasser/atlas-Glasser_dseg.tsv`` (index, name, hemisphere,
network, myelin from ``regions.npy``) and a copy of ``atlas.npz`` if present.
Runs with bad shapes or events beyond their end are reported (one line each,
exit code 66) and left out; everything else is converted. Files are written
under temporary names and renamed into place.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp import __version__
from bidsapp.errors import BidsAppError, InvalidDatasetError, MissingInputError, UsageError
from bidsapp.inputs.discovery import Run, RunProblem
from bidsapp.inputs.hcp import is_course_layout, read_course_runs
from bidsapp.inputs.parcel_labels import read_regions
from bidsapp.outputs.atomic import write_atomically
from bidsapp.steps.glm.events import check_events, read_events

SUFFIX = "space-fsLR_seg-Glasser_stat-mean_timeseries"


def _write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def timeseries_text(data: np.ndarray, names: Sequence[str]) -> str:
    """Time x parcels TSV text of parcels x time ``data``; 17 digits read back as the same float64 values."""
    row_format = "\t".join(["%.17g"] * len(names))
    rows = (row_format % tuple(row) for row in data.T.astype(float).tolist())
    return "\t".join(names) + "\n" + "\n".join(rows) + "\n"


def labels_table(hcp_dir: Path) -> pd.DataFrame:
    """The BIDS ``dseg.tsv`` of ``regions.npy``: index (from 1), name, hemisphere, network[, myelin]."""
    regions = np.load(hcp_dir / "regions.npy")
    rows = regions if regions.shape[-1] == 3 else regions.T
    table = read_regions(hcp_dir / "regions.npy")
    hemisphere = {"R": "right", "L": "left"}
    table.insert(0, "index", np.arange(1, len(table) + 1))
    table.insert(2, "hemisphere", [hemisphere.get(name.split("_", 1)[0], "n/a") for name in table["name"]])
    table["myelin"] = rows[:, 2].astype(float)
    return table


def convert_run(run: Run, names: Sequence[str], out_dir: Path) -> None:
    """Write one run's time series, sidecar and events in the BIDS-style form."""
    func = out_dir / f"sub-{run.subject}" / "func"
    stem = run.name
    data = np.load(run.data)
    if run.events is not None:
        events = read_events(run.events)
        check_events(events, run.n_volumes, run.repetition_time, run.events)
        write_atomically(func / f"{stem}_events.tsv",
                         lambda tmp: events.to_csv(tmp, sep="\t", index=False, lineterminator="\n"))
    sidecar = {"RepetitionTime": run.repetition_time, "TaskName": run.entities["task"],
               "Atlas": "Glasser", "Space": "fsLR", "Sources": [str(run.data)],
               "Description": "Mean time series of each Glasser parcel, converted from the HCP course layout "
                              "(bidsapp.inputs.convert)."}
    _write_text(func / f"{stem}_{SUFFIX}.tsv", timeseries_text(data, names))
    _write_text(func / f"{stem}_{SUFFIX}.json", json.dumps(sidecar, indent=2) + "\n")


def convert(hcp_dir: Path, out_dir: Path, participants: Sequence[str] | None = None) -> list[str]:
    """Convert a course-layout dataset; return one line per run left out.

    Raises
    ------
    InvalidDatasetError
        If ``hcp_dir`` is not the HCP course layout.
    """
    if not is_course_layout(hcp_dir):
        raise InvalidDatasetError(f"{hcp_dir}: not the HCP course layout (no regions.npy or subjects/*/timeseries)")
    wanted = set(participants) if participants else None
    subjects, runs, names = read_course_runs(hcp_dir, lambda e: wanted is None or e["sub"] in wanted)
    problems = []
    for run in runs:
        if isinstance(run, RunProblem):
            problems.append(str(run))
            continue
        try:
            convert_run(run, names, out_dir)
        except MissingInputError as error:
            problems.append(str(error))
    converted = sorted({run.subject for run in runs if isinstance(run, Run)})
    description = {"Name": f"{hcp_dir.name} in the BIDS-style parcellated form", "BIDSVersion": "1.10.0",
                   "DatasetType": "derivative",
                   "GeneratedBy": [{"Name": "bidsapp.inputs.convert", "Version": __version__,
                                    "Description": f"Converted from the HCP course layout at {hcp_dir}"}]}
    _write_text(out_dir / "dataset_description.json", json.dumps(description, indent=2) + "\n")
    participants_tsv = "participant_id\n" + "".join(f"sub-{s}\n" for s in converted)
    _write_text(out_dir / "participants.tsv", participants_tsv)
    dseg = out_dir / "atlases" / "atlas-Glasser" / "atlas-Glasser_dseg.tsv"
    table = labels_table(hcp_dir)
    write_atomically(dseg, lambda tmp: table.to_csv(tmp, sep="\t", index=False, lineterminator="\n"))
    if (hcp_dir / "atlas.npz").is_file():
        write_atomically(out_dir / "atlas.npz", lambda tmp: shutil.copyfile(hcp_dir / "atlas.npz", tmp))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m bidsapp.inputs.convert HCP_DIR OUT_DIR``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="bidsapp-convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("hcp_dir", type=Path, help="HCP course layout (regions.npy, subjects/<id>/...)")
    parser.add_argument("out_dir", type=Path, help="where to write the BIDS-style form")
    parser.add_argument("--participant-label", "--participant_label", nargs="+", metavar="LABEL",
                        help="subjects to convert (default: all)")
    args = parser.parse_args(argv)
    try:
        hcp_dir, out_dir = args.hcp_dir.absolute(), args.out_dir.absolute()
        if out_dir == hcp_dir or out_dir.is_relative_to(hcp_dir / "subjects"):
            raise UsageError(f"OUT_DIR {out_dir} is inside HCP_DIR's data; choose another directory")
        labels = [label.removeprefix("sub-") for label in args.participant_label or []]
        problems = convert(hcp_dir, out_dir, labels)
    except BidsAppError as error:
        print(f"bidsapp-convert: {error}", file=sys.stderr)
        return error.exit_code
    for problem in problems:
        print(f"bidsapp-convert: {problem}; left out", file=sys.stderr)
    print(f"bidsapp-convert: wrote {out_dir}")
    return MissingInputError.exit_code if problems else 0


if __name__ == "__main__":
    sys.exit(main())
