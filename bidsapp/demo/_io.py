"""Small file writers shared by the demo simulators (atomic: :func:`bidsapp.outputs.atomic.write_atomically`)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bidsapp.outputs.atomic import write_atomically

__all__ = ["write_json", "write_tsv", "write_text", "write_nifti", "participant_labels"]


def write_json(path: Path, obj) -> Path:
    """Write ``obj`` as indented JSON, creating parent directories."""
    text = json.dumps(obj, indent=2) + "\n"
    return write_atomically(path, lambda tmp: tmp.write_text(text))


def write_tsv(path: Path, table: pd.DataFrame, float_format: str | None = None) -> Path:
    """Write a BIDS TSV (tab-separated, ``n/a`` for missing, no index)."""
    return write_atomically(path, lambda tmp: table.to_csv(tmp, sep="\t", index=False, na_rep="n/a",
                                                           float_format=float_format))


def write_text(path: Path, text: str) -> Path:
    """Write a text file, creating parent directories."""
    return write_atomically(path, lambda tmp: tmp.write_text(text))


def write_nifti(
    path: Path,
    data: np.ndarray,
    affine: np.ndarray,
    *,
    tr: float | None = None,
    dtype=np.float32,
    quantum: float | None = None,
    xform_code: int = 1,
) -> Path:
    """Write a NIfTI-1 image with proper units and (for 4D) the TR.

    Parameters
    ----------
    path : Path
    data : ndarray
    affine : ndarray of shape (4, 4)
    tr : float, optional
        Repetition time stored as the 4th zoom (seconds).
    dtype : numpy dtype, default=float32
        On-disk data type.
    quantum : float, optional
        Round values to multiples of this (keeps float files compressible;
        far below the noise level).
    xform_code : int, default=1
        qform/sform code (1 scanner, 4 MNI).

    Returns
    -------
    Path
    """
    arr = np.asarray(data)
    if quantum:
        arr = np.round(arr / quantum) * quantum
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        arr = np.clip(np.rint(arr), info.min, info.max)
    arr = arr.astype(dtype)
    img = nib.Nifti1Image(arr, affine)
    hdr = img.header
    hdr.set_data_dtype(dtype)
    hdr.set_xyzt_units("mm", "sec")
    if arr.ndim == 4 and tr is not None:
        hdr.set_zooms(hdr.get_zooms()[:3] + (float(tr),))
    img.set_qform(affine, code=xform_code)
    img.set_sform(affine, code=xform_code)
    return write_atomically(path, lambda tmp: nib.save(img, tmp))


def participant_labels(participants) -> list[str]:
    """Normalise ``participants`` to a list of labels without ``sub-``.

    Parameters
    ----------
    participants : int or sequence of str
        A count (labels ``01``, ``02``, ...) or explicit labels.

    Returns
    -------
    list of str
    """
    if isinstance(participants, (int, np.integer)):
        n = int(participants)
        if n < 1:
            raise ValueError("participants must be at least 1")
        width = max(2, len(str(n)))
        return [f"{i + 1:0{width}d}" for i in range(n)]
    labels = [str(p).removeprefix("sub-") for p in participants]
    if not labels or any(not lab.isalnum() for lab in labels):
        raise ValueError(f"invalid participant labels: {participants!r}")
    return labels
