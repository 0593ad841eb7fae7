"""The group report: its summary against the maps and tables written, statistics as t(df) and F(df1, df2),
notes on empty tables, survivor images on a transparent background, network-ordered connectivity matrices."""

from __future__ import annotations

import base64
import html
import io
import re
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from scipy import ndimage, stats

from bidsapp.cli import main
from bidsapp.demo import write_fmriprep_dataset, write_hcp_bids_dataset
from bidsapp.inputs.parcel_labels import glasser_table
from bidsapp.stats.design import group_design

pytestmark = pytest.mark.slow

N = 8
STEM = "task-motor_space-MNI152NLin2009cAsym_contrast-lf"
RIGHT_MOTOR = np.array([38.0, -22.0, 56.0])  # the demo's planted lf blob (bidsapp.demo.truth.TASK_BLOBS)


def _group(bids, out, *options):
    return main([str(bids), str(out), "group", "--skip-bids-validation", "--task", "motor", "-w",
                 str(out.parent / "work"), *options])


@pytest.fixture(scope="module")
def voxel_runs(tmp_path_factory):
    """Eight fMRIPrep participants (6 mm, lf planted in the right motor cortex), then three group runs.

    ``extent2``: one-sample, FDR and FWE, clusters of more than 2 voxels; ``extent10``: one-sample, FDR,
    the default --cluster-extent 10 (the planted clusters are smaller); ``anova``: groups CONTROL, SCHZ,
    BIPOLAR (3, 3, 2 participants), FDR.
    """
    root = tmp_path_factory.mktemp("group_report")
    bids, participant = root / "bids", root / "participant"
    write_fmriprep_dataset(bids, participants=N, n_task_runs=2, resolution_mm=6.0, seed=5, n_jobs=1)
    assert main([str(bids), str(participant), "participant", "--skip-bids-validation", "--task", "motor", "-w",
                 str(root / "work"), "--no-reports", "--contrast", "lf=lf", "--nprocs", "2"]) == 0
    runs = {}
    for name, options in (("extent2", ["--correction", "fdr", "fwe", "--n-perm", "200", "--cluster-extent", "2"]),
                          ("extent10", ["--correction", "fdr"]),
                          ("anova", ["--group-test", "anova", "--group-column", "group", "--correction", "fdr"])):
        if name == "anova":
            table = pd.read_csv(bids / "participants.tsv", sep="\t")
            table["group"] = (["CONTROL", "SCHZ", "BIPOLAR"] * N)[:N]
            table.to_csv(bids / "participants.tsv", sep="\t", index=False)
        out = root / name
        shutil.copytree(participant, out)
        assert _group(bids, out, *options) == 0
        runs[name] = out
    return runs


def _report(out) -> str:
    (report,) = (out / "group").glob("desc-*_report.html")  # one design per output folder
    return report.read_text()


def _text(cell: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", cell))


def summary_rows(report: str) -> list[dict[str, str]]:
    """The summary table's rows as {column: text}."""
    section = report[report.index("<h2>Summary</h2>"):report.index("<h2>Inputs</h2>")]
    header = [_text(cell) for cell in re.findall(r"<th>(.*?)</th>", section)]
    rows = re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>")[1])
    return [dict(zip(header, [_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)], strict=True))
            for row in rows]


def images(report: str, alt: str) -> list[np.ndarray]:
    """The report's inline PNGs with this alt text, as RGBA arrays of bytes."""
    found = re.findall(rf"<img alt='{re.escape(alt)}'[^>]*src='data:image/png;base64,([^']+)'", report)
    return [np.round(imread(io.BytesIO(base64.b64decode(data)), format="png") * 255).astype(int) for data in found]


def _image(path):
    image = nib.load(path)
    return image.get_fdata(), image.affine


def _p(text: str) -> float:
    return float(re.search(r"p = ([0-9.e+-]+)", text).group(1))


def _clusters(text: str) -> str:
    return f"{text} cluster{'' if text == '1' else 's'}"


def test_summary_counts_equal_the_masks_and_the_strongest_voxel_is_the_t_maps_peak(voxel_runs):
    out = voxel_runs["extent2"]
    rows = {row["analysis"]: row for row in summary_rows(_report(out))}
    row = rows[STEM]
    assert row["contrast"] == "mean" and row["N"] == str(N) == str(len(list(out.glob("sub-*/func/*_contrast-lf_"
                                                                                      "stat-effect_statmap.nii.gz"))))
    for correction in ("fdr", "fwe"):
        mask, _ = _image(out / "group" / f"{STEM}_desc-mean{correction.capitalize()}_mask.nii.gz")
        clusters = pd.read_csv(out / "group" / f"{STEM}_desc-mean{correction.capitalize()}_clusters.tsv", sep="\t")
        assert mask.sum() > 0 and len(clusters) > 0
        assert row[correction] == f"{int(mask.sum())} voxels in {_clusters(str(len(clusters)))}"
    t_map, affine = _image(out / "group" / f"{STEM}_stat-t_desc-mean_statmap.nii.gz")
    peak = np.unravel_index(np.argmax(np.abs(t_map)), t_map.shape)
    xyz = nib.affines.apply_affine(affine, np.array(peak, dtype=float))
    assert np.linalg.norm(xyz - RIGHT_MOTOR) < 15  # the planted blob
    t_value = t_map[peak]
    strongest = row["strongest (uncorrected p)"]
    assert strongest.startswith(f"({xyz[0]:.0f}, {xyz[1]:.0f}, {xyz[2]:.0f}) mm, ")
    assert f": t({N - 1}) = {t_value:.2f}, p = " in strongest
    assert _p(strongest) == pytest.approx(2 * stats.t.sf(abs(t_value), N - 1), rel=0.05)  # two digits printed


def test_feature_rows_count_the_tables_written_and_name_the_top_feature(voxel_runs):
    out = voxel_runs["extent2"]
    rows = {row["analysis"]: row for row in summary_rows(_report(out))}
    for path, unit, name in (
            (next((out / "group").glob("*_desc-fisherzMean_edges.tsv")), "edges",
             lambda best: f"{best['node_a']} – {best['node_b']}"),
            (next((out / "group").glob("*_seg-AICHA_contrast-lf_desc-mean_statmap.tsv")), "parcels",
             lambda best: best["name"])):
        table = pd.read_csv(path, sep="\t")
        row = rows[max((analysis for analysis in rows if path.name.startswith(analysis)), key=len)]
        for correction in ("fdr", "fwe"):
            assert row[correction] == f"{int(table[f'survives_{correction}'].sum())} {unit}"
        best = table.loc[table["t"].abs().idxmax()]
        assert row["strongest (uncorrected p)"].startswith(f"{name(best)}: t({N - 1}) = {best['t']:.2f}, p = ")


def test_survivor_maps_are_transparent_outside_the_brain_with_the_threshold_in_the_legend(voxel_runs):
    out = voxel_runs["extent2"]
    report = _report(out)
    for correction in ("fdr", "fwe"):
        z, _ = _image(out / "group" / f"{STEM}_stat-z_desc-mean{correction.capitalize()}_statmap.nii.gz")
        threshold = np.abs(z[z != 0]).min()
        assert f"z surviving {correction} (|z| ≥ {threshold:.2f})" in report
        [glass] = images(report, f"z surviving {correction}")
        alpha = glass[..., 3]
        assert alpha[0, 0] == 0 and (alpha == 0).mean() > 0.2  # the background, not a navy rectangle
        colours = np.unique(glass[alpha > 0], axis=0)
        assert len(colours) > 3
        survivors = (glass[..., 0] == 255) & (glass[..., 2] == 0) & (alpha == 255)  # red to yellow
        assert survivors.sum() >= 3
        clusters = pd.read_csv(out / "group" / f"{STEM}_desc-mean{correction.capitalize()}_clusters.tsv", sep="\t")
        first = clusters.iloc[0]
        assert (f"Cluster 1: {first['volume_mm']:.0f} mm³, peak ({first['peak_x']:.0f}, {first['peak_y']:.0f}, "
                f"{first['peak_z']:.0f}) mm") in report
        cut = images(report, f"cluster 1 of {correction}")[0]
        assert cut[0, 0, 3] == 0 and len(np.unique(cut[cut[..., 3] > 0], axis=0)) > 20  # anatomy in grey
        in_cut = (cut[..., 0] == 255) & (cut[..., 2] == 0) & (cut[..., 3] == 255)
        assert in_cut.sum() >= 3  # the slices pass through the cluster
    [unthresholded] = images(report, "mean: unthresholded z")[-1:]
    assert unthresholded[0, 0, 3] == 0 and len(np.unique(unthresholded[..., :3].reshape(-1, 3), axis=0)) > 50


def test_an_empty_cluster_table_says_why(voxel_runs):
    out = voxel_runs["extent10"]
    report = _report(out)
    z, _ = _image(out / "group" / f"{STEM}_stat-z_desc-meanFdr_statmap.nii.gz")
    assert not (out / "group" / f"{STEM}_desc-meanFdr_clusters.tsv").exists() or pd.read_csv(
        out / "group" / f"{STEM}_desc-meanFdr_clusters.tsv", sep="\t").empty
    largest = max(np.bincount(ndimage.label(mask)[0].ravel())[1:].max(initial=0) for mask in (z > 0, z < 0))
    assert 0 < largest <= 10
    surviving = int((z != 0).sum())
    assert surviving > 1 and largest > 1
    assert (f"No cluster of more than 10 voxels survived fdr at alpha 0.05: {surviving} voxels survived, the "
            f"largest cluster had {largest} voxels (--cluster-extent 10).") in html.unescape(report)
    assert "Strongest 10 of 6" not in report and "df 1/" not in report


def test_f_contrasts_and_level_names_as_written(voxel_runs):
    out = voxel_runs["anova"]
    report = _report(out)
    names = [path.name for path in (out / "group").iterdir()]
    assert any("desc-CONTROLMinusSCHZ" in name for name in names)
    assert not any("cONTROL" in name or "bIPOLAR" in name for name in names) and "cONTROL" not in report
    df = (2, N - 3)
    assert f"<h3>effectOfGroup: F({df[0]}, {df[1]})</h3>" in report and "<h3>CONTROLMinusSCHZ: t(5)</h3>" in report
    f_map, affine = _image(out / "group" / f"{STEM}_stat-F_desc-effectOfGroup_statmap.nii.gz")
    peak = np.unravel_index(np.argmax(f_map), f_map.shape)
    groups = pd.read_csv(out.parent / "bids" / "participants.tsv", sep="\t").set_index("participant_id")["group"]
    effects = {path.name.split("_")[0]: _image(path)[0][peak]
               for path in out.glob("sub-*/func/*_contrast-lf_stat-effect_statmap.nii.gz")}
    oracle = stats.f_oneway(*[[value for sub, value in effects.items() if groups[sub] == level]
                              for level in sorted(set(groups))])
    assert f_map[peak] == pytest.approx(oracle.statistic, rel=1e-4)
    row = next(row for row in summary_rows(report) if row["analysis"] == STEM and row["contrast"] == "effectOfGroup")
    assert f": F(2, 5) = {f_map[peak]:.2f}, p = " in row["strongest (uncorrected p)"]
    assert _p(row["strongest (uncorrected p)"]) == pytest.approx(oracle.pvalue, rel=0.05)
    empty = 0
    for contrast in ("effectOfGroup", "BIPOLARMinusCONTROL", "BIPOLARMinusSCHZ", "CONTROLMinusSCHZ"):
        surviving = int(_image(out / "group" / f"{STEM}_desc-{contrast}Fdr_mask.nii.gz")[0].sum())
        cell = next(row["fdr"] for row in summary_rows(report)
                    if row["analysis"] == STEM and row["contrast"] == contrast)
        assert (cell == f"{surviving} voxels") if not surviving else cell.startswith(f"{surviving} voxels in ")
        empty += not surviving
    assert empty and report.count("No voxel survived fdr at alpha 0.05.") == empty  # no group difference planted
    assert all(f"<td>sub-0{k}</td>" in report for k in range(1, N + 1))  # design rows by participant ID


def test_contrast_names_keep_an_acronym_as_written():
    table = pd.DataFrame({"participant_id": [f"sub-{k}" for k in range(6)],
                          "group": ["CONTROL", "SCHZ"] * 3, "arm": ["Drug", "placebo"] * 3})
    assert list(group_design(table, "twosample", group_column="group").contrasts) == ["CONTROLMinusSCHZ"]
    assert list(group_design(table, "twosample", group_column="arm").contrasts) == ["drugMinusPlacebo"]


@pytest.fixture(scope="module")
def hcp_group(tmp_path_factory):
    """Two HCP participants' resting connectivity (Glasser 360), then a one-sample group level."""
    root = tmp_path_factory.mktemp("hcp_report")
    bids, out = root / "bids", root / "out"
    write_hcp_bids_dataset(bids, subjects=["100307", "100408"], seed=3, rest_frames=100)
    common = ["--task", "rest", "-w", str(root / "work")]
    assert main([str(bids), str(out), "participant", *common, "--no-reports", "--nprocs", "2"]) == 0
    assert main([str(bids), str(out), "group", *common, "--correction", "fdr"]) == 0
    return out


def test_connectivity_matrix_ordered_and_labelled_by_network(hcp_group):
    report = _report(hcp_group)
    assert "Group-mean connectivity (Fisher z), parcels ordered by network" in report
    rows = re.search(r"<div class=rows[^>]*>(.*?</div>)</div>", report).group(1)
    labels = re.findall(r"<div style='flex:(\d+)'>([^<]*)</div>", rows)
    counts = glasser_table().groupby("network").size()  # 360 parcels, one pixel each, a line between networks
    assert [name for _, name in labels] == sorted(counts.index)
    assert [int(flex) for flex, _ in labels] == [counts[name] + 1 for name in sorted(counts.index)]
