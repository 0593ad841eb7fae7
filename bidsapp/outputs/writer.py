"""Write BIDS-Derivatives outputs: JSON sidecars, atomic writes and re-run checks.

This is the only module that writes into OUTPUT_DIR. Every file is first written
under a hidden temporary name in its final directory and then renamed into place
with :func:`os.replace`, so a failed or interrupted run never leaves a
half-written file in place of a good one. A data file's JSON sidecar is renamed
last, and it records a hash of the parameters that produced the data and the
data file's size and SHA-256, so :meth:`DerivativesWriter.is_complete` can tell
a re-run which outputs to skip, and which were damaged since (truncated,
overwritten) and must be written again. Image headers are set here too
(:mod:`bidsapp.outputs.nifti`), and input files are recorded as BIDS URIs
(:mod:`bidsapp.outputs.provenance`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bidsapp.errors import UsageError
from bidsapp.outputs.atomic import publish_once, remove_stale_temporaries, replace_atomically, write_text_file
from bidsapp.outputs.layout import BIDSIGNORE, OutputLayout
from bidsapp.outputs.nifti import MASK_SUFFIX, name_entities, prepare_image, reference_image, save_image
from bidsapp.outputs.provenance import DescriptionChange, SourceLinks, add_generated_by, locked, source_list

LOGGER = logging.getLogger(__name__)
BIDS_VERSION = "1.10.0"
SIZE_KEY = "DataFileSize"
"""Sidecar key of the data file's size in bytes."""
CHECKSUM_KEY = "DataFileSHA256"
"""Sidecar key of the data file's SHA-256 (hex digest)."""
_RESERVED = ("ParametersHash", "GeneratedBy", SIZE_KEY, CHECKSUM_KEY)
PathLike = str | os.PathLike
"""A path given as a string or :class:`os.PathLike`."""


class OutputDirError(UsageError):
    """OUTPUT_DIR, or the file ``path`` in it, cannot be used; ``message`` says why and what to do (exit 2)."""

    def __init__(self, path: PathLike, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(path, message)

    def __str__(self) -> str:
        """The path and what is wrong with it, as the CLI prints it."""
        return f"{self.path}: {self.message}"


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` to plain JSON types (raise TypeError when there is none).

    NumPy scalars and arrays become Python numbers and lists, paths strings, tuples and sets
    lists, and non-finite floats (NaN, +/-inf) ``None`` (JSON null).
    """
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(item) for item in items]
    raise TypeError(f"cannot write a {type(obj).__name__} to JSON: {obj!r}")


def parameters_hash(parameters: Mapping[str, Any]) -> str:
    """Return the sha256 hex digest of ``parameters`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(to_jsonable(parameters), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_checksum(path: PathLike) -> str:
    """Return the SHA-256 hex digest of the file ``path``."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _mismatch(path: Path, content: Mapping[str, Any]) -> str | None:
    """Say how the data file ``path`` differs from what its sidecar ``content`` records; None when it matches."""
    size, checksum = content.get(SIZE_KEY), content.get(CHECKSUM_KEY)
    if size is None or checksum is None:
        return "its sidecar records no size and checksum (written by an older bidsapp)"
    actual = path.stat().st_size
    if actual != size:
        return f"it has {actual} bytes where its sidecar records {size}"
    if file_checksum(path) != checksum:
        return "its SHA-256 differs from the one its sidecar records"
    return None


def sidecar_path(path: PathLike) -> Path:
    """Return the JSON sidecar of a data file: the same name with its extension replaced by ``.json``."""
    path = Path(path)
    stem, _, extension = path.name.partition(".")
    if extension == "json":
        raise ValueError(f"{path} is a JSON file and has no sidecar")
    return path.with_name(stem + ".json")


def _json_text(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


class DerivativesWriter:
    """Write bidsapp outputs into a BIDS-Derivatives OUTPUT_DIR.

    Parameters
    ----------
    output_dir : str or Path
        The derivatives dataset that bidsapp owns; created if missing.
    version : str
        bidsapp's version, recorded in ``dataset_description.json`` and every sidecar.
    command : sequence of str
        The command line that started this run (e.g. ``sys.argv``), appended to
        ``GeneratedBy`` in ``dataset_description.json`` unless already there.
    code_url : str, optional
        Recorded as ``GeneratedBy[0].CodeURL`` when given.
    """

    def __init__(self, output_dir: PathLike, *, version: str, command: Sequence[str],
                 code_url: str | None = None) -> None:
        self.output_dir = Path(output_dir).absolute()
        self.version = version
        self.command = [str(arg) for arg in command]
        self.code_url = code_url
        self.links = SourceLinks(self.output_dir, self.update_description)

    def generated_by(self) -> dict[str, str]:
        """Return this run's ``GeneratedBy`` entry: bidsapp, its version and the command line."""
        entry = {"Name": "bidsapp", "Version": self.version,
                 "Description": "Denoising, parcellation, connectivity, GLMs and group statistics.",
                 "Command": shlex.join(self.command)}
        if self.code_url:
            entry["CodeURL"] = self.code_url
        return entry

    def dataset_description(self) -> dict[str, Any]:
        """Return the ``dataset_description.json`` content this writer would create."""
        return {"Name": "bidsapp outputs", "BIDSVersion": BIDS_VERSION, "DatasetType": "derivative",
                "GeneratedBy": [self.generated_by()]}

    def update_description(self, change: DescriptionChange) -> dict[str, Any]:
        """Apply ``change`` to ``dataset_description.json`` under a lock on OUTPUT_DIR; return the content.

        The file is created first if missing (:meth:`ensure_dataset_description`) and replaced
        atomically only when ``change`` changed something.
        """
        final = self.output_dir / "dataset_description.json"
        if not final.is_file():
            self.ensure_dataset_description()
        with locked(self.output_dir):
            description = json.loads(final.read_text(encoding="utf-8"))
            if change(description):
                text = _json_text(description)
                self._replace_atomically([(final, lambda tmp: write_text_file(tmp, text))])
        return description

    def ensure_dataset_description(self) -> Path:
        """Create OUTPUT_DIR, its ``dataset_description.json`` and ``.bidsignore`` unless they exist.

        A description written by another command line gets this one's ``GeneratedBy`` entry
        appended (once per distinct command line). Temporary files that a killed run left behind are removed first
        (:func:`~bidsapp.outputs.atomic.remove_stale_temporaries`). Safe when several processes
        call it at once (see :func:`publish_once`).

        Returns
        -------
        Path
            ``dataset_description.json``.

        Raises
        ------
        OutputDirError
            If OUTPUT_DIR cannot be created, or an existing ``dataset_description.json`` is not
            valid JSON or does not describe a bidsapp derivatives dataset.
        """
        final = self.output_dir / "dataset_description.json"
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputDirError(self.output_dir, f"cannot create OUTPUT_DIR ({error.strerror}); "
                                 "choose a writable directory") from error
        stale = remove_stale_temporaries(self.output_dir)
        if stale:
            LOGGER.info("Removed %d temporary files left by an interrupted run", len(stale))
        publish_once(final, _json_text(self.dataset_description()))
        self._check_dataset_description(final)
        self.update_description(add_generated_by(self.generated_by()))
        publish_once(self.output_dir / ".bidsignore", BIDSIGNORE)
        return final

    def check_ownership(self) -> None:
        """Refuse an OUTPUT_DIR whose ``dataset_description.json`` is not bidsapp's (before writing anything).

        Raises
        ------
        OutputDirError
            As :meth:`ensure_dataset_description`; nothing happens when there is no description yet.
        """
        path = self.output_dir / "dataset_description.json"
        if path.exists():
            self._check_dataset_description(path)

    @staticmethod
    def _check_dataset_description(path: Path) -> None:
        advice = "remove it or choose an empty OUTPUT_DIR"
        try:
            description = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise OutputDirError(path, f"cannot be read as JSON ({error}); {advice}") from error
        if not isinstance(description, dict):
            raise OutputDirError(path, f"is not a JSON object; {advice}")
        dataset_type = description.get("DatasetType", "raw")
        if dataset_type != "derivative":
            raise OutputDirError(path, f"has DatasetType {dataset_type!r}, so OUTPUT_DIR is not a derivatives "
                                 f"dataset; never write into raw data: {advice}")
        generated_by = description.get("GeneratedBy")
        names = [entry.get("Name") for entry in generated_by if isinstance(entry, dict)] \
            if isinstance(generated_by, list) else []
        if "bidsapp" not in names:
            raise OutputDirError(path, f"describes a derivatives dataset generated by {names or 'unknown'}, "
                                 f"not bidsapp; {advice}")

    @property
    def layout(self) -> OutputLayout:
        """Where each output goes in this writer's OUTPUT_DIR (:mod:`bidsapp.outputs.layout`)."""
        return OutputLayout(self.output_dir)

    def write_table(self, path: PathLike, table: Any, sidecar: Mapping[str, Any] | None = None, *,
                    parameters: Mapping[str, Any] | None = None, sources: Iterable[PathLike] | None = None) -> Path:
        r"""Write a DataFrame as a tab-separated ``.tsv`` with its JSON sidecar, atomically.

        Missing values are written as ``n/a``. Floats use pandas' shortest round-trip
        representation for their dtype, so float32 and float64 values read back exactly
        (``pandas.read_csv(path, sep="\t", na_values="n/a")``).

        Parameters
        ----------
        path : str or Path
            Final path inside OUTPUT_DIR, e.g. from :class:`bidsapp.outputs.layout.OutputLayout`.
        table : pandas.DataFrame
            Written without its index.
        sidecar, parameters, sources
            See :meth:`make_sidecar`.

        Returns
        -------
        Path
            ``path``; its sidecar is :func:`sidecar_path` of it.
        """
        def save(tmp: Path) -> None:
            table.to_csv(tmp, sep="\t", index=False, na_rep="n/a", lineterminator="\n", encoding="utf-8")

        return self._write_with_sidecar(path, save, sidecar, parameters, sources)

    def write_image(self, path: PathLike, img: Any, sidecar: Mapping[str, Any] | None = None, *,
                    parameters: Mapping[str, Any] | None = None, sources: Iterable[PathLike] | None = None) -> Path:
        """Write a NIfTI image (e.g. ``.nii.gz``) with its JSON sidecar, atomically.

        The header is set from the file name and sidecar (:func:`bidsapp.outputs.nifti.prepare_image`):
        the sform and qform codes of the first NIfTI source on the same grid, units mm and s,
        the intent of a statistical map's ``stat`` entity, uint8 masks and integer label maps.
        A mask's sidecar also gets ``Type`` (``ROI``) and ``SpatialReference`` (that source's
        BIDS URI, else the ``space`` entity) unless given. The temporary name keeps the
        extension, so nibabel writes the same format. Other arguments are as for :meth:`write_table`.
        """
        path = Path(path)
        content = dict(sidecar or {})
        given = source_list(sources if sources is not None else content.get("Sources"))
        reference = reference_image(given, img.affine)
        entities, suffix = name_entities(path.name)
        if suffix == MASK_SUFFIX:
            spatial = self.links.uri(reference) if reference is not None else entities.get("space")
            content = {"Type": "ROI", **({"SpatialReference": spatial} if spatial else {}), **content}
        prepared = prepare_image(img, path.name, content, reference)
        return self._write_with_sidecar(path, lambda tmp: save_image(prepared, tmp), content, parameters, sources)

    def write_text(self, path: PathLike, text: str | bytes, sidecar: Mapping[str, Any] | None = None, *,
                   parameters: Mapping[str, Any] | None = None, sources: Iterable[PathLike] | None = None) -> Path:
        """Write UTF-8 text (e.g. an HTML report), or bytes already encoded as UTF-8, atomically.

        A sidecar is written (and :meth:`is_complete` can judge the file) only when ``sidecar``
        or ``parameters`` is given.
        """
        data = text.encode("utf-8") if isinstance(text, str) else text
        if sidecar is None and parameters is None:
            return self._replace_atomically([(Path(path), lambda tmp: tmp.write_bytes(data))])
        record = {SIZE_KEY: len(data), CHECKSUM_KEY: hashlib.sha256(data).hexdigest()}  # not read back
        return self._write_with_sidecar(path, lambda tmp: tmp.write_bytes(data), sidecar, parameters, sources, record)

    def write_json(self, path: PathLike, obj: Any) -> Path:
        """Write ``obj`` as indented JSON atomically (NumPy values converted, NaN as null)."""
        text = _json_text(obj)
        return self._replace_atomically([(Path(path), lambda tmp: write_text_file(tmp, text))])

    def make_sidecar(self, sidecar: Mapping[str, Any] | None = None, parameters: Mapping[str, Any] | None = None,
                     sources: Iterable[PathLike] | None = None) -> dict[str, Any]:
        """Return sidecar content: ``sidecar`` plus Parameters, ParametersHash, Sources and GeneratedBy.

        Parameters
        ----------
        sidecar : mapping, optional
            Anything to record (e.g. RepetitionTime, censored volumes, degrees of freedom).
            It may hold ``Parameters`` and ``Sources`` itself instead of the keywords below.
        parameters : mapping, optional
            Every parameter that determines the output; its hash decides re-run skipping.
        sources : iterable of str or Path, optional
            Input files the output was computed from, recorded as BIDS URIs
            (:class:`bidsapp.outputs.provenance.SourceLinks`).
        """
        content = dict(sidecar or {})
        for key, value in (("Parameters", parameters), ("Sources", sources)):
            if value is not None and key in content:
                raise ValueError(f"{key} given both in the sidecar and as a keyword; give it once")
        parameters = content.pop("Parameters", None) if parameters is None else parameters
        sources = content.pop("Sources", None) if sources is None else sources
        parameters = to_jsonable(dict(parameters or {}))
        for key in _RESERVED:
            content.pop(key, None)
        content["Parameters"] = parameters
        content["ParametersHash"] = parameters_hash(parameters)
        content["Sources"] = [self.links.uri(source) for source in source_list(sources)]
        content["GeneratedBy"] = [{"Name": "bidsapp", "Version": self.version}]
        return content

    def is_complete(self, path: PathLike, parameters: Mapping[str, Any]) -> bool:
        """Tell whether ``path`` is an intact output of these ``parameters``.

        It is when its sidecar records these ``parameters`` and the file has the size and
        SHA-256 the sidecar records. A file that does not match (truncated, overwritten, or
        recorded by an older bidsapp) is logged and reported incomplete: the participant level writes it
        again, the group level leaves it out.
        """
        path = Path(path)
        try:
            content = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
            if not (path.is_file() and isinstance(content, dict)
                    and content.get("ParametersHash") == parameters_hash(parameters)):
                return False
            mismatch = _mismatch(path, content)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        if mismatch:
            LOGGER.warning("%s does not match its sidecar: %s; treated as missing", path, mismatch)
        return mismatch is None

    def _write_with_sidecar(self, path, save, sidecar, parameters, sources, known: dict | None = None) -> Path:
        """Write the data file, then its sidecar recording the data file's size and SHA-256.

        The size and SHA-256 are read back from the written file unless ``known`` gives them.
        """
        path = Path(path)
        content = self.make_sidecar(sidecar, parameters, sources)
        text = _json_text({**content, **known} if known else content)  # fails before touching disk

        def save_data(tmp: Path) -> None:
            save(tmp)
            if not known:
                content.update({SIZE_KEY: tmp.stat().st_size, CHECKSUM_KEY: file_checksum(tmp)})

        def save_sidecar(tmp: Path) -> None:
            write_text_file(tmp, text if known else _json_text(content))

        return self._replace_atomically([(path, save_data), (sidecar_path(path), save_sidecar)])

    def _replace_atomically(self, files: Iterable[tuple[Path, Callable[[Path], Any]]]) -> Path:
        """:func:`~bidsapp.outputs.atomic.replace_atomically`, for files inside OUTPUT_DIR only."""
        files = list(files)
        for path, _ in files:
            self._check_inside(path)
        return replace_atomically(files)

    def _check_inside(self, path: Path) -> None:
        if not path.resolve().is_relative_to(self.output_dir.resolve()):
            raise ValueError(f"{path} is outside OUTPUT_DIR {self.output_dir}; bidsapp writes only there")
