"""fMRIPrep derivatives (any version, 1.0 to today) with their raw dataset.

Runs are the ``desc-preproc_bold`` images in the chosen space; each is matched
with its brain mask, confounds table (``desc-confounds_timeseries`` from 21.0,
``desc-confounds_regressors`` from 1.2, ``bold_confounds`` with CamelCase columns
in 1.0/1.1), repetition time (the derivative's sidecar, else the raw BOLD's,
with BIDS inheritance) and the raw dataset's events (``run-1`` matches
``run-01``). fMRIPrep 1.0/1.1 file names are not BIDS-Derivatives names, so
those are found by pattern.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from bidsapp.errors import BidsAppError, InvalidDatasetError, MissingInputError, NoDataError
from bidsapp.inputs.index import Query, RunChecks, file_stamps, query_index
from bidsapp.inputs.runs import RUN_ENTITIES, Run, RunProblem, parse_entities, run_name

LOGGER = logging.getLogger(__name__)

_EVENTS_KEYS = tuple(key for key in RUN_ENTITIES if key != "echo")
_NIFTI = [".nii.gz", ".nii"]
#: What discovery asks pybids: preprocessed BOLD images, events tables, BOLD sidecars (for inheritance).
_QUERIES: dict[str, Query] = {
    "bold": {"desc": "preproc", "suffix": "bold", "extension": _NIFTI},
    "events": {"suffix": "events", "extension": ".tsv"},
    "sidecars": {"suffix": "bold", "extension": ".json"},
}
_LEGACY_BOLD = re.compile(r"^(?P<prefix>sub-[^_]+.*)_bold_space-(?P<space>[^_]+)_preproc\.nii(\.gz)?$")


def find_derivatives(bids_dir: Path, given: tuple[Path, ...]) -> tuple[Path | None, list[Path]]:
    """Tell the raw dataset from the fMRIPrep derivatives.

    Returns
    -------
    raw : Path or None
        The raw dataset, or ``None`` when ``bids_dir`` is itself a derivatives dataset.
    derivatives : list of Path
    """
    if is_derivative_dataset(bids_dir):
        return None, [bids_dir, *given]
    if given:
        return bids_dir, list(given)
    default = bids_dir / "derivatives" / "fmriprep"
    if not default.is_dir():
        raise MissingInputError(f"{default}: no fMRIPrep derivatives there; give their path with --derivatives PATH")
    return bids_dir, [default]


def is_derivative_dataset(path: Path) -> bool:
    """True when ``path/dataset_description.json`` declares a derivative dataset."""
    try:
        description = json.loads((path / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return False
    return description.get("DatasetType") == "derivative" or "PipelineDescription" in description


def read_fmriprep_runs(raw: Path | None, derivatives: list[Path], *, space: str, work_dir: Path,
                       selected: Callable[[Mapping[str, str]], bool], write_cache: bool = True
                       ) -> tuple[set[str], list[Run | RunProblem]]:
    """Find the fMRIPrep runs in ``space`` and check each one's files.

    Parameters
    ----------
    raw, derivatives
        As returned by :func:`find_derivatives`.
    space : str
        Template space of the runs to read.
    work_dir : Path
        Holds the cached index.
    selected : callable
        Takes a run's entities; only runs it accepts are checked and returned.
    write_cache : bool, default True
        Cache the index in ``work_dir``; ``False`` (a dry run) writes nothing there.

    Returns
    -------
    subjects : set of str
        Every participant with preprocessed BOLD in any space (to check labels).
    runs : list of Run or RunProblem
    """
    index = query_index(raw, derivatives, work_dir, _QUERIES, write=write_cache)

    def files(name: str) -> list[tuple[Path, dict[str, str]]]:
        return [(Path(f), parse_entities(Path(f).name)) for f in index.found[name]]

    bold_files = files("bold")
    subjects = {entities["sub"] for _, entities in bold_files}
    spaces = {entities.get("space", "(none)") for _, entities in bold_files}
    candidates = [(path, _run_entities(entities)) for path, entities in bold_files if entities.get("space") == space]
    for path, entities, legacy_space in _legacy_bold(derivatives):
        subjects.add(entities["sub"])
        spaces.add(legacy_space)
        if legacy_space == space:
            candidates.append((path, entities))
    if not subjects:
        raise _no_fmriprep_outputs(derivatives)
    if not candidates:
        raise NoDataError(f"{', '.join(map(str, derivatives))}: no preprocessed BOLD in space {space}; "
                          f"found spaces {', '.join(sorted(spaces))}: choose one with --space")

    events = {_key(entities): path for path, entities in files("events")}
    sidecars = [(path, _run_entities(entities)) for path, entities in files("sidecars")
                if "desc" not in entities and "space" not in entities]
    checks = RunChecks(index.folder, index.write)
    runs = []
    for path, entities in sorted(candidates, key=lambda item: str(item[0])):
        if selected(entities):
            run_events, applicable = events.get(_key(entities)), _applicable(entities, sidecars)
            stamps = file_stamps(_read_by_check(path, run_events, applicable))
            result = checks.get(entities["sub"], path, stamps)
            if not isinstance(result, (Run, RunProblem)):
                result = _check_run(path, entities, run_events, applicable)
                checks.put(entities["sub"], path, stamps, result)
            runs.append(result)
    checks.save()
    return subjects, runs


def _no_fmriprep_outputs(derivatives: list[Path]) -> BidsAppError:
    """Why no preprocessed BOLD was found: empty folders (exit 18), or outputs pybids could not index (16)."""
    for root in derivatives:
        if not (root / "dataset_description.json").is_file() and next(root.glob("sub-*/**/*_bold.nii*"), None):
            return InvalidDatasetError(
                f"{root}: holds BOLD images but no dataset_description.json, so it is not a BIDS-Derivatives "
                'dataset; add one with {"Name": "fMRIPrep", "BIDSVersion": "1.4.0", "DatasetType": "derivative"}')
    folders = ", ".join(map(str, derivatives))
    empty = all(next(root.iterdir(), None) is None for root in derivatives)
    return NoDataError(f"{folders}: {'empty' if empty else 'no preprocessed BOLD (*_desc-preproc_bold.nii.gz)'}; "
                       "run fMRIPrep first, or give the folder of its outputs with --derivatives PATH")


def _run_entities(entities: Mapping[str, str]) -> dict[str, str]:
    return {key: entities[key] for key in RUN_ENTITIES if key in entities}


def _key(entities: Mapping[str, str]) -> tuple:
    return tuple(entities.get(key) for key in _EVENTS_KEYS)


def _legacy_bold(derivatives: list[Path]) -> Iterator[tuple[Path, dict[str, str], str]]:
    """fMRIPrep 1.0/1.1 outputs: ``sub-01_task-rest_bold_space-MNI152NLin2009cAsym_preproc.nii.gz``."""
    for root in derivatives:
        for path in root.glob("sub-*/**/func/*_bold_space-*_preproc.nii*"):
            match = _LEGACY_BOLD.match(path.name)
            if match:
                yield path, _run_entities(parse_entities(match["prefix"])), match["space"]


def _companions(bold: Path) -> tuple[Path, list[Path]]:
    """The mask path and the candidate confounds paths of a BOLD run, by fMRIPrep's naming."""
    name = bold.name
    legacy = _LEGACY_BOLD.match(name)
    if legacy:
        mask = bold.with_name(re.sub(r"_preproc(\.nii(\.gz)?)$", r"_brainmask\1", name))
        return mask, [bold.with_name(f"{legacy['prefix']}_bold_confounds.tsv")]
    mask = bold.with_name(name.replace("_desc-preproc_bold", "_desc-brain_mask"))
    stem = re.split(r"_(space|res|den|desc)-", name)[0]
    return mask, [bold.with_name(f"{stem}_desc-confounds_{suffix}.tsv") for suffix in ("timeseries", "regressors")]


def _sidecar(image: Path) -> Path:
    return image.with_name(re.sub(r"\.nii(\.gz)?$", ".json", image.name))


class _SidecarError(Exception):
    """A JSON sidecar that cannot be read, or is not a JSON object."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _read_json(path: Path) -> dict:
    """A JSON sidecar's object, its parser's message folded into one line."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise _SidecarError(Path(path), " ".join(str(error).split())) from error
    if not isinstance(value, dict):
        raise _SidecarError(Path(path), "not a JSON object")
    return value


def _applicable(entities: Mapping[str, str], sidecars: list) -> list[Path]:
    """The raw ``*_bold.json`` sidecars whose entities all match the run's, least specific first (inheritance)."""
    matching = [(len(sc), str(path)) for path, sc in sidecars if all(entities.get(k) == v for k, v in sc.items())]
    return [Path(path) for _, path in sorted(matching)]


def _read_by_check(bold: Path, events: Path | None, applicable: list[Path]) -> list[Path]:
    """Every file :func:`_check_run` may read for a run (their stamps key its cached result)."""
    mask, confounds = _companions(bold)
    return [bold, mask, *confounds, _sidecar(bold), *applicable, *([events] if events else [])]


def _repetition_time(bold: Path, applicable: list[Path]) -> float | None:
    """The derivative sidecar's RepetitionTime, else the raw BOLD's by BIDS inheritance.

    ``applicable`` holds the raw ``*_bold.json`` files that apply to the run, least
    specific first; the more specific override the less.

    Raises
    ------
    _SidecarError
        For a sidecar that is not valid JSON.
    """
    own = _sidecar(bold)
    metadata = _read_json(own) if own.is_file() else {}
    if "RepetitionTime" not in metadata:
        inherited: dict = {}
        for path in applicable:
            inherited.update(_read_json(path))
        metadata = {**inherited, **metadata}
    value = metadata.get("RepetitionTime")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _image_shape(path: Path) -> tuple[int, ...]:
    """An image's shape from its header: a NIfTI-1 header read alone, anything else through ``nibabel.load``."""
    import nibabel as nib

    try:
        with gzip.open(path) if path.name.endswith(".gz") else path.open("rb") as stream:
            block = stream.read(348)
    except (OSError, EOFError):
        block = b""
    endianness = {348: "<", 348 << 24: ">"}.get(int.from_bytes(block[:4], "little")) if len(block) == 348 else None
    if endianness is None:  # NIfTI-2, or not an image: nibabel tells
        return nib.load(path).shape
    return nib.Nifti1Header(block, endianness=endianness, check=True).get_data_shape()


def _check_run(bold: Path, entities: dict[str, str], events: Path | None, applicable: list[Path]) -> Run | RunProblem:
    name = run_name(entities)
    try:
        shape = _image_shape(bold)
    except Exception as error:  # noqa: BLE001 - nibabel raises many types for unreadable files
        return RunProblem(name, bold, f"cannot be read as NIfTI ({error})")
    if len(shape) != 4:
        return RunProblem(name, bold, f"is {len(shape)}-D, a BOLD run must be 4-D")
    mask, confounds_candidates = _companions(bold)
    if not mask.is_file():
        return RunProblem(name, mask, "brain mask not found for this BOLD run")
    confounds = next((c for c in confounds_candidates if c.is_file()), None)
    if confounds is None:
        return RunProblem(name, confounds_candidates[0], "confounds file not found for this BOLD run")
    with confounds.open() as handle:
        n_rows = sum(1 for line in handle if line.strip()) - 1
    if n_rows != shape[3]:
        return RunProblem(name, confounds, f"has {n_rows} rows but {bold.name} has {shape[3]} volumes")
    try:
        repetition_time = _repetition_time(bold, applicable)
    except _SidecarError as error:
        return RunProblem(name, error.path, f"cannot be read as JSON ({error.reason})")
    if repetition_time is None:
        return RunProblem(name, _sidecar(bold), "no RepetitionTime (seconds) here nor in the raw BOLD's sidecars")
    return Run(entities=entities, data=bold, kind="bold",
               repetition_time=repetition_time, n_volumes=int(shape[3]), shape=tuple(shape[:3]),
               mask=mask, confounds=confounds, events=events)
