"""The group report: a summary of what was found, then one section per group analysis.

The summary (:mod:`bidsapp.reports.group_summary`) comes first: per analysis and contrast, N, what
survives each correction and the strongest finding, linked to the analysis's section. Each section
shows the design (participant IDs as row labels), then per contrast its survivors: voxel maps on the
template with slices at cluster peaks (:mod:`bidsapp.reports.group_figures`) or the strongest parcels,
edges or networks, with a note wherever a table is empty saying why.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp.config import GroupAnalysis
from bidsapp.group.results import FeatureContrast, FeatureValues, GroupResult, SkippedAnalysis, VoxelContrast
from bidsapp.inputs.runs import Inventory
from bidsapp.reports.group_figures import connectome, mean_matrix, node_networks, square, voxel_maps
from bidsapp.reports.group_summary import (
    UNITS,
    Finding,
    anchor,
    empty_note,
    finding,
    stat_text,
    summary_section,
    survivors,
)
from bidsapp.reports.html import bar_table, column_heat_table, figure, list_html, page, table_html

#: Features listed per contrast, by decreasing |z|.
TOP_FEATURES = 10
#: Design rows shown before the design table folds away.
_OPEN_ROWS = 60


def design_section(analysis: GroupResult, shown: dict[bytes, str]) -> str:
    """N per cell, the design matrix (participant IDs as row labels) and the contrasts by name, coloured tables.

    Analyses of the same participants usually share their design: the first shows it, the others link to it
    (``shown`` maps each design drawn to the analysis that shows it).
    """
    design = analysis.design
    cells = ", ".join(f"{cell}: {n}" for cell, n in analysis.cells.items())
    parts = [f"<p>{analysis.n} participant-level maps ({html.escape(design.test)} design); N per cell: "
             f"{html.escape(cells or str(analysis.n))}.</p>"]
    matrix = design.matrix.copy()
    if len(analysis.rows) == len(matrix):
        matrix.index = pd.Index(analysis.rows, name="row")
    contrasts = pd.DataFrame([{"contrast": name, "test": "F" if np.ndim(weights) == 2 else "t",
                               **dict(zip(matrix.columns, np.atleast_2d(weights)[0], strict=True))}
                              for name, weights in design.contrasts.items()])
    key = (matrix.to_csv() + contrasts.to_csv()).encode()
    if key in shown:
        parts.append(f"<p>Design matrix and contrasts as in <a href='#{anchor(shown[key])}'>"
                     f"{html.escape(shown[key])}</a>.</p>")
        return "".join(parts)
    shown[key] = analysis.name
    table = column_heat_table(matrix.reset_index())
    if len(matrix) > _OPEN_ROWS:
        table = f"<details><summary>Design matrix ({len(matrix)} rows)</summary>{table}</details>"
    parts.append(f"<figure><figcaption>design matrix and contrasts</figcaption><div class=panels>{table}"
                 f"<div><p>Contrasts (first row of each F contrast's weights):</p>{column_heat_table(contrasts)}"
                 "</div></div></figure>")
    return "".join(parts)


def skipped_section(skipped: Sequence[SkippedAnalysis]) -> tuple[str, str]:
    """(heading, HTML) listing the analyses that could not be estimated, with why."""
    table = pd.DataFrame([{"analysis": item.name, "kind": item.kind, "reason": item.reason} for item in skipped])
    return "Analyses skipped", ("<p class='warn'>These analyses could not be estimated; the others ran:</p>"
                                + table_html(table))


def _feature_table(contrast: FeatureContrast, kind: str, settings: GroupAnalysis | None) -> str:
    """The strongest features by |z| (all when few), with a note for each correction nothing survived."""
    table = contrast.table
    order = table["z"].abs().sort_values(ascending=False, na_position="last").index[:TOP_FEATURES]
    unit = UNITS[kind]
    caption = (f"All {len(table)} {unit}, strongest first" if len(table) <= TOP_FEATURES
               else f"Strongest {TOP_FEATURES} of {len(table)} {unit} by |z|")
    notes = "".join(f"<p class='note'>{html.escape(empty_note(contrast, kind, name, settings))}</p>"
                    for name, count in contrast.surviving.items() if not count)
    return f"{notes}<p>{caption}:</p>{table_html(table.loc[order])}"


def analysis_section(analysis: GroupResult, settings: GroupAnalysis | None = None,
                     findings: Mapping[tuple[str, str], Finding | None] | None = None,
                     analyses: Sequence[GroupResult] = (), shown: dict[bytes, str] | None = None) -> tuple[str, str]:
    """(heading, HTML) of one group analysis: design, then per contrast its survivors, maps or tables.

    ``findings`` are the contrasts' strongest results (:func:`bidsapp.reports.group_summary.finding`),
    ``analyses`` the run's others (a parcel analysis names the networks of an edge analysis's nodes).
    """
    findings = findings if findings is not None else {}
    parts = [f"<span id='{anchor(analysis.name)}'></span>", design_section(analysis, {} if shown is None else shown)]
    if analysis.left_out:
        parts.append("<p class='warn'>Left out (participant-level output missing): "
                     + html.escape(", ".join(f"sub-{label}" for label in analysis.left_out)) + "</p>")
    alpha = f" at alpha {settings.alpha}" if settings is not None else ""
    for contrast in analysis.contrasts:
        surviving = "; ".join(f"{name}: {text}" for name, text in survivors(contrast, analysis.kind).items())
        found = findings.get((analysis.name, contrast.name))
        strongest = ("" if found is None else f"<p>Strongest: {html.escape(found.where)}, "
                     f"{html.escape(stat_text(contrast.stat_type, contrast.df, found.value, found.p))} "
                     "(uncorrected).</p>")
        parts.append(f"<h3>{html.escape(contrast.name)}: {stat_text(contrast.stat_type, contrast.df)}</h3>"
                     f"<p>Surviving{alpha}, per correction: {html.escape(surviving or 'none requested')}</p>"
                     f"{strongest}")
        if isinstance(contrast, VoxelContrast):
            parts.append(voxel_maps(contrast, found, settings))
        else:
            parts.append(_feature_table(contrast, analysis.kind, settings))
            if analysis.kind == "parcels" and {"network", "hemisphere"} <= set(contrast.table.columns):
                parts.append(_network_bars(contrast.table, contrast.name))
    features = analysis.features
    if features is not None and analysis.kind in ("edges", "networks"):
        nodes, _ = square(features)
        networks = node_networks(nodes, analyses) if analysis.kind == "edges" else None
        parts.append(mean_matrix(features, networks))
    if features is not None and analysis.kind == "edges" and features.coordinates is not None:
        parts.append(connectome(features))
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


def _network_bars(table: pd.DataFrame, name: str) -> str:
    """Mean effect (or mean) of each network's parcels per hemisphere, as bars about zero."""
    values = "effect" if "effect" in table else "mean"
    means = table.groupby(["network", "hemisphere"])[values].mean().unstack("hemisphere")
    return bar_table(means, f"{name}: mean {values} per network and hemisphere")


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
    findings = {(analysis.name, contrast.name): finding(contrast, analysis.kind)
                for analysis in analyses for contrast in analysis.contrasts}
    corrections = list(dict.fromkeys(name for analysis in analyses for contrast in analysis.contrasts
                                     for name in contrast.surviving))
    sections = [("Summary", summary_section(analyses, skipped, corrections, findings)),
                ("Inputs", list_html(str(root) for root in inventory.roots))]
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
    shown: dict[bytes, str] = {}
    sections += [analysis_section(analysis, settings, findings, analyses, shown) for analysis in analyses]
    if skipped:
        sections.append(skipped_section(skipped))
    if missing:
        sections.append(("Left out", "<p>Participant-level outputs missing or incomplete (run the participant "
                                     "level for these):</p>" + list_html(str(p) for p in missing)))
    sections.append(("Runs", table_html(table)))
    return page("bidsapp group report", f"bidsapp {version} · {inventory.form} · {participants} participants, "
                f"{len(table)} runs", sections)
