"""Read the contents of input files (discovery finds them; this reads them)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp.errors import MissingInputError
from bidsapp.inputs.discovery import Run


def read_confounds(run: Run) -> pd.DataFrame:
    """The run's fMRIPrep confounds table (any fMRIPrep version); ``n/a`` becomes NaN."""
    try:
        return pd.read_csv(run.confounds, sep="\t", na_values=["n/a"])
    except (OSError, ValueError) as error:
        raise MissingInputError(f"{run.confounds}: cannot be read as a TSV table ({error})") from error


def read_parcel_timeseries(run: Run) -> np.ndarray:
    """The run's parcel time series as a read-only float array of shape (n_volumes, n_parcels).

    The HCP course layout stores parcels x time in ``.npy`` files; the BIDS-style
    form stores time x parcels in a TSV with the parcel names as header. The
    last few runs read are kept (while their files are unchanged), so the run
    summary and the pipeline read each file once.
    """
    try:
        status = run.data.stat()
        return _read_parcel_file(run.data, status.st_size, status.st_mtime_ns)
    except (OSError, ValueError) as error:
        raise MissingInputError(f"{run.data}: cannot be read as parcel time series ({error})") from error


@functools.lru_cache(maxsize=24)
def _read_parcel_file(path: Path, size: int, mtime_ns: int) -> np.ndarray:
    """Read a parcel time series file (cached by name, size and modification time)."""
    if path.suffix == ".npy":
        data = np.load(path).T.astype(float)
    else:
        data = pd.read_csv(path, sep="\t", na_values=["n/a"]).to_numpy(float)
    data.flags.writeable = False
    return data


def read_confounds_metadata(run: Run) -> dict | None:
    """The JSON sidecar of the run's confounds table (fMRIPrep >= 1.4), or None when there is none."""
    if run.confounds is None:
        return None
    path = run.confounds.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise MissingInputError(f"{path}: cannot be read as JSON ({error})") from error


def read_mask(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The run's brain mask as booleans and the BOLD run's voxel-to-world affine.

    Raises
    ------
    MissingInputError
        If the mask is not on the BOLD grid (shape or affine) or is empty.
    """
    import nibabel as nib

    try:
        bold, mask_img = nib.load(run.data), nib.load(run.mask)
        mask = np.asarray(mask_img.dataobj) > 0
    except (OSError, ValueError) as error:
        raise MissingInputError(f"{run.mask}: cannot be read as a NIfTI mask ({error})") from error
    if mask.shape != bold.shape[:3] or not np.allclose(mask_img.affine, bold.affine, atol=1e-3):
        raise MissingInputError(f"{run.mask}: grid {mask.shape} does not match the BOLD grid {bold.shape[:3]} of "
                                f"{run.data.name} (shape and affine must agree); use the mask fMRIPrep wrote with it")
    if not mask.any():
        raise MissingInputError(f"{run.mask}: the brain mask is empty")
    return mask, np.asarray(bold.affine, dtype=float)


def read_bold(run: Run, mask: np.ndarray, *, smoothing_fwhm: float | None = None,
              block: int = 20) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a BOLD run once, front to back, as in-mask float32 time series.

    The file is opened with nibabel's opener (``indexed_gzip`` for ``.nii.gz``)
    and decompressed a block of volumes at a time straight into a buffer, at
    the offset, data type and scaling nibabel's ``dataobj`` reports; each block
    is masked into the (volumes x voxels) result.

    Parameters
    ----------
    run : Run
    mask : ndarray of bool, shape (x, y, z)
        Brain mask on the BOLD grid (:func:`read_mask`).
    smoothing_fwhm : float, optional
        Also return the data smoothed with a Gaussian of this FWHM in mm, volume
        by volume before masking (:func:`nilearn.image.smooth_img`, as
        ``NiftiMasker`` and ``FirstLevelModel`` smooth).
    block : int
        Volumes read at a time (bounds the working memory).

    Returns
    -------
    data : ndarray of shape (n_volumes, n_voxels), float32
        In-mask voxels in C order (``volume[mask]``).
    smoothed : ndarray of the same shape, or None

    Raises
    ------
    MissingInputError
        If the file cannot be read, or holds NaN or infinite values inside the mask.
    """
    import nibabel as nib
    from nibabel.openers import ImageOpener
    from nilearn.image import smooth_img

    try:
        img = nib.load(run.data)
        proxy = img.dataobj
        shape = tuple(proxy.shape)
        n_volumes, n_values = shape[3], int(np.prod(shape[:3]))
        voxels = np.ravel_multi_index(np.nonzero(mask), mask.shape, order="F")  # C-order voxels, F-order file
        data = np.empty((n_volumes, voxels.size), dtype=np.float32)
        smoothed = np.empty_like(data) if smoothing_fwhm else None
        buffer = np.empty(n_values * block, dtype=proxy.dtype)
        with ImageOpener(run.data) as stream:
            stream.seek(proxy.offset)
            for start in range(0, n_volumes, block):
                n = min(block, n_volumes - start)
                raw = buffer[:n_values * n]
                # numpy declares ndarray a Buffer only for Python >= 3.12; it is one on 3.10 and 3.11 too.
                if stream.readinto(memoryview(raw).cast("B")) != raw.nbytes:  # type: ignore[arg-type]
                    raise EOFError(f"the file ends before volume {start + n} of {n_volumes}")
                volumes = raw.reshape(n, n_values)
                rows = data[start:start + n]
                if volumes.dtype == rows.dtype:
                    np.take(volumes, voxels, axis=1, out=rows)
                else:
                    rows[:] = volumes[:, voxels]
                if proxy.slope != 1 or proxy.inter != 0:
                    rows *= np.float32(proxy.slope)
                    rows += np.float32(proxy.inter)
                bad = ~np.isfinite(rows)
                if bad.any():
                    raise MissingInputError(f"{run.data}: NaN or infinite values in {int(bad.sum())} in-mask voxels "
                                            f"(first in volume {start + int(np.argmax(bad.any(axis=1)))}); re-run "
                                            "fMRIPrep or repair the file")
                if smoothed is not None:
                    image = volumes.reshape(n, *shape[2::-1]).T * np.float32(proxy.slope) + np.float32(proxy.inter)
                    image = smooth_img(nib.Nifti1Image(image.astype(np.float32), img.affine), smoothing_fwhm)
                    smoothed[start:start + n] = image.get_fdata(dtype=np.float32)[mask].T
    except (OSError, ValueError, EOFError) as error:
        raise MissingInputError(f"{run.data}: cannot be read as a 4-D NIfTI image ({error})") from error
    return data, smoothed
