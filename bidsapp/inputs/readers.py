"""Read the contents of input files (discovery finds them; this reads them)."""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import cast

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


def read_bold(run: Run, mask: np.ndarray, *, smoothing_fwhm: float | None = None, block: int = 20,
              stop: threading.Event | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a BOLD run once, front to back, as in-mask float32 time series.

    A ``.nii.gz`` file is decompressed by ISA-L's igzip (:mod:`isal.igzip_threaded`,
    two to three times faster than zlib) in a thread of its own, while this
    one masks each block of volumes into the (volumes x voxels) result, at the
    offset, data type and scaling nibabel's ``dataobj`` reports.

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
    stop : threading.Event, optional
        When set (by :meth:`BoldRead.cancel`), the read stops after the current
        block and raises :class:`ReadCancelled`.

    Returns
    -------
    data : ndarray of shape (n_volumes, n_voxels), float32
        In-mask voxels in C order (``volume[mask]``).
    smoothed : ndarray of the same shape, or None

    Raises
    ------
    MissingInputError
        If the file cannot be read (truncated, not gzip, not NIfTI), or holds NaN
        or infinite values inside the mask.
    """
    import nibabel as nib
    from isal import igzip_threaded, isal_zlib

    try:
        img = nib.load(run.data)
        proxy = img.dataobj
        shape = tuple(proxy.shape)
        n_volumes, n_values = shape[3], int(np.prod(shape[:3]))
        voxels = np.ravel_multi_index(np.nonzero(mask), mask.shape, order="F")  # C-order voxels, F-order file
        data = np.empty((n_volumes, voxels.size), dtype=np.float32)
        smoothed = np.empty_like(data) if smoothing_fwhm else None
        buffer = np.empty(n_values * block, dtype=proxy.dtype)
        compressed = run.data.name.endswith(".gz")
        with (igzip_threaded.open(run.data, "rb") if compressed else open(run.data, "rb")) as stream:
            if len(stream.read(proxy.offset)) != proxy.offset:
                raise EOFError("the file ends in its header")
            for start in range(0, n_volumes, block):
                if stop is not None and stop.is_set():
                    raise ReadCancelled(run.data)
                n = min(block, n_volumes - start)
                raw = buffer[:n_values * n]
                # numpy declares ndarray a Buffer only for Python >= 3.12; it is one on 3.10 and 3.11 too.
                if stream.readinto(memoryview(raw).cast("B")) != raw.nbytes:  # type: ignore[arg-type]
                    raise EOFError(f"the file ends before volume {start + n} of {n_volumes}")
                _mask_block(run, raw.reshape(n, n_values), voxels, proxy, data[start:start + n], start)
                if smoothed is not None and smoothing_fwhm:
                    smoothed[start:start + n] = _smooth_block(raw.reshape(n, *shape[2::-1]), proxy, img.affine, mask,
                                                              smoothing_fwhm)
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError,
            cast("type[Exception]", isal_zlib.error)) as error:  # the stub declares isal's error an instance
        raise MissingInputError(f"{run.data}: cannot be read as a 4-D NIfTI image ({error})") from error
    return data, smoothed


def _mask_block(run: Run, volumes: np.ndarray, voxels: np.ndarray, proxy, rows: np.ndarray, start: int) -> None:
    """Copy the in-mask voxels of a block of volumes into ``rows``, scaled; refuse NaN or infinite values."""
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


def _smooth_block(volumes: np.ndarray, proxy, affine: np.ndarray, mask: np.ndarray, fwhm: float) -> np.ndarray:
    """A block of volumes (file order, shape (n, z, y, x)) smoothed, then masked: shape (n, n_voxels)."""
    import nibabel as nib
    from nilearn.image import smooth_img

    image = volumes.T * np.float32(proxy.slope) + np.float32(proxy.inter)
    image = smooth_img(nib.Nifti1Image(image.astype(np.float32), affine), fwhm)
    return image.get_fdata(dtype=np.float32)[mask].T


class ReadCancelled(Exception):
    """A background read (:class:`BoldRead`) was cancelled before its end."""


class BoldRead:
    """A BOLD run read by :func:`read_bold` in a background thread.

    Decompressing a run takes about as long as the imports and checks that
    come before its analysis; started first, the read overlaps them on a
    second core. :meth:`result` waits for the data (and raises the read's
    error); :meth:`cancel` stops the read after its current block.
    """

    def __init__(self, run: Run, mask: np.ndarray, *, smoothing_fwhm: float | None = None) -> None:
        self.run = run
        self.smoothing_fwhm = smoothing_fwhm
        self._stop = threading.Event()
        self._outcome: tuple[np.ndarray, np.ndarray | None] | BaseException | None = None
        self._thread = threading.Thread(target=self._read, args=(mask,), name=f"read {run.name}", daemon=True)
        self._thread.start()

    def _read(self, mask: np.ndarray) -> None:
        try:
            self._outcome = read_bold(self.run, mask, smoothing_fwhm=self.smoothing_fwhm, stop=self._stop)
        except BaseException as error:  # noqa: BLE001 - handed to the thread that waits for the result
            self._outcome = error

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The data and smoothed data, as :func:`read_bold` returns them (waits for the read)."""
        self._thread.join()
        outcome, self._outcome = self._outcome, None
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None, "a read that ended without error has a result"
        return outcome

    def cancel(self) -> None:
        """Stop the read (after its current block) and drop what it read; :meth:`result` then raises."""
        self._stop.set()
        self._thread.join()
        self._outcome = ReadCancelled(self.run.data)
