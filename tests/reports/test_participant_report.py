"""The participant reports' drawing: colours, PNGs, slice centres, the FD and DVARS plots, notes on empty parts.

Oracles: matplotlib's own ``RdBu_r`` colour map, Pillow's PNG decoder, numpy's
mean of a planted cluster's voxel coordinates, and the chart's own tick
positions for the threshold line.
"""

from __future__ import annotations

import html
import io
import re
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from matplotlib import colormaps
from PIL import Image

from bidsapp.cli import main
from bidsapp.reports import fmriprep as report
from bidsapp.reports.html import colour_bytes, line_chart, png_bytes


def test_colours_are_matplotlibs_rdbu_r():
    values = np.r_[np.linspace(-3.0, 3.0, 20001), np.nan, np.inf, -np.inf, 2.0, -2.0]
    expected = colormaps["RdBu_r"]((values / 2.0 + 1) / 2, bytes=True)
    expected[np.isnan(values)] = 255
    np.testing.assert_array_equal(colour_bytes(values, 2.0), expected)


def test_png_decodes_to_the_array():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(rgba))).convert("RGBA"))
    np.testing.assert_array_equal(decoded, rgba)


def _planted() -> tuple[np.ndarray, np.ndarray]:
    """A map with a 5x4x3 block of z=4 (the largest cluster), one voxel of z=12 and a 2-voxel negative cluster."""
    stat = np.zeros((30, 30, 30))
    stat[4:9, 20:24, 10:13] = 4.0
    stat[25, 3, 25] = 12.0
    stat[15, 15, 2:4] = -5.0
    blob = np.argwhere(stat == 4.0)
    return stat, blob.mean(axis=0)


def test_slices_go_through_the_largest_cluster_not_the_peak():
    stat, blob_centre = _planted()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    centre = report.slice_centre(stat, affine, 3.09)
    np.testing.assert_array_equal(centre, np.round(blob_centre))
    assert tuple(centre) != (25, 3, 25)
    # a negative cluster larger than the positive ones is chosen
    stat[0:6, 0:6, 0:6] = -6.0
    np.testing.assert_array_equal(report.slice_centre(stat, affine, 3.09), np.round(np.argwhere(stat == -6).mean(0)))
    # nothing beyond the threshold: the voxel of largest |value|; coordinates: the voxel nearest them
    weak = np.zeros((10, 10, 10))
    weak[2, 7, 3] = 2.0
    np.testing.assert_array_equal(report.slice_centre(weak, affine, 3.09), (2, 7, 3))
    np.testing.assert_array_equal(report.slice_centre(stat, affine, 3.09, (10.2, 3.9, 50.0)), (5, 2, 25))


def test_a_map_without_survivors_says_so(tmp_path):
    stat, _ = _planted()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    strong, weak = tmp_path / "strong.nii.gz", tmp_path / "weak.nii.gz"
    nib.save(nib.Nifti1Image(stat.astype(np.float32), affine), strong)
    nib.save(nib.Nifti1Image((stat / 10).astype(np.float32), affine), weak)
    background = nib.Nifti1Image(np.ones((30, 30, 30), np.float32), affine)
    body = report.maps_html([(strong, "strong", 3.09, None), (weak, "weak", 3.09, None)], background, "z")
    assert "strong</div>" in body and "weak (no value beyond the threshold)</div>" in body


def _level_position(chart: str, level: float, series: np.ndarray) -> None:
    """The dashed line sits where the chart's top and bottom tick lines (the data's extremes) put ``level``."""
    ys = sorted(float(y) for y in re.findall(r"<line x1='\d+' x2='\d+' y1='([\d.]+)' y2='[\d.]+' stroke='#ddd'/>",
                                             chart))
    y_high, y_low = ys[0], ys[-1]
    low, high = min(np.nanmin(series), level), max(np.nanmax(series), level)
    y_level = float(re.search(r"y1='([\d.]+)' y2='[\d.]+' stroke='#d62728' stroke-dasharray", chart).group(1))
    assert y_level == pytest.approx(y_low + (y_high - y_low) * (level - low) / (high - low), abs=0.1)


def _run(confounds: pd.DataFrame, **fields) -> report.RunSection:
    return report.RunSection("sub-01_task-rest", confounds, confounds[["trans_x"]], [3], **fields)


def _confounds(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    fd = np.abs(rng.normal(0.2, 0.1, n))
    fd[3] = 1.5
    return pd.DataFrame({"framewise_displacement": fd, "trans_x": rng.normal(size=n),
                         "std_dvars": np.r_[np.nan, 1 + np.abs(rng.normal(0, 0.3, n - 1))]})


def test_fd_threshold_line_is_labelled_with_its_value():
    confounds = _confounds()
    page = report.render("01", "simple", [_run(confounds, fd_threshold_mm=0.3, std_dvars_threshold=1.5)], [], "0")
    assert "0.3 mm: scrubbing threshold" in page and "1.5: scrubbing threshold" in page
    assert html.escape("standardised DVARS of sub-01_task-rest, from the confounds table's std_dvars column") in page
    for chart, level, column in zip(re.findall(r"<svg.*?</svg>", page), (0.3, 1.5),
                                    ("framewise_displacement", "std_dvars"), strict=True):
        _level_position(chart, level, confounds[column].to_numpy())
    # without scrubbing: the QC table's high-motion threshold, said to be one
    page = report.render("01", "simple", [_run(confounds)], [], "0")
    assert "0.5 mm: high-motion threshold (QC table; not scrubbed)" in page
    _level_position(re.findall(r"<svg.*?</svg>", page)[0], 0.5, confounds["framewise_displacement"].to_numpy())


def test_notes_say_why_parts_are_missing(tmp_path):
    confounds = _confounds().drop(columns="std_dvars")
    run = _run(confounds, correlation=None, seed_maps=[])
    task = report.TaskSection("sub-01_task-motor", {}, {})
    page = report.render("01", "simple", [run], [task], "0")
    for note in ("No DVARS plot for sub-01_task-rest: its confounds table has no std_dvars or dvars column "
                 "(fMRIPrep 1.0 tables may lack it).", "Carpet plot not redrawn",
                 "No connectivity matrix: correlation is not among --connectivity.",
                 "No seed maps: no --seeds given.", "No contrast maps: the task has no contrast"):
        assert html.escape(note) in page, note
    run = _run(confounds.assign(dvars=confounds["trans_x"].abs()), correlation=tmp_path / "absent.tsv",
               seed_maps=[("PCC", (0, 0, 0), tmp_path / "absent.nii.gz")])
    page = report.render("01", "simple", [run], [], "0")
    assert html.escape("DVARS of sub-01_task-rest, from the confounds table's dvars column") in page
    assert "No connectivity matrix: absent.tsv was not written." in page
    assert "No seed maps: their files were not written." in page


def test_line_chart_without_level_draws_no_threshold():
    chart = line_chart({"a": np.arange(5.0)}, "t", "x", "y")
    assert "stroke-dasharray" not in chart


@pytest.mark.slow
def test_fmriprep_1_0_table_without_dvars(fmriprep, tmp_path):
    """An fMRIPrep 1.0 confounds table without its DVARS columns: the run succeeds, the caption says why."""
    bids = fmriprep("1.0")
    tables = sorted((bids / "derivatives" / "fmriprep" / "sub-01" / "func").glob("*task-rest*confounds*.tsv"))
    assert tables
    for table in tables:
        frame = pd.read_csv(table, sep="\t")
        frame.drop(columns=["stdDVARS", "non-stdDVARS", "vx-wisestdDVARS"]).to_csv(table, sep="\t", index=False)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([str(bids), str(out), "participant", "--skip-bids-validation", "-w", str(tmp_path / "work"),
                     "--participant-label", "01", "--task", "rest"]) == 0
    page = (out / "sub-01.html").read_text()
    assert "its confounds table has no std_dvars or dvars column (fMRIPrep 1.0 tables may lack it)" in page
    assert page.count("data:image/png;base64") == 3  # carpet, regressor correlations, connectivity
    assert "0.5 mm: high-motion threshold" in page
