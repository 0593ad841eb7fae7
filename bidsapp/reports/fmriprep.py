"""The participant HTML report for fMRIPrep data.

Per run: framewise displacement with the censored volumes marked and the FD
threshold drawn, DVARS, a carpet plot of the raw data (Power 2017), the
correlations among the nuisance regressors, and the connectivity matrix and
seed maps; per task: the design matrices and each contrast's z map, sliced
through the largest cluster beyond the threshold. Whatever is missing is said
in a note, with the reason.

No matplotlib axes are laid out (that took seconds per participant; the
drawing functions are :mod:`bidsapp.reports.html`'s): the framewise displacement is an inline SVG
chart, and the carpet plot, matrices, designs and maps are PNGs of one pixel
per value (colour-mapped directly), scaled up by the browser, with their labels
in HTML beside them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from bidsapp.reports.html import (
    colour_bytes,
    colour_scale,
    line_chart,
    matrix_html,
    note_html,
    page,
    png_html,
)
from bidsapp.steps.qc import FD_THRESHOLD_MM

#: |z| shown on contrast maps (p < 0.001 one-sided), and |r| on seed maps.
Z_THRESHOLD = 3.09
R_THRESHOLD = 0.3
#: Carpet plot: rows of voxels drawn at most, screen size in pixels, and the z-score shown black/white.
CARPET_ROWS = 600
CARPET_SIZE = (720, 300)
CARPET_LIMIT = 2.0
#: Image pixels per regressor in the regressor correlations; screen size of a design matrix's columns and height.
REGRESSOR_PIXELS = 8
#: Image pixels across a connectivity matrix at least (one per parcel for atlases of more parcels).
MATRIX_PIXELS = 240
DESIGN_COLUMN_PIXELS = 10
DESIGN_HEIGHT = 300
#: Screen pixels per voxel row of a map's slices.
MAP_ROW_HEIGHT = 220
#: DVARS columns of the (snake_case) confounds table, the first present is drawn.
DVARS_COLUMNS = {"std_dvars": "standardised DVARS", "dvars": "DVARS"}
_WHITE, _RED, _GREEN = (255, 255, 255, 255), (214, 39, 40, 255), (44, 160, 44, 255)


@dataclass
class RunSection:
    """What the report shows about one run.

    Attributes
    ----------
    name : str
    confounds : DataFrame
        The (snake_case) fMRIPrep confounds table.
    regressors : DataFrame
        The regressors the strategy selected.
    censored : list of int
    fd_threshold_mm : float, optional
        Scrubbing threshold, drawn on the FD plot (without scrubbing, the
        high-motion threshold of the QC table is drawn).
    carpet : ndarray of shape (n_volumes, n_voxels), optional
        A sample of raw voxel series; None when the run was not read again.
    correlation : Path, optional
        The Pearson correlation ``relmat`` TSV.
    networks : sequence of str, optional
        Network of each parcel (orders the matrix).
    seed_maps : list of (name, coordinates, Path)
    background : nibabel image
        Shown under the maps: the run's mean image, or its brain mask.
    std_dvars_threshold : float, optional
        Scrubbing threshold of the standardised DVARS, drawn on its plot.
    """

    name: str
    confounds: pd.DataFrame
    regressors: pd.DataFrame
    censored: list[int]
    fd_threshold_mm: float | None = None
    carpet: np.ndarray | None = None
    correlation: Path | None = None
    networks: Sequence[str] | None = None
    seed_maps: list = field(default_factory=list)
    background: object = None
    std_dvars_threshold: float | None = None


@dataclass
class TaskSection:
    """What the report shows about one task: design matrices by run, z maps by contrast name, a background."""

    name: str
    designs: dict[str, pd.DataFrame]
    z_maps: dict[str, Path]
    background: object = None


def render(participant: str, strategy_text: str, runs: Sequence[RunSection], tasks: Sequence[TaskSection],
           version: str) -> str:
    """The report page of one participant."""
    sections = [("Denoising", f"<p>{html.escape(strategy_text)}</p>")]
    for run in runs:
        parts = [_figure(_fd_html(run), f"Framewise displacement of {run.name}"), _dvars_figure(run)]
        parts.append(note_html("Carpet plot not redrawn: the run's outputs were complete.") if run.carpet is None
                     else _figure(carpet_html(run.carpet, run.censored), f"Carpet plot of {run.name}"))
        parts.append(_figure(_confound_html(run), f"Correlations of the nuisance regressors of {run.name}"))
        if run.correlation is None:
            parts.append(note_html("No connectivity matrix: correlation is not among --connectivity."))
        elif not run.correlation.is_file():
            parts.append(note_html(f"No connectivity matrix: {run.correlation.name} was not written."))
        else:
            parts.append(_figure(_matrix_html(run), f"Connectivity matrix of {run.name}"))
        maps = [(path, f"{name}: seed-to-voxel r (|r| > {R_THRESHOLD})", R_THRESHOLD, coordinates)
                for name, coordinates, path in run.seed_maps if path.is_file()]
        if maps:
            parts.append(_figure(maps_html(maps, run.background, "r"), f"Seed maps of {run.name}"))
        else:
            parts.append(note_html("No seed maps: no --seeds given." if not run.seed_maps
                               else "No seed maps: their files were not written."))
        sections.append((run.name, "".join(parts)))
    for task in tasks:
        parts = [_figure(_design_html(task.designs), f"Design matrices of {task.name}")]
        maps = [(path, f"{name}: z (|z| > {Z_THRESHOLD})", Z_THRESHOLD, None) for name, path in task.z_maps.items()
                if path.is_file()]
        if maps:
            parts.append(_figure(maps_html(maps, task.background, "z"), f"Contrast z maps of {task.name}"))
        else:
            parts.append(note_html("No contrast maps: the task has no contrast (--contrast or the model file)."
                               if not task.z_maps else "No contrast maps: their files were not written."))
        sections.append((task.name, "".join(parts)))
    return page(f"sub-{participant}", f"bidsapp {version} participant report", sections)


def _figure(body: str, caption: str) -> str:
    return f"<figure>{body}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _grey(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """RGBA bytes of ``values`` on a grey scale from ``low`` (black) to ``high`` (white)."""
    level = np.clip((np.asarray(values, dtype=float) - low) / (high - low or 1.0), 0.0, 1.0)
    grey = np.rint(np.nan_to_num(level) * 255).astype(np.uint8)
    return np.stack([grey, grey, grey, np.full_like(grey, 255)], axis=-1)


def _fd_html(run: RunSection) -> str:
    """Framewise displacement, censored volumes in red, the threshold a dashed line labelled with its value.

    The threshold is the strategy's scrubbing threshold, else the high-motion
    threshold of the QC table (:data:`~bidsapp.steps.qc.FD_THRESHOLD_MM`).
    """
    title = f"Framewise displacement; {len(run.censored)} volumes censored (red)"
    fd = run.confounds.get("framewise_displacement")
    if fd is None:
        fd, title = pd.Series(np.zeros(len(run.confounds))), f"{title}; no framewise_displacement column"
    if run.fd_threshold_mm is not None:
        level, label = run.fd_threshold_mm, f"{run.fd_threshold_mm:g} mm: scrubbing threshold"
    else:
        level, label = FD_THRESHOLD_MM, f"{FD_THRESHOLD_MM:g} mm: high-motion threshold (QC table; not scrubbed)"
    return line_chart({"FD": fd.to_numpy(float)}, title, "volume", "FD (mm)", shaded=run.censored,
                      level=level, level_label=label)


def _dvars_figure(run: RunSection) -> str:
    """DVARS of the first :data:`DVARS_COLUMNS` column present, else a caption saying the table has none."""
    column = next((name for name in DVARS_COLUMNS if name in run.confounds), None)
    if column is None:
        return _figure("", f"No DVARS plot for {run.name}: its confounds table has no "
                       f"{' or '.join(DVARS_COLUMNS)} column (fMRIPrep 1.0 tables may lack it).")
    threshold = run.std_dvars_threshold if column == "std_dvars" else None
    chart = line_chart({column: run.confounds[column].to_numpy(float)}, f"{DVARS_COLUMNS[column]} ({column})",
                       "volume", DVARS_COLUMNS[column], shaded=run.censored, level=threshold,
                       level_label=f"{threshold:g}: scrubbing threshold" if threshold is not None else "")
    return _figure(chart, f"{DVARS_COLUMNS[column]} of {run.name}, from the confounds table's {column} column")


def carpet_html(carpet: np.ndarray, censored: Sequence[int]) -> str:
    """Voxel series (rows, z-scored, at most :data:`CARPET_ROWS`) over volumes, censored volumes tinted red."""
    data = carpet[:, ::max(1, -(-carpet.shape[1] // CARPET_ROWS))].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        data = (data - data.mean(axis=0)) / data.std(axis=0)
    rgba = _grey(np.nan_to_num(data.T), -CARPET_LIMIT, CARPET_LIMIT)
    rgba[:, list(censored)] = (rgba[:, list(censored)] // 2 + np.array(_RED, np.uint8) // 2).astype(np.uint8)
    width, height = CARPET_SIZE
    return (f"<p>Carpet plot of the preprocessed data (z-scored voxels, a sample of {data.shape[1]}; "
            f"black {-CARPET_LIMIT:g} to white {CARPET_LIMIT:g})</p>"
            + png_html(rgba, "carpet plot", f"width:{width}px;height:{height}px;image-rendering:pixelated"))


def _confound_html(run: RunSection) -> str:
    table = run.regressors if run.regressors.shape[1] else run.confounds.filter(regex=r"^(trans|rot)_[xyz]$")
    if not table.shape[1]:
        return "<p class='note'>No nuisance regressors.</p>"
    names = np.asarray([str(c) for c in table.columns])
    return ("<p>Correlations of the nuisance regressors (columns in the order of the rows)</p>"
            f"{matrix_html(table.corr().to_numpy(), names, 'regressor correlations', REGRESSOR_PIXELS)}"
            f"{colour_scale(1.0, 'r')}")


def _matrix_html(run: RunSection) -> str:
    table = pd.read_csv(run.correlation, sep="\t", na_values=["n/a"], index_col=0)
    networks = np.asarray(run.networks if run.networks else [""] * len(table))
    order = np.argsort(networks, kind="stable")
    matrix = table.to_numpy(float)[np.ix_(order, order)]
    np.fill_diagonal(matrix, np.nan)
    title = f"Connectivity ({len(table)} parcels{', ordered by network' if run.networks else ''})"
    cell = max(1, MATRIX_PIXELS // len(table))  # small atlases drawn as large as big ones
    return (f"<p>{html.escape(title)}</p>{matrix_html(matrix, networks[order], 'connectivity matrix', cell)}"
            f"{colour_scale(1.0, 'Pearson r')}")


def _design_html(designs: dict[str, pd.DataFrame]) -> str:
    """Each run's design matrix, columns scaled to unit norm (as nilearn's ``plot_design_matrix``), names above."""
    panels = []
    for name, design in designs.items():
        values = design.to_numpy(float)
        values = values / np.maximum(1.0e-12, np.sqrt((values ** 2).sum(axis=0)))
        limit = float(np.abs(values).max(initial=0.0)) or 1.0
        width = DESIGN_COLUMN_PIXELS * values.shape[1]
        names = "".join(f"<div style='width:{DESIGN_COLUMN_PIXELS}px'>{html.escape(str(c))}</div>"
                        for c in design.columns)
        panels.append(f"<div class=panel><p>{html.escape(name)}</p><div class=columns>{names}</div>"
                      + png_html(_grey(values, -limit, limit), f"design matrix of {name}",
                                 f"width:{width}px;height:{DESIGN_HEIGHT}px;image-rendering:pixelated") + "</div>")
    return f"<div class=panels>{''.join(panels)}</div>"


def maps_html(maps: list, background, label: str) -> str:
    """Statistical maps, one row of three orthogonal slices each, as one image with the titles beside the rows.

    ``maps`` holds (path, title, threshold, coordinates in mm or None): the
    slices go through the coordinates (marked green), else through the centre
    of the largest cluster beyond the threshold (:func:`slice_centre`); values
    beyond the threshold are coloured on a symmetric scale to the largest
    |value| of all maps, over the grey background (white outside it). A map
    with no value beyond its threshold says so in its title.
    """
    import nibabel as nib

    under = np.asarray(nib.as_closest_canonical(background).dataobj, dtype=float)
    inside = under[under != 0]
    grey = tuple(np.percentile(inside, [2, 98])) if inside.size else (0.0, 1.0)
    images = [nib.as_closest_canonical(nib.load(path)) for path, _, _, _ in maps]
    values = [np.nan_to_num(np.asarray(img.dataobj, dtype=float)) for img in images]
    limit = max(float(np.abs(v).max(initial=0.0)) for v in values) or 1.0
    rgba = np.concatenate([_ortho(stat, under, grey, slice_centre(stat, img.affine, threshold, coordinates),
                                  threshold, limit, coordinates is not None)
                           for stat, img, (_, _, threshold, coordinates) in zip(values, images, maps, strict=True)])
    height = MAP_ROW_HEIGHT * len(maps)
    width = height * rgba.shape[1] / rgba.shape[0]
    titles = "".join(f"<div style='flex:1'>{html.escape(title)}"
                     f"{'' if (np.abs(stat) > threshold).any() else ' (no value beyond the threshold)'}</div>"
                     for stat, (_, title, threshold, _) in zip(values, maps, strict=True))
    return (f"<div class=matrix><div class=rows style='height:{height}px'>{titles}</div>"
            f"{png_html(rgba, 'statistical maps', f'width:{width:.0f}px')}</div>{colour_scale(limit, label)}")


def slice_centre(stat: np.ndarray, affine: np.ndarray, threshold: float,
                 coordinates: Sequence[float] | None = None) -> np.ndarray:
    """The voxel the slices of a map go through, inside the grid.

    The voxel nearest ``coordinates`` (mm) when given; else the centre of mass
    of the largest cluster of values beyond ``threshold`` (face-connected
    voxels of one sign, as :func:`scipy.ndimage.label`), rounded; else, when no
    value is beyond it, the voxel of largest |value|.
    """
    if coordinates is not None:
        centre = np.round(np.linalg.solve(affine, np.r_[coordinates, 1.0])[:3]).astype(int)
        return np.clip(centre, 0, np.array(stat.shape) - 1)
    largest, size = None, 0
    for beyond in (stat > threshold, stat < -threshold):
        labels, count = ndimage.label(beyond)
        if count:
            sizes = np.bincount(labels.ravel())[1:]
            if sizes.max() > size:
                largest, size = labels == np.argmax(sizes) + 1, int(sizes.max())
    if largest is None:
        return np.asarray(np.unravel_index(np.argmax(np.abs(stat)), stat.shape))
    return np.round(ndimage.center_of_mass(largest)).astype(int)


def _ortho(stat: np.ndarray, background: np.ndarray, grey: tuple[float, float], centre: np.ndarray,
           threshold: float, limit: float, marker: bool) -> np.ndarray:
    """Sagittal, coronal and axial slices of RAS arrays through ``centre``, side by side, as RGBA bytes."""
    i, j, k = centre
    panels = []
    for index, (row, column) in (((i, slice(None), slice(None)), (k, j)), ((slice(None), j, slice(None)), (k, i)),
                                 ((slice(None), slice(None), k), (j, i))):
        under, values = background[index].T[::-1], stat[index].T[::-1]  # rows from the top, columns rightward
        rgba = _grey(under, *grey)
        rgba[under == 0] = _WHITE
        shown = np.abs(values) > threshold
        rgba[shown] = colour_bytes(values[shown], limit)
        if marker:
            top = len(under) - 1 - row
            rgba[max(top - 1, 0):top + 2, max(column - 1, 0):column + 2] = _GREEN
        panels.append(rgba)
    height = max(len(panel) for panel in panels)
    return np.concatenate([np.pad(panel, ((height - len(panel), 0), (0, 2), (0, 0)), constant_values=255)
                           for panel in panels], axis=1)
