"""Input discovery: the only code that reads the input dataset's layout.

:func:`discover` tells the kind of input apart, applies the selection (labels,
tasks, sessions, ``--bids-filter-file``), checks every selected run's files and
returns an :class:`Inventory`. Runs with problems stop the command (exit 66,
every problem listed) or, with ``--skip-bad-runs``, are left out with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from bidsapp.config import Config, Selection
from bidsapp.errors import InvalidDatasetError, NoDataError, raise_collected
from bidsapp.inputs.fmriprep import find_derivatives, read_fmriprep_runs
from bidsapp.inputs.hcp import (
    is_bids_parcellated,
    is_course_layout,
    read_bids_parcellated_runs,
    read_course_runs,
)
from bidsapp.inputs.runs import Inventory, Run, RunProblem, run_name

__all__ = ["Inventory", "Run", "RunProblem", "detect_input_type", "discover", "run_name"]

LOGGER = logging.getLogger(__name__)


def detect_input_type(bids_dir: Path) -> Literal["fmriprep", "hcp"]:
    """``"hcp"`` for HCP-style parcellated data, ``"fmriprep"`` for a BIDS dataset."""
    if is_course_layout(bids_dir) or is_bids_parcellated(bids_dir):
        return "hcp"
    if (bids_dir / "dataset_description.json").is_file():
        return "fmriprep"
    raise InvalidDatasetError(
        f"{bids_dir}: neither a BIDS dataset (no dataset_description.json) nor HCP-style parcellated data "
        "(no regions.npy, subjects/ or *_stat-mean_timeseries.tsv); check BIDS_DIR")


def discover(config: Config, *, defer_problems: bool = False) -> Inventory:
    """Find and check the runs ``config`` selects.

    Parameters
    ----------
    config : Config
    defer_problems : bool
        Leave the runs with problems out, in the inventory's ``skipped``, even
        without ``--skip-bad-runs``: the caller reports them with its own checks'
        (:func:`bidsapp.participant.preflight.preflight`). Default: raise them here.

    Raises
    ------
    NoDataError
        A participant label matches nothing, or the selection leaves no run.
    MissingInputError
        Runs have missing or inconsistent files (without ``--skip-bad-runs``).
    InvalidDatasetError
        The input is not a dataset bidsapp can read.
    """
    bids_dir, selection = config.bids_dir, config.selection
    input_type = detect_input_type(bids_dir) if config.input_type == "auto" else config.input_type
    selected = _selector(selection)
    parcel_names = None
    if input_type == "fmriprep":
        raw, derivatives = find_derivatives(bids_dir, config.derivatives)
        form = "fMRIPrep derivatives" if raw is None else "raw BIDS + fMRIPrep derivatives"
        subjects, found = read_fmriprep_runs(raw, derivatives, space=selection.space,
                                             work_dir=config.execution.work_dir, selected=selected,
                                             write_cache=not config.execution.dry_run)
        roots = tuple(([raw] if raw else []) + derivatives)
        participants_tsv = (raw or bids_dir) / "participants.tsv"
    elif is_course_layout(bids_dir):
        form, roots, participants_tsv = "HCP course layout", (bids_dir,), bids_dir / "participants.tsv"
        subjects, found, parcel_names = read_course_runs(bids_dir, selected)
    else:
        form, roots, participants_tsv = "BIDS-style parcellated", (bids_dir,), bids_dir / "participants.tsv"
        subjects, found, parcel_names = read_bids_parcellated_runs(bids_dir, selected)
    LOGGER.info("Input: %s at %s; %d participants in the dataset", form, bids_dir, len(subjects))

    _check_labels(selection, subjects, bids_dir)
    problems = [item for item in found if isinstance(item, RunProblem)]
    runs = tuple(item for item in found if isinstance(item, Run))
    if problems and not config.execution.skip_bad_runs and (not defer_problems or not runs):
        raise_collected([problem.as_error() for problem in problems])
    for problem in problems if config.execution.skip_bad_runs else ():
        LOGGER.warning("Leaving out %s: %s", problem.run_name, problem)
    if not runs:
        raise NoDataError(f"{bids_dir}: no runs {_describe(selection)}{' usable' if problems else ''}; "
                          "check --participant-label, --session-label, --task, --bids-filter-file and --space")
    inventory = Inventory(input_type=input_type, form=form, runs=runs, skipped=tuple(problems),
                          participants_tsv=participants_tsv if participants_tsv.is_file() else None,
                          parcel_names=parcel_names, roots=roots)
    LOGGER.info("Selected %d runs of %d participants", len(runs), len(inventory.participants))
    return inventory


def _selector(selection: Selection):
    """A predicate on run entities implementing the selection."""
    wanted: dict[str, set[str]] = {key: set(values) for key, values in selection.run_filters.items()}
    for key, values in (("sub", selection.participant_labels), ("ses", selection.session_labels),
                        ("task", selection.tasks)):
        if values is not None:
            wanted[key] = set(values) & wanted[key] if key in wanted else set(values)
    wanted = {key: {_normalise(key, v) for v in values} for key, values in wanted.items() if key != "space"}

    def selected(entities: Mapping[str, str]) -> bool:
        return all(_normalise(key, entities.get(key, "")) in values for key, values in wanted.items())

    return selected


def _normalise(key: str, value: str) -> str:
    return str(int(value)) if key in ("run", "echo") and str(value).isdigit() else str(value)


def _check_labels(selection: Selection, subjects: set[str], bids_dir: Path) -> None:
    if selection.participant_labels is None:
        return
    unknown = [label for label in selection.participant_labels if label not in subjects]
    if unknown:
        found = ", ".join(sorted(subjects)[:10]) + (" ..." if len(subjects) > 10 else "")
        raise NoDataError(f"--participant-label {' '.join(unknown)}: not in {bids_dir} "
                          f"(participants found: {found or 'none'})")


def _describe(selection: Selection) -> str:
    parts = [f"in space {selection.space}"]
    for label, values in (("participants", selection.participant_labels),
                          ("sessions", selection.session_labels), ("tasks", selection.tasks)):
        if values:
            parts.append(f"{label} {', '.join(values)}")
    if selection.run_filters:
        parts.append(f"filters {dict(selection.run_filters)}")
    return "match " + "; ".join(parts)
