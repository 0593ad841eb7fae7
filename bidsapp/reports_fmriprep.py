"""The participant HTML report for fMRIPrep data.

Per run: framewise displacement with the censored volumes marked, the
correlations among the nuisance regressors, a carpet plot of the raw data
(Power 2017), and the connectivity matrix and seed maps; per task: the design
matrices and each contrast's z map. Figures are drawn with matplotlib's Agg
backend and nilearn's plotting, and embedded with :func:`bidsapp.report.figure`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp.report import figure, page

#: |z| shown on contrast maps (p < 0.001 one-sided), and |r| on seed maps.
Z_THRESHOLD = 3.09
R_THRESHOLD = 0.3


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
        Scrubbing threshold, drawn on the FD plot.
    carpet : ndarray of shape (n_volumes, n_voxels), optional
        A sample of raw voxel series; None when the run was not read again.
    correlation : Path, optional
        The Pearson correlation ``relmat`` TSV.
    networks : sequence of str, optional
        Network of each parcel (orders the matrix).
    seed_maps : list of (name, coordinates, Path)
    background : nibabel image
        Shown under the maps: the run's mean image, or its brain mask.
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
    import matplotlib

    matplotlib.use("Agg")
    sections = [("Denoising", f"<p>{html.escape(strategy_text)}</p>")]
    for run in runs:
        parts = [figure(_motion_figure(run), f"Framewise displacement and carpet plot of {run.name}")]
        if run.carpet is None:
            parts.append("<p class='note'>Carpet plot not redrawn: the run's outputs were complete.</p>")
        parts.append(figure(_confound_figure(run), f"Correlations of the nuisance regressors of {run.name}"))
        if run.correlation is not None and run.correlation.is_file():
            parts.append(figure(_matrix_figure(run), f"Connectivity matrix of {run.name}"))
        maps = [(path, f"{name}: seed-to-voxel r (|r| > {R_THRESHOLD})", R_THRESHOLD, coordinates)
                for name, coordinates, path in run.seed_maps if path.is_file()]
        if maps:
            parts.append(figure(_maps_figure(maps, run.background), f"Seed maps of {run.name}"))
        sections.append((run.name, "".join(parts)))
    for task in tasks:
        parts = [figure(_design_figure(task.designs), f"Design matrices of {task.name}")]
        maps = [(path, f"{name}: z (|z| > {Z_THRESHOLD})", Z_THRESHOLD, None) for name, path in task.z_maps.items()
                if path.is_file()]
        if maps:
            parts.append(figure(_maps_figure(maps, task.background), f"Contrast z maps of {task.name}"))
        sections.append((task.name, "".join(parts)))
    return page(f"sub-{participant}", f"bidsapp {version} participant report", sections)


def _motion_figure(run: RunSection):
    """Framewise displacement over the carpet plot (z-scored raw voxel series), censored volumes in red."""
    import matplotlib.pyplot as plt

    rows = 2 if run.carpet is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.2 * rows), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [1, 2][:rows]})
    ax = axes[0, 0]
    fd = run.confounds.get("framewise_displacement")
    if fd is not None:
        ax.plot(fd.to_numpy(float), lw=1, color="k")
    for volume in run.censored:
        ax.axvspan(volume - 0.5, volume + 0.5, color="tab:red", alpha=0.3, lw=0)
    if run.fd_threshold_mm is not None:
        ax.axhline(run.fd_threshold_mm, color="tab:red", ls="--", lw=1)
    ax.set(ylabel="FD (mm)", title=f"Framewise displacement; {len(run.censored)} volumes censored (red)")
    if run.carpet is not None:
        data = run.carpet.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            data = (data - data.mean(axis=0)) / data.std(axis=0)
        carpet = axes[1, 0]
        carpet.imshow(np.nan_to_num(data.T), aspect="auto", cmap="gray", vmin=-2, vmax=2, interpolation="nearest",
                      extent=(-0.5, data.shape[0] - 0.5, data.shape[1], 0))
        for volume in run.censored:
            carpet.axvline(volume, color="tab:red", alpha=0.5, lw=1)
        carpet.set(ylabel="voxels (sample)", title="Carpet plot of the preprocessed data (z-scored voxels)")
    axes[-1, 0].set_xlabel("volume")
    return fig


def _confound_figure(run: RunSection):
    import matplotlib.pyplot as plt

    table = run.regressors if run.regressors.shape[1] else run.confounds.filter(regex=r"^(trans|rot)_[xyz]$")
    fig, ax = plt.subplots(figsize=(6, 5))
    corr = table.corr().to_numpy() if table.shape[1] else np.zeros((0, 0))
    image = ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
    if table.shape[1] <= 40:
        ax.set_xticks(range(table.shape[1]), table.columns, rotation=90, fontsize=6)
        ax.set_yticks(range(table.shape[1]), table.columns, fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.7, label="r")
    ax.set_title("Correlations of the nuisance regressors")
    return fig


def _matrix_figure(run: RunSection):
    import matplotlib.pyplot as plt

    table = pd.read_csv(run.correlation, sep="\t", na_values=["n/a"], index_col=0)
    order = np.argsort(np.asarray(run.networks), kind="stable") if run.networks else np.arange(len(table))
    matrix = table.to_numpy(float)[np.ix_(order, order)]
    np.fill_diagonal(matrix, np.nan)
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r", interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.7, label="Pearson r")
    ax.set_title(f"Connectivity ({len(table)} parcels{', ordered by network' if run.networks else ''})")
    return fig


def _design_figure(designs: dict[str, pd.DataFrame]):
    import matplotlib.pyplot as plt
    from nilearn.plotting import plot_design_matrix

    fig, axes = plt.subplots(1, len(designs), figsize=(4.5 * len(designs), 4), squeeze=False)
    for ax, (name, design) in zip(axes[0], designs.items()):
        plot_design_matrix(design, axes=ax)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=5)
    return fig


def _maps_figure(maps: list, background):
    """Statistical maps, one row each: (path, title, threshold, coordinates of a marker or None)."""
    import matplotlib.pyplot as plt
    from nilearn.plotting import plot_stat_map

    fig, axes = plt.subplots(len(maps), 1, figsize=(9, 2.6 * len(maps)), squeeze=False)
    for ax, (path, title, threshold, coordinates) in zip(axes[:, 0], maps):
        display = plot_stat_map(str(path), bg_img=background, threshold=threshold, display_mode="ortho",
                                cut_coords=coordinates, title=title, axes=ax, figure=fig, draw_cross=False,
                                black_bg=False)
        if coordinates is not None:
            display.add_markers([coordinates], marker_color="g", marker_size=60)
    return fig
