"""Figures and sections of the group report, one section per group analysis."""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp.config import GroupAnalysis
from bidsapp.group.results import FeatureValues, GroupResult, SkippedAnalysis, VoxelContrast
from bidsapp.inputs.runs import Inventory
from bidsapp.reports.html import figure, list_html, page, table_html
from bidsapp.stats.design import GroupDesign

_TOP = 10
#: Design rows labelled in the design figure (all rows are in the design table below it).
_MAX_ROW_LABELS = 60


def design_figure(design: GroupDesign, rows: Sequence[str] = ()) -> str:
    """The design matrix (rows: participants' maps, labelled by ``rows`` when given) and contrast weights as images.

    Analyses of the same participants usually share their design: each distinct one is drawn once.
    """
    matrix = design.matrix.to_numpy(float)
    weights = np.vstack([np.atleast_2d(c) for c in design.contrasts.values()]).astype(float)
    names = tuple(name for name, c in design.contrasts.items() for _ in range(np.atleast_2d(c).shape[0]))
    return _design_image(matrix.tobytes(), matrix.shape, tuple(map(str, design.matrix.columns)), tuple(rows),
                         weights.tobytes(), weights.shape, names)


@lru_cache(maxsize=16)
def _design_image(matrix_bytes: bytes, shape: tuple[int, ...], columns: tuple[str, ...], rows: tuple[str, ...],
                  weights_bytes: bytes, weights_shape: tuple[int, ...], names: tuple[str, ...]) -> str:
    """:func:`design_figure`'s drawing, from hashable arguments (the arrays as bytes and shapes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.frombuffer(matrix_bytes).reshape(shape)
    weights = np.frombuffer(weights_bytes).reshape(weights_shape)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), gridspec_kw={"width_ratios": [2, 3]})
    left.imshow(matrix, aspect="auto", cmap="gray", interpolation="nearest")
    left.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    if rows and len(rows) <= _MAX_ROW_LABELS:
        left.set_yticks(range(len(rows)), rows, fontsize=6)
    else:
        left.set_ylabel("maps")
    left.set_title("design matrix", fontsize=9)
    right.imshow(weights, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    right.set_yticks(range(len(names)), names, fontsize=7)
    right.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    right.set_title("contrasts", fontsize=9)
    return figure(fig, "design matrix and contrasts")


def design_section(analysis: GroupResult) -> str:
    """N per cell, the design matrix (figure, and table with participant IDs as row labels), contrasts by name."""
    design = analysis.design
    cells = ", ".join(f"{cell}: {n}" for cell, n in analysis.cells.items())
    parts = [f"<p>{analysis.n} participant-level maps ({html.escape(design.test)} design); N per cell: "
             f"{html.escape(cells or str(analysis.n))}.</p>", design_figure(design, analysis.rows)]
    matrix = design.matrix.copy()
    if len(analysis.rows) == len(matrix):
        matrix.index = pd.Index(analysis.rows, name="row")
    parts.append("<details><summary>Design matrix</summary>" + table_html(matrix.reset_index()) + "</details>")
    contrasts = pd.DataFrame([{"contrast": name, "test": "F" if np.ndim(weights) == 2 else "t",
                               **dict(zip(matrix.columns, np.atleast_2d(weights)[0], strict=True))}
                              for name, weights in design.contrasts.items()])
    parts.append("<p>Contrasts (first row of each F contrast's weights):</p>" + table_html(contrasts))
    return "".join(parts)


def skipped_section(skipped: Sequence[SkippedAnalysis]) -> tuple[str, str]:
    """(heading, HTML) listing the analyses that could not be estimated, with why."""
    table = pd.DataFrame([{"analysis": item.name, "kind": item.kind, "reason": item.reason} for item in skipped])
    return "Analyses skipped", ("<p class='warn'>These analyses could not be estimated; the others ran:</p>"
                                + table_html(table))


def analysis_section(analysis: GroupResult) -> tuple[str, str]:
    """(heading, HTML) of one group analysis."""
    parts = [design_section(analysis)]
    if analysis.left_out:
        parts.append("<p class='warn'>Left out (participant-level output missing): "
                     + html.escape(", ".join(f"sub-{label}" for label in analysis.left_out)) + "</p>")
    for contrast in analysis.contrasts:
        surviving = ", ".join(f"{name}: {count}" for name, count in contrast.surviving.items()) or "none requested"
        df = "/".join(str(d) for d in contrast.df)
        parts.append(f"<h3>{html.escape(contrast.name)} ({contrast.stat_type}, df {df})</h3>"
                     f"<p>Surviving at alpha, per correction: {html.escape(surviving)}</p>")
        if isinstance(contrast, VoxelContrast):
            parts.append(_glass_brains(contrast))
            for name, clusters in contrast.clusters.items():
                parts.append(f"<p>Clusters, {html.escape(name)}:</p>" + table_html(clusters.head(_TOP)))
        else:
            table = contrast.table
            order = table["z"].abs().sort_values(ascending=False, na_position="last").index[:_TOP]
            parts.append(f"<p>Strongest {_TOP} of {len(table)}:</p>" + table_html(table.loc[order]))
            if analysis.kind == "parcels" and {"network", "hemisphere"} <= set(table.columns):
                parts.append(_network_bars(table, contrast.name))
    features = analysis.features
    if features is not None and analysis.kind in ("edges", "networks"):
        parts.append(_mean_matrix(features))
    if features is not None and analysis.kind == "edges" and features.coordinates is not None:
        parts.append(_connectome(features))
    if features is not None and analysis.kind == "networks" and features.groups:
        parts.append(_network_comparison(features))
    return analysis.name, "".join(parts)


def _network_comparison(features: FeatureValues) -> str:
    """Within-network connectivity of each participant (or condition), one panel per network, by group."""
    import matplotlib.pyplot as plt

    labels, data, groups = features.labels, features.data, np.asarray(features.groups)
    within = np.flatnonzero((labels["node_a"] == labels["node_b"]).to_numpy())
    levels = sorted(set(groups))
    fig, axes = plt.subplots(1, len(within), figsize=(2.2 * len(within) + 1, 3), squeeze=False, sharey=True)
    for axis, column in zip(axes[0], within, strict=True):
        values = [data[groups == level, column] for level in levels]
        axis.boxplot(values, showfliers=False)
        for position, points in enumerate(values, start=1):
            axis.plot(np.full(len(points), position) + np.linspace(-0.08, 0.08, len(points)), points, "o", ms=4,
                      alpha=0.7)
        axis.set_xticks(range(1, len(levels) + 1), levels, fontsize=8)
        axis.set_title(str(labels["node_a"].iloc[column]), fontsize=9)
    axes[0][0].set_ylabel("within-network mean Fisher z")
    return figure(fig, "within-network connectivity by group")


def _glass_brains(contrast: VoxelContrast) -> str:
    from nilearn import plotting

    figures = []
    for label, key in (("unthresholded z", "z"), *((f"z surviving {name}", name) for name in contrast.surviving)):
        if key not in contrast.maps:
            continue
        display = plotting.plot_glass_brain(str(contrast.maps[key]), colorbar=True, plot_abs=False,
                                            title=f"{contrast.name}: {label}")
        figures.append(figure(display.frame_axes.figure, label))
    return "".join(figures)


def _network_bars(table: pd.DataFrame, name: str) -> str:
    import matplotlib.pyplot as plt

    values = "effect" if "effect" in table else "mean"
    means = table.groupby(["network", "hemisphere"])[values].mean().unstack("hemisphere")
    fig, axis = plt.subplots(figsize=(8, 3))
    means.plot.bar(ax=axis)
    axis.set_ylabel(f"mean {values}")
    axis.set_title(f"{name}: network x hemisphere", fontsize=9)
    return figure(fig, "network by hemisphere bars")


def _square(features: FeatureValues) -> tuple[list[str], np.ndarray]:
    """The group-mean values as a symmetric node x node matrix (node order of first appearance)."""
    labels = features.labels
    nodes = list(dict.fromkeys([*labels["node_a"], *labels["node_b"]]))
    index = {node: i for i, node in enumerate(nodes)}
    matrix = np.full((len(nodes), len(nodes)), np.nan)
    for (a, b), value in zip(labels[["node_a", "node_b"]].itertuples(index=False), features.mean, strict=True):
        matrix[index[a], index[b]] = matrix[index[b], index[a]] = value
    return nodes, matrix


def _connectome(features: FeatureValues) -> str:
    """The strongest group-mean edges (at most 100) on a glass brain, at the parcel centroids."""
    from nilearn import plotting

    nodes, matrix = _square(features)
    coordinates = features.coordinates
    if coordinates is None or len(coordinates) != len(nodes):
        return ""
    keep = np.isfinite(coordinates).all(axis=1)
    shown = np.nan_to_num(matrix[np.ix_(keep, keep)])
    np.fill_diagonal(shown, 0)
    n_edges = len(shown) * (len(shown) - 1) // 2
    kept = min(100, n_edges)
    display = plotting.plot_connectome(shown, coordinates[keep], edge_threshold=f"{100 * (1 - kept / n_edges):.4f}%",
                                       node_size=6, title=f"strongest {kept} group-mean edges")
    return figure(display.frame_axes.figure, "connectome of the strongest edges")


def _mean_matrix(features: FeatureValues) -> str:
    import matplotlib.pyplot as plt

    nodes, matrix = _square(features)
    fig, axis = plt.subplots(figsize=(5, 4.5))
    limit = np.nanmax(np.abs(matrix)) if np.isfinite(matrix).any() else 1
    image = axis.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    if len(nodes) <= 30:
        axis.set_xticks(range(len(nodes)), nodes, rotation=90, fontsize=6)
        axis.set_yticks(range(len(nodes)), nodes, fontsize=6)
    fig.colorbar(image, ax=axis, label="group mean (Fisher z)")
    axis.set_title("group-mean connectivity", fontsize=9)
    return figure(fig, "group mean connectivity")


def render_group_report(table: pd.DataFrame, *, inventory: Inventory, missing: list[Path], version: str,
                        analyses: Sequence[GroupResult] = (), settings: GroupAnalysis | None = None,
                        skipped: Sequence[SkippedAnalysis] = ()) -> str:
    """The group report: inputs, each analysis (N per cell, design, contrasts, maps, tables), the skipped, the runs.

    Parameters
    ----------
    table : pandas.DataFrame
        The group summary, one row per run.
    inventory : Inventory
    missing : list of Path
        Participant-level summaries missing or incomplete.
    version : str
    analyses : sequence of GroupResult
    settings : GroupAnalysis, optional
    skipped : sequence of SkippedAnalysis
        Analyses that could not be estimated, with why.
    """
    participants = table["participant_id"].nunique()
    sections = [("Inputs", list_html(str(root) for root in inventory.roots))]
    if settings is not None:
        permutations = (f"; FWE p values by permutation, (1 + #{{null &ge; observed}}) / (1 + n_perm) over "
                        f"{settings.n_perm} random resamples (seed {settings.random_seed}), or exact over every sign "
                        f"flip or permutation when there are at most {settings.n_perm} (each output's sidecar "
                        "records which in PermutationPValue)"
                        if {"fwe", "cluster", "tfce"} & set(settings.corrections) else "")
        clusters = f", cluster-forming p {settings.height_threshold}" if "cluster" in settings.corrections else ""
        test = f"group model {settings.model['path']}" if settings.model else f"{settings.test} test"
        sections.append(("Group model", f"<p>{html.escape(test)}; corrections "
                         f"{html.escape(', '.join(settings.corrections))} at alpha {settings.alpha}"
                         f"{permutations}{clusters}; {len(analyses)} analyses ran, {len(skipped)} skipped.</p>"))
    sections += [analysis_section(analysis) for analysis in analyses]
    if skipped:
        sections.append(skipped_section(skipped))
    if missing:
        sections.append(("Left out", "<p>Participant-level outputs missing or incomplete (run the participant "
                                     "level for these):</p>" + list_html(str(p) for p in missing)))
    sections.append(("Runs", table_html(table)))
    return page("bidsapp group report", f"bidsapp {version} · {inventory.form} · {participants} participants, "
                f"{len(table)} runs", sections)
