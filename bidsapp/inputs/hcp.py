"""HCP-style parcellated data, in the HCP course layout or the BIDS-style form.

Course layout (CONTRACT 3b): ``regions.npy`` (name, network, myelin per parcel),
``subjects/<id>/timeseries/bold<k>_Atlas_MSMAll_Glasser360Cortical.npy`` (parcels
x time, ``k`` the 1-based index in :data:`BOLD_NAMES`) and
``subjects/<id>/EVs/<run name>/<condition>.txt``. BIDS-style form:
``sub-<id>/func/*_stat-mean_timeseries.tsv`` (time x parcels, parcel names as the
header) with a JSON sidecar giving RepetitionTime and ``*_events.tsv`` beside.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from bidsapp.errors import InvalidDatasetError
from bidsapp.inputs.runs import RUN_ENTITIES, Run, RunProblem, parse_entities, run_name

#: HCP repetition time in seconds, for runs without a sidecar saying otherwise.
HCP_REPETITION_TIME = 0.72

#: Run names of the HCP course data, in the order of the ``bold<k>`` file numbers.
BOLD_NAMES = (
    "rfMRI_REST1_LR", "rfMRI_REST1_RL", "rfMRI_REST2_LR", "rfMRI_REST2_RL",
    "tfMRI_MOTOR_RL", "tfMRI_MOTOR_LR", "tfMRI_WM_RL", "tfMRI_WM_LR",
    "tfMRI_EMOTION_RL", "tfMRI_EMOTION_LR", "tfMRI_GAMBLING_RL", "tfMRI_GAMBLING_LR",
    "tfMRI_LANGUAGE_RL", "tfMRI_LANGUAGE_LR", "tfMRI_RELATIONAL_RL", "tfMRI_RELATIONAL_LR",
    "tfMRI_SOCIAL_RL", "tfMRI_SOCIAL_LR",
)
_BOLD_NAME = re.compile(r"^[rt]fMRI_(?P<task>[A-Z]+?)(?P<run>\d?)_(?P<dir>LR|RL)$")
_TIMESERIES = "bold{k}_Atlas_MSMAll_Glasser360Cortical.npy"


def is_course_layout(root: Path) -> bool:
    """True for the HCP course layout (``regions.npy`` or ``subjects/*/timeseries``)."""
    return (root / "regions.npy").is_file() or any((root / "subjects").glob("*/timeseries"))


def is_bids_parcellated(root: Path) -> bool:
    """True for BIDS-style parcel time series (``sub-*/[ses-*/]func/*_stat-mean_timeseries.tsv``)."""
    patterns = ("sub-*/func/*_stat-mean_timeseries.tsv", "sub-*/ses-*/func/*_stat-mean_timeseries.tsv")
    return any(next(root.glob(pattern), None) for pattern in patterns)


def run_entities(bold_name: str) -> dict[str, str]:
    """BIDS entities of an HCP run name, e.g. ``rfMRI_REST2_LR`` -> task rest, dir LR, run 2."""
    match = _BOLD_NAME.match(bold_name)
    if match is None:
        raise ValueError(f"{bold_name!r} is not an HCP run name like rfMRI_REST2_LR")
    entities = {"task": match["task"].lower(), "dir": match["dir"]}
    if match["run"]:
        entities["run"] = match["run"]
    return entities


def read_parcel_names(root: Path) -> tuple[str, ...]:
    """Parcel names from ``regions.npy`` (rows of name, network, myelin)."""
    path = root / "regions.npy"
    if not path.is_file():
        raise InvalidDatasetError(f"{path}: not found; the HCP course layout needs regions.npy (name, network, myelin)")
    import numpy as np

    try:
        regions = np.load(path)
    except (OSError, ValueError) as error:
        raise InvalidDatasetError(f"{path}: not a readable .npy array ({error})") from error
    if regions.ndim != 2 or 3 not in regions.shape:
        raise InvalidDatasetError(f"{path}: expected rows of (name, network, myelin), got shape {regions.shape}")
    names = regions[:, 0] if regions.shape[1] == 3 else regions[0]
    return tuple(str(name) for name in names)


def read_course_runs(root: Path, selected: Callable[[Mapping[str, str]], bool]
                     ) -> tuple[set[str], list[Run | RunProblem], tuple[str, ...]]:
    """Find the runs of an HCP course-layout dataset and check each one's shape.

    Returns
    -------
    subjects : set of str
    runs : list of Run or RunProblem
    parcel_names : tuple of str
    """
    names = read_parcel_names(root)
    subjects_dir = root / "subjects"
    subjects = {p.name for p in subjects_dir.iterdir() if p.is_dir()} if subjects_dir.is_dir() else set()
    runs: list[Run | RunProblem] = []
    for subject in sorted(subjects):
        for k, bold_name in enumerate(BOLD_NAMES, start=1):
            path = subjects_dir / subject / "timeseries" / _TIMESERIES.format(k=k)
            entities = {"sub": subject, **run_entities(bold_name)}
            if not path.is_file() or not selected(entities):
                continue
            ev_dir = subjects_dir / subject / "EVs" / bold_name
            runs.append(_check_course_run(path, entities, len(names), ev_dir if ev_dir.is_dir() else None))
    return subjects, runs, names


def _check_course_run(path: Path, entities: dict[str, str], n_parcels: int, events: Path | None) -> Run | RunProblem:
    import numpy as np

    name = run_name(entities)
    try:
        shape = np.load(path, mmap_mode="r").shape
    except (OSError, ValueError) as error:
        return RunProblem(name, path, f"not a readable .npy array ({error})")
    if len(shape) != 2 or shape[0] != n_parcels:
        if len(shape) == 2 and shape[1] == n_parcels:
            message = (f"has shape {shape}: time x parcels, but the course layout stores parcels x time "
                       f"({n_parcels} x T); transpose it (np.save(path, data.T))")
        else:
            message = f"has shape {shape}; expected {n_parcels} parcels (as in regions.npy) x time"
        return RunProblem(name, path, message)
    return Run(entities=entities, data=path, kind="parcels", repetition_time=HCP_REPETITION_TIME,
               n_volumes=int(shape[1]), shape=(n_parcels,), events=events)


def read_bids_parcellated_runs(root: Path, selected: Callable[[Mapping[str, str]], bool]
                               ) -> tuple[set[str], list[Run | RunProblem], tuple[str, ...] | None]:
    """Find BIDS-style parcel time series and check headers, lengths and sidecars.

    Returns
    -------
    subjects : set of str
    runs : list of Run or RunProblem
    parcel_names : tuple of str or None
        The header of the first run; runs with another header are problems.
    """
    paths = sorted([*root.glob("sub-*/func/*_stat-mean_timeseries.tsv"),
                    *root.glob("sub-*/ses-*/func/*_stat-mean_timeseries.tsv")])
    subjects: set[str] = set()
    runs: list[Run | RunProblem] = []
    names: tuple[str, ...] | None = None
    for path in paths:
        entities = {k: v for k, v in parse_entities(path.name).items() if k in RUN_ENTITIES}
        subjects.add(entities["sub"])
        if not selected(entities):
            continue
        name = run_name(entities)
        with path.open() as handle:
            header = tuple(handle.readline().rstrip("\n").split("\t"))
            n_rows = sum(1 for line in handle if line.strip())
        names = names or header
        sidecar = path.with_suffix(".json")
        metadata = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        stem = path.name.split("_space-")[0].split("_seg-")[0].split("_stat-")[0]
        events = path.with_name(f"{stem}_events.tsv")
        if header != names:
            runs.append(RunProblem(name, path, f"has {len(header)} parcel columns that differ from the "
                                                  f"{len(names)} of the first run; all runs need the same parcels"))
        elif not isinstance(metadata.get("RepetitionTime"), (int, float)):
            runs.append(RunProblem(name, sidecar, "no RepetitionTime (seconds) in this JSON sidecar"))
        else:
            runs.append(Run(entities=entities, data=path, kind="parcels",
                            repetition_time=float(metadata["RepetitionTime"]), n_volumes=n_rows,
                            shape=(len(header),), events=events if events.is_file() else None))
    return subjects, runs, names
