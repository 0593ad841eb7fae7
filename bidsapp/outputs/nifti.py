"""NIfTI headers of bidsapp's image outputs, set from the file name and the sidecar.

:meth:`bidsapp.outputs.writer.DerivativesWriter.write_image` passes every image
through :func:`prepare_image`, so no call site sets a header itself:

* the sform and qform codes are the input's (a NIfTI source on the same grid,
  e.g. 4 for MNI152 in fMRIPrep outputs), the spatial unit mm and the time unit s;
* a statistical map (suffix ``statmap``) gets the NIfTI intent of its ``stat``
  entity: t with its degrees of freedom, F with both, z, p, and "estimate"
  (named after the statistic) for the rest; the degrees of freedom come from
  the sidecar's ``DegreesOfFreedom``;
* a mask is written as uint8 and a label map (``dseg``) as integers.

:func:`save_image` compresses ``.nii.gz`` files with ISA-L's igzip at level 1
(about eight times faster than zlib's level 1 and slightly smaller), with no
name or time in the gzip header, so the same image gives the same bytes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

STAT_INTENTS = {"t": "t test", "F": "f test", "z": "z score", "p": "p value"}
"""NIfTI intent (nibabel's name) of each ``stat`` entity value; any other statistic is an "estimate"."""
MASK_SUFFIX = "mask"
LABEL_SUFFIX = "dseg"


def name_entities(name: str) -> tuple[dict[str, str], str]:
    """The entities and suffix of a BIDS file name, e.g. ``({"sub": "01", "stat": "t"}, "statmap")``."""
    parts = name.partition(".")[0].split("_")
    entities = dict(part.split("-", 1) for part in parts[:-1] if "-" in part)
    return entities, parts[-1]


def reference_image(sources: Iterable[str | os.PathLike], affine: np.ndarray) -> Path | None:
    """The first NIfTI source on the grid ``affine`` describes (its header gives the output's codes)."""
    for source in sources:
        path = Path(source)
        if not path.name.endswith((".nii", ".nii.gz")) or not path.is_file():
            continue
        header = _source_header(path)
        if header is not None and np.allclose(header.get_best_affine(), affine, atol=1e-4):
            return path
    return None


def _source_header(path: Path) -> nib.Nifti1Header | None:
    """The NIfTI-1 header of an input file, or None (read once per file version: every output asks)."""
    status = path.stat()
    return _read_header(path, status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _read_header(path: Path, size: int, mtime_ns: int) -> nib.Nifti1Header | None:
    try:
        header = nib.load(path).header
    except (OSError, ValueError, nib.filebasedimages.ImageFileError):
        return None
    return header if isinstance(header, nib.Nifti1Header) else None


def save_image(img: nib.Nifti1Image, path: str | os.PathLike) -> None:
    """Write ``img`` to ``path``; a ``.nii.gz`` file compressed by igzip at level 1, header without name or time."""
    from isal import igzip

    target = Path(path)
    if target.name.endswith(".nii.gz"):
        target.write_bytes(igzip.compress(img.to_bytes(), compresslevel=1, mtime=0))
    else:
        img.to_filename(target)


def _degrees_of_freedom(name: str, sidecar: Mapping[str, Any], count: int) -> tuple[float, ...]:
    """The last ``count`` values of the sidecar's ``DegreesOfFreedom`` (a number or a list)."""
    value = sidecar.get("DegreesOfFreedom")
    values = [value] if isinstance(value, (int, float)) else list(value or [])
    if len(values) < count:
        raise ValueError(f"{name}: a stat-{name_entities(name)[0]['stat']} map needs {count} degrees of freedom "
                         f"in its sidecar's DegreesOfFreedom, not {value!r}")
    return tuple(float(v) for v in values[-count:])


def _data(img: nib.Nifti1Image, suffix: str) -> np.ndarray:
    """The image's data in the type its suffix asks for: uint8 masks, integer label maps, else as is."""
    data = np.asanyarray(img.dataobj)
    if suffix == MASK_SUFFIX:
        return (np.nan_to_num(data) != 0).astype(np.uint8)
    if suffix == LABEL_SUFFIX:
        labels = np.rint(np.nan_to_num(data)).astype(np.int64)
        return labels.astype(np.int16 if np.abs(labels).max(initial=0) < 2 ** 15 else np.int32)
    return data


def prepare_image(img: nib.Nifti1Image, name: str, sidecar: Mapping[str, Any],
                  reference: Path | None) -> nib.Nifti1Image:
    """Return ``img`` as bidsapp writes the file ``name``: data type, codes, units and intent set.

    Parameters
    ----------
    img : nibabel.Nifti1Image
        The image as computed (data and affine).
    name : str
        The output's file name; its suffix and ``stat`` entity decide the data type and intent.
    sidecar : mapping
        The output's sidecar content (``DegreesOfFreedom`` for t and F maps).
    reference : Path, optional
        The input whose sform and qform codes the output keeps (:func:`reference_image`); without
        one the codes are nibabel's (sform 2, aligned).

    Returns
    -------
    nibabel.Nifti1Image

    Raises
    ------
    ValueError
        A t or F map whose sidecar lacks its degrees of freedom.
    """
    entities, suffix = name_entities(name)
    data = _data(img, suffix)
    out = nib.Nifti1Image(data, img.affine)
    header = out.header
    header.set_data_dtype(data.dtype)
    sform_code, qform_code = 2, 0
    source = _source_header(reference) if reference is not None else None
    if source is not None:
        sform_code, qform_code = int(source["sform_code"]), int(source["qform_code"])
    out.set_sform(img.affine, code=sform_code)
    out.set_qform(img.affine, code=qform_code)
    header.set_xyzt_units("mm", "sec")
    stat = entities.get("stat")
    if suffix == LABEL_SUFFIX:
        header.set_intent("label")
    elif suffix == "statmap" and stat is not None:
        intent = STAT_INTENTS.get(stat, "estimate")
        count = {"t": 1, "F": 2}.get(stat, 0)
        header.set_intent(intent, _degrees_of_freedom(name, sidecar, count) if count else (), name=stat[:16])
    return out
