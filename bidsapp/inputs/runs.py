"""What discovery finds: runs, the problems with them, and the inventory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bidsapp.errors import BidsAppError, MissingInputError

#: Order of the entities that identify a run in file names.
RUN_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo")


def parse_entities(filename: str) -> dict[str, str]:
    """Every ``key-value`` entity of a BIDS file name (``run`` and ``echo`` without zero padding)."""
    stem = filename.split(".", 1)[0]
    entities = dict(part.split("-", 1) for part in stem.split("_") if "-" in part)
    for key in ("run", "echo"):
        if entities.get(key, "").isdigit():
            entities[key] = str(int(entities[key]))
    return entities


def run_name(entities: Mapping[str, str]) -> str:
    """A run's entities as a file-name prefix, in BIDS order."""
    return "_".join(f"{key}-{entities[key]}" for key in RUN_ENTITIES if key in entities)


@dataclass(frozen=True)
class Run:
    """One functional run and the files that go with it.

    Attributes
    ----------
    entities : mapping
        Short BIDS entities identifying the run (``sub``, ``ses``, ``task``,
        ``acq``, ``dir``, ``run``, ``echo``...), values as strings; ``run`` has
        no zero padding.
    data : Path
        The preprocessed BOLD NIfTI, or a parcel time series (``.npy``/``.tsv``).
    kind : {"bold", "parcels"}
        Voxel data in a template space, or parcellated data.
    repetition_time : float
        Seconds between volumes.
    n_volumes : int
        Number of volumes (time points).
    shape : tuple of int
        Spatial shape of a volume, or ``(n_parcels,)``.
    mask, confounds, events : Path, optional
        Brain mask, fMRIPrep confounds TSV, and the events (an ``events.tsv``,
        or an HCP EV directory of ``<condition>.txt`` files).
    """

    entities: Mapping[str, str]
    data: Path
    kind: Literal["bold", "parcels"]
    repetition_time: float
    n_volumes: int
    shape: tuple[int, ...]
    mask: Path | None = None
    confounds: Path | None = None
    events: Path | None = None

    @property
    def subject(self) -> str:
        """Participant label (without ``sub-``)."""
        return self.entities["sub"]

    @property
    def name(self) -> str:
        """The run's entities as a file-name prefix, e.g. ``sub-01_task-rest_run-1``."""
        return run_name(self.entities)

    @property
    def files(self) -> tuple[Path, ...]:
        """Every input file of the run."""
        return tuple(p for p in (self.data, self.mask, self.confounds, self.events) if p is not None)

    def estimated_memory_gb(self) -> float:
        """Peak memory to process the run, in GB.

        Voxel runs: float32 in-mask data (about a quarter of the grid) and two working
        copies, plus 0.5 GB (0.86 GB measured for a 97x115x97x200 run, estimated 0.96).
        Parcel runs: float64 data and two copies, plus 0.3 GB.
        """
        n_values = self.n_volumes
        for size in self.shape:
            n_values *= size
        if self.kind == "bold":
            return 3 * 4 * n_values * 0.25 / 1e9 + 0.5
        return 3 * 8 * n_values / 1e9 + 0.3


@dataclass(frozen=True)
class RunProblem:
    """A run that cannot be analysed, with the file at fault."""

    run_name: str
    path: Path
    message: str

    def __str__(self) -> str:
        """The file at fault and what is wrong with it, as one line."""
        return f"{self.path}: {self.message}"

    def as_error(self) -> BidsAppError:
        """The problem as the error that stops the command (exit code 66)."""
        return MissingInputError(f"{self}; fix the file, or pass --skip-bad-runs to leave the run out")


@dataclass(frozen=True)
class Inventory:
    """Everything discovery found for the selected participants.

    Attributes
    ----------
    input_type : {"fmriprep", "hcp"}
    form : str
        The layout read, for the log and the plan (e.g. ``"raw BIDS + fMRIPrep
        derivatives"``, ``"HCP course layout"``).
    runs : tuple of Run
        Runs to analyse, sorted by participant then name.
    skipped : tuple of RunProblem
        Runs left out (``--skip-bad-runs``), with why.
    participants_tsv : Path, optional
        The dataset's ``participants.tsv``.
    parcel_names : tuple of str, optional
        Parcel names of parcellated data, in column order.
    roots : tuple of Path
        The dataset directories read.
    """

    input_type: Literal["fmriprep", "hcp"]
    form: str
    runs: tuple[Run, ...]
    skipped: tuple[RunProblem, ...] = ()
    participants_tsv: Path | None = None
    parcel_names: tuple[str, ...] | None = None
    roots: tuple[Path, ...] = ()

    @property
    def participants(self) -> tuple[str, ...]:
        """Participant labels with at least one run, sorted."""
        return tuple(sorted({run.subject for run in self.runs}))

    def runs_of(self, participant: str) -> tuple[Run, ...]:
        """The runs of one participant."""
        return tuple(run for run in self.runs if run.subject == participant)
