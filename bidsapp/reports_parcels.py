"""The participant report of the parcel pipeline, built from the files it wrote.

Sections follow the HCP course notebooks: the runs analysed and any input
problems; the combined resting connectivity matrix ordered by network with the
network means, and the connectivity profile of a seed parcel (R_FEF) split by
hemisphere; the network x hemisphere means of every contrast (one heatmap), the
parcels ranked by |effect|, and, when the dataset has ``atlas.npz``, each
task's first contrast on the fsaverage5 surface (nilearn ships the mesh). Figures are drawn
with matplotlib's object-oriented API (Agg, no display) and embedded as PNGs.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bidsapp import __version__
from bidsapp.hcp_summaries import HEMISPHERES, network_hemisphere_means, rank_parcels
from bidsapp.parcel_labels import dataset_root
from bidsapp.relmat import read_relmat
from bidsapp.report import figure, page, table_html

#: The seed parcel of the HCP course's connectivity profile.
SEED_PARCEL = "R_FEF"
#: Parcels listed per contrast, by decreasing |effect|.
TOP_PARCELS = 10


def _figure(width: float, height: float, n_axes: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(1, n_axes, squeeze=False)[0]


def _order_by_network(parcels: pd.DataFrame) -> np.ndarray:
    return np.lexsort((np.arange(len(parcels)), parcels["network"].to_numpy()))


def connectivity_section(matrix: pd.DataFrame, networks: pd.DataFrame | None, parcels: pd.DataFrame) -> str:
    """The connectivity matrix ordered by network, with network means beside it."""
    order = _order_by_network(parcels)
    labels = parcels["network"].to_numpy()[order]
    fig, axes = _figure(12, 5.5, 2 if networks is not None else 1)
    image = axes[0].imshow(matrix.to_numpy()[np.ix_(order, order)], cmap="RdBu_r", vmin=-1, vmax=1,
                           interpolation="none")
    if networks is not None:
        axes[1].imshow(networks.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    edges = np.flatnonzero(labels[1:] != labels[:-1]) + 0.5
    for edge in edges:
        axes[0].axhline(edge, color="k", lw=0.4)
        axes[0].axvline(edge, color="k", lw=0.4)
    centres = (np.r_[-0.5, edges] + np.r_[edges, len(labels) - 0.5]) / 2
    axes[0].set_yticks(centres, labels[np.r_[0, np.ceil(edges).astype(int)]], fontsize=7)
    axes[0].set_xticks([])
    axes[0].set_title("Pearson correlation, parcels ordered by network")
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    if networks is not None:
        axes[1].set_xticks(range(len(networks)), networks.columns, rotation=90, fontsize=7)
        axes[1].set_yticks(range(len(networks)), networks.index, fontsize=7)
        axes[1].set_title("Within/between-network mean Fisher z")
    return figure(fig, "connectivity matrix ordered by network")


def seed_profile_section(matrix: pd.DataFrame, parcels: pd.DataFrame, seed: str = SEED_PARCEL) -> str:
    """The seed parcel's correlation with every parcel, one line per hemisphere (the course's R_FEF plot)."""
    if seed not in matrix.index:
        return ""
    profile = matrix.loc[seed].to_numpy()
    fig, axes = _figure(9, 3.5)
    for hemisphere in HEMISPHERES:
        mask = (parcels["hemisphere"] == hemisphere).to_numpy()
        axes[0].plot(profile[mask], label=f"{hemisphere} hemisphere")
    axes[0].set(title=f"Connectivity of {seed}", xlabel="target parcel", ylabel="correlation")
    axes[0].legend()
    return figure(fig, f"connectivity profile of {seed}")


def contrasts_section(statmaps: dict[str, pd.DataFrame], parcels: pd.DataFrame) -> str:
    """Network x hemisphere mean effect of every contrast (one heatmap), and the top parcels by |effect|.

    ``statmaps`` maps a title (``task: contrast``) to the contrast's statistics table. One heatmap
    (networks x contrasts and hemispheres) replaces the course's bar chart per contrast: it reads the
    same, and matplotlib draws it in a fraction of the time of one axes per contrast.
    """
    means = pd.concat({title: network_hemisphere_means(table["effect"].to_numpy(), parcels)
                       for title, table in statmaps.items()}, axis=1)
    fig, axes = _figure(1.0 + 0.55 * means.shape[1], 4.8)
    limit = float(np.nanmax(np.abs(means.to_numpy()))) or 1.0
    image = axes[0].imshow(means.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axes[0].set_yticks(range(len(means)), means.index, fontsize=8)
    axes[0].set_xticks(range(means.shape[1]), [f"{title} ({hemisphere[0].upper()})" for title, hemisphere in
                                               means.columns], rotation=90, fontsize=8)
    for edge in np.arange(2, means.shape[1], 2) - 0.5:
        axes[0].axvline(edge, color="k", lw=0.8)
    fig.colorbar(image, ax=axes[0], shrink=0.8, label="mean effect")
    parts = [figure(fig, "network by hemisphere mean effect of each contrast")]
    for title, table in statmaps.items():
        ranked = rank_parcels(table["effect"].to_numpy(), parcels, TOP_PARCELS).rename(columns={"value": "effect"})
        ranked["z"] = table.set_index("name").loc[ranked["name"], "z"].to_numpy()
        parts.append(f"<h3>{html.escape(title)}: parcels by |effect|</h3>{table_html(ranked)}")
    return "".join(parts)


def surface_section(values: np.ndarray, atlas_path, title: str) -> str:
    """Parcel values on the fsaverage5 surface; ``atlas.npz`` maps each vertex to a parcel (``labels_L/R``)."""
    from nilearn.datasets import load_fsaverage
    from nilearn.plotting import plot_surf_stat_map

    with np.load(atlas_path) as atlas:
        labels = {"left": atlas["labels_L"], "right": atlas["labels_R"]}
    mesh = load_fsaverage("fsaverage5")["inflated"]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    vmax = float(np.nanmax(np.abs(values))) or 1.0
    for k, hemisphere in enumerate(("left", "right")):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        plot_surf_stat_map(mesh.parts[hemisphere], values[labels[hemisphere]], hemi=hemisphere, view="lateral",
                           axes=ax, figure=fig, colorbar=False, vmax=vmax, cmap="RdBu_r")
    fig.suptitle(title)
    return figure(fig, title)


def _first_per_task(statmaps: dict[str, pd.DataFrame]) -> list[str]:
    """The first ``task: contrast`` title of each task."""
    firsts: dict[str, str] = {}
    for title in statmaps:
        firsts.setdefault(title.split(":")[0], title)
    return list(firsts.values())


def render_participant_report(job, parcels: pd.DataFrame, rest: Sequence, tasks: Sequence,
                              warnings: Sequence[str]) -> str:
    """The participant's HTML report (reads the outputs the plans name)."""
    runs = pd.DataFrame([{"run": run.name, "volumes": run.n_volumes, "TR (s)": run.repetition_time,
                          "file": run.data.name} for run in job.runs])
    sections = [("Runs", table_html(runs))]
    if warnings:
        sections.append(("Input problems", "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
                         + "</ul>"))
    for plan in rest:
        correlation = plan.outputs.get(("combined", "pearsoncorrelation", None))
        if correlation is None or not correlation.path.is_file():
            continue
        matrix = read_relmat(correlation.path)
        networks = plan.outputs.get(("combined", "pearsoncorrelation", "networks"))
        body = connectivity_section(matrix, read_relmat(networks.path) if networks else None, parcels)
        sections.append((f"Resting connectivity: {correlation.path.name}",
                         body + seed_profile_section(matrix, parcels)))
    atlas = dataset_root(job.runs[0].data, job.participant) / "atlas.npz"
    statmaps = {}
    for plan in tasks:
        for name, out in plan.statmaps.items():
            if out.path.is_file():
                statmaps[f"{plan.entities['task']}: {name}"] = pd.read_csv(out.path, sep="\t", na_values=["n/a"],
                                                                          keep_default_na=False)
    if statmaps:
        body = ("<p>Mean effect (GLM contrast estimate) of each network's parcels, per hemisphere "
                "(R right, L left).</p>" + contrasts_section(statmaps, parcels))
        if atlas.is_file():
            body += "".join(surface_section(statmaps[title]["effect"].to_numpy(), atlas, f"{title}: effect")
                            for title in _first_per_task(statmaps))
        sections.append(("Task contrasts", body))
    return page(f"bidsapp: sub-{job.participant}", f"bidsapp {__version__} · HCP-style parcellated data · "
                f"{len(job.runs)} runs", sections)
