"""Reading BOLD runs: ISA-L's igzip in a thread of its own, against nibabel reading the same file."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bidsapp.errors import MissingInputError
from bidsapp.inputs.readers import BoldRead, ReadCancelled, read_bold
from bidsapp.inputs.runs import Run

SHAPE = (9, 11, 7, 45)


def _run(path: Path) -> Run:
    return Run(entities={"sub": "01", "task": "rest"}, data=path, kind="bold", repetition_time=2.0,
               n_volumes=SHAPE[3], shape=SHAPE[:3])


def _planted(tmp_path: Path, name: str, *, scaled: bool) -> tuple[Path, np.ndarray]:
    """A 4-D image with a known sinusoid per voxel, int16 with slope and intercept, or float32."""
    rng = np.random.default_rng(7)
    t = np.arange(SHAPE[3])
    values = 500 + 40 * np.sin(2 * np.pi * t / 15) * rng.uniform(0.5, 1.5, SHAPE[:3])[..., None]
    values += rng.normal(0, 5, SHAPE)
    if scaled:
        image = nib.Nifti1Image(np.round(values).astype(np.int16), np.diag([3.0, 3.0, 3.0, 1.0]))
        image.header.set_slope_inter(0.5, 10.0)
    else:
        image = nib.Nifti1Image(values.astype(np.float32), np.diag([3.0, 3.0, 3.0, 1.0]))
    path = tmp_path / name
    image.to_filename(path)
    mask = np.zeros(SHAPE[:3], bool)
    mask[1:-1, 2:-2, 1:-1] = True
    mask[4, 5, 3] = False
    return path, mask


@pytest.mark.parametrize(("name", "scaled"), [("bold.nii.gz", True), ("bold.nii.gz", False), ("bold.nii", True)])
def test_read_equals_nibabel(tmp_path, name, scaled):
    path, mask = _planted(tmp_path, name, scaled=scaled)
    data, smoothed = read_bold(_run(path), mask, block=7)  # 7 does not divide the 45 volumes
    expected = nib.load(path).get_fdata(dtype=np.float32)[mask].T
    assert smoothed is None
    assert data.dtype == np.float32 and data.shape == (SHAPE[3], int(mask.sum()))
    np.testing.assert_allclose(data, expected, rtol=1e-6)
    if scaled:  # slope 0.5 and intercept 10 applied: values are those of the int16 data
        raw = np.asarray(nib.load(path).dataobj.get_unscaled())[mask].T
        np.testing.assert_array_equal(data, raw.astype(np.float32) * np.float32(0.5) + np.float32(10))


def test_background_read_equals_the_direct_read(tmp_path):
    path, mask = _planted(tmp_path, "bold.nii.gz", scaled=False)
    read = BoldRead(_run(path), mask, smoothing_fwhm=6.0)
    data, smoothed = read.result()
    direct, direct_smoothed = read_bold(_run(path), mask, smoothing_fwhm=6.0)
    np.testing.assert_array_equal(data, direct)
    assert smoothed is not None and direct_smoothed is not None
    np.testing.assert_array_equal(smoothed, direct_smoothed)
    assert np.abs(smoothed - data).max() > 1  # smoothing changed the data


def test_cancelled_read_stops_and_says_so(tmp_path):
    path, mask = _planted(tmp_path, "bold.nii.gz", scaled=False)
    run = _run(path)
    read = BoldRead(run, mask)
    read.cancel()
    assert f"read {run.name}" not in [thread.name for thread in threading.enumerate()]
    with pytest.raises(ReadCancelled):
        read.result()


@pytest.mark.parametrize("damage", ["truncated", "corrupted", "not gzip"])
def test_damaged_file_is_named(tmp_path, damage):
    path, mask = _planted(tmp_path, "bold.nii.gz", scaled=False)
    content = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(content[:len(content) // 2])
    elif damage == "corrupted":  # the deflate stream intact in length, its CRC no longer matches
        raw = bytearray(gzip.decompress(content))
        raw[len(raw) // 2:len(raw) // 2 + 64] = bytes(64)
        damaged = bytearray(gzip.compress(bytes(raw), compresslevel=1))
        damaged[-8:-4] = content[-8:-4]
        path.write_bytes(bytes(damaged))
    else:
        header = gzip.decompress(content)
        path.write_bytes(header)  # an uncompressed file named .nii.gz
    with pytest.raises(MissingInputError) as error:
        read_bold(_run(path), mask)
    assert str(path) in str(error.value)
    assert "cannot be read as a 4-D NIfTI image" in str(error.value)
