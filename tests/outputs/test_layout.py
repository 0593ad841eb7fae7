"""bidsapp.outputs.layout: every output name (as written before the layout module), and group patterns."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from types import SimpleNamespace

import pytest

from bidsapp.config import Analysis, Contrast, Seed
from bidsapp.group.inputs import find_group_inputs, session_inputs
from bidsapp.outputs import layout
from bidsapp.outputs.layout import GROUP_INPUTS, OutputLayout, group_desc
from bidsapp.participant import fmriprep_outputs, subject

RUN = {"sub": "01", "ses": "1", "task": "motor", "run": 1}
SPACE = {"space": "MNI152NLin2009cAsym", "res": "2"}
ATLAS = SimpleNamespace(label="AICHA", networks=("a", "b"))
ANALYSIS = Analysis(connectivity=("correlation", "partial correlation", "covariance"),
                    seeds=(Seed("PCC", 0.0, -52.0, 26.0),))
CONTRASTS = [Contrast("lf", "lf"), Contrast("lfMinusRf", "lf - rf")]


@pytest.fixture
def out(tmp_path):
    return OutputLayout(tmp_path / "out")


def _fmriprep_outputs(out: OutputLayout) -> dict[str, Path]:
    writer = SimpleNamespace(layout=out, output_dir=out.output_dir)
    task = {"sub": "01", "ses": "1", "task": "motor"}
    return {**fmriprep_outputs.run_paths(writer, RUN, SPACE, ATLAS, ANALYSIS),
            **fmriprep_outputs.task_paths(writer, task, SPACE, ATLAS, CONTRASTS)}


def test_fmriprep_names_equal_todays(out):
    paths = _fmriprep_outputs(out)
    func = out.output_dir / "sub-01" / "ses-1" / "func"
    run, task = "sub-01_ses-1_task-motor_run-1_space-MNI152NLin2009cAsym_res-2", \
        "sub-01_ses-1_task-motor_space-MNI152NLin2009cAsym_res-2"
    expected = {
        "timeseries": f"{run}_seg-AICHA_stat-mean_timeseries.tsv",
        "relmat:correlation": f"{run}_seg-AICHA_stat-pearsoncorrelation_relmat.tsv",
        "relmat:partial correlation": f"{run}_seg-AICHA_stat-partialcorrelation_relmat.tsv",
        "relmat:covariance": f"{run}_seg-AICHA_stat-covariance_relmat.tsv",
        "relmat:fisherz": f"{run}_seg-AICHA_stat-pearsoncorrelation_desc-fisherz_relmat.tsv",
        "relmat:networks": f"{run}_seg-AICHA_stat-pearsoncorrelation_desc-networks_relmat.tsv",
        "seed:PCC:r": f"{run}_roi-PCC_stat-pearsoncorrelation_statmap.nii.gz",
        "seed:PCC:z": f"{run}_roi-PCC_stat-fisherz_statmap.nii.gz",
        "lf:parcels": f"{task}_seg-AICHA_contrast-lf_statmap.tsv",
        "lfMinusRf:parcels": f"{task}_seg-AICHA_contrast-lfMinusRf_statmap.tsv",
        **{f"{c}:{stat}": f"{task}_contrast-{c}_stat-{stat}_statmap.nii.gz"
           for c in ("lf", "lfMinusRf") for stat in ("effect", "variance", "t", "z", "p")},
    }
    assert paths == {role: func / name for role, name in expected.items()}


def test_other_names_equal_todays(out):
    root = out.output_dir
    assert out.participant_file(layout.RUN_SUMMARY, {"sub": "01", "task": "rest", "run": 2}) == (
        root / "sub-01" / "func" / "sub-01_task-rest_run-2_desc-summary_qc.tsv")
    assert out.participant_report("01") == root / "sub-01.html"
    run = {"sub": "01", "ses": "2", "task": "rest", "run": 2}
    assert out.scans_file(run) == root / "sub-01" / "ses-2" / "sub-01_ses-2_scans.tsv"  # BIDS' per-session table
    assert out.scans_file({**run, "ses": None}) == root / "sub-01" / "sub-01_scans.tsv"
    hcp = {"sub": "100307", "task": "motor", "space": "fsLR", "seg": "Glasser"}
    assert out.participant_file(layout.CONTRAST_TABLE, {**hcp, "contrast": "lf", "desc": "selectiveaverage"}).name == (
        "sub-100307_task-motor_space-fsLR_seg-Glasser_contrast-lf_desc-selectiveaverage_statmap.tsv")
    assert out.participant_file(layout.RELMAT, {**hcp, "task": "rest", "stat": "covariance", "desc": None}).name == (
        "sub-100307_task-rest_space-fsLR_seg-Glasser_stat-covariance_relmat.tsv")
    assert out.group_file(layout.RUN_SUMMARY, {}) == root / "group" / "desc-summary_qc.tsv"
    assert out.group_file(layout.GROUP_REPORT, {"desc": "twosampleGroup"}) == (
        root / "group" / "desc-twosampleGroup_report.html")
    shared = {"task": "motor", "space": "MNI152NLin2009cAsym"}
    assert out.group_file(layout.GROUP_MAP, {**shared, "desc": "meanFdr", "stat": "z"}).name == (
        "task-motor_space-MNI152NLin2009cAsym_stat-z_desc-meanFdr_statmap.nii.gz")
    assert out.group_file(layout.GROUP_MASK, {**shared, "desc": "meanFdr"}).name == (
        "task-motor_space-MNI152NLin2009cAsym_desc-meanFdr_mask.nii.gz")
    assert [out.group_file(spec, {**shared, "desc": "meanFwe"}).name for spec in layout.GROUP_TABLES.values()] == [
        "task-motor_space-MNI152NLin2009cAsym_desc-meanFwe_clusters.tsv",
        "task-motor_space-MNI152NLin2009cAsym_desc-meanFwe_peaks.tsv"]
    assert {kind: spec.name({"task": "rest", "desc": "x"}) for kind, spec in layout.GROUP_FEATURES.items()} == {
        "parcels": "task-rest_desc-x_statmap.tsv", "edges": "task-rest_desc-x_edges.tsv",
        "networks": "task-rest_desc-x_networks.tsv"}


def test_group_desc_equals_todays():
    assert group_desc(None, "mean") == "mean"
    assert group_desc(None, "lfMinusRf", "fdr") == "lfMinusRfFdr"
    assert group_desc("networks", "controlMinusPatient") == "networksControlMinusPatient"
    assert group_desc("fisherz", "mean", "tfce") == "fisherzMeanTfce"


def test_group_patterns():
    """Today's patterns, plus seed Fisher z maps (voxels) and partial correlations and covariances (edges)."""
    assert {kind: [spec.pattern() for spec in specs] for kind, specs in GROUP_INPUTS.items()} == {
        "voxels": ["*_contrast-*_stat-effect_statmap.nii.gz", "*_roi-*_stat-fisherz_statmap.nii.gz"],
        "parcels": ["*_contrast-*_statmap.tsv"],
        "edges": ["*_stat-pearsoncorrelation_desc-fisherz_relmat.tsv", "*_stat-partialcorrelation_relmat.tsv",
                  "*_stat-covariance_relmat.tsv"],
        "networks": ["*_stat-pearsoncorrelation_desc-networks_relmat.tsv"],
    }


def test_every_participant_output_round_trips_through_the_group_patterns(out):
    """Each output the group level analyses matches exactly its kind's pattern; the others match none.

    The group level reads the subject-level results (no ``ses``, ``run``): the run's, combined.
    """
    paths = _fmriprep_outputs(out)
    analysed = {"relmat:fisherz": "edges", "relmat:partial correlation": "edges", "relmat:covariance": "edges",
                "relmat:networks": "networks", "lf:parcels": "parcels", "lfMinusRf:parcels": "parcels",
                "lf:effect": "voxels", "lfMinusRf:effect": "voxels", "seed:PCC:z": "voxels"}
    for role, path in paths.items():
        matches = [kind for kind, specs in GROUP_INPUTS.items() for spec in specs if fnmatch(path.name, spec.pattern())]
        assert matches == ([analysed[role]] if role in analysed else []), role
    combined = [path for item in subject.plan_combinations(out, paths.values()) for path in item.outputs]
    for path in [*paths.values(), *combined]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    subject_level = {role: out.combined_file(path, layout.SUBJECT_LEVEL_DROPS) for role, path in paths.items()}
    assert subject_level["relmat:fisherz"] == out.output_dir / "sub-01" / "func" / (
        "sub-01_task-motor_space-MNI152NLin2009cAsym_res-2_seg-AICHA_stat-pearsoncorrelation_desc-fisherz_relmat.tsv")
    assert sorted(combined) == sorted(subject_level[role] for role in paths if role != "timeseries")
    for kind in GROUP_INPUTS:
        assert out.group_inputs(kind) == sorted(path for role, found in analysed.items() if found == kind
                                                for path in (paths[role], subject_level[role]))
    inputs = find_group_inputs(out.output_dir, ["01"])
    assert sorted((item.kind, item.entities.get("contrast") or item.entities.get("roi") or item.entities["stat"])
                  for item in inputs) == [
        ("edges", "covariance"), ("edges", "partialcorrelation"), ("edges", "pearsoncorrelation"),
        ("networks", "pearsoncorrelation"), ("parcels", "lf"), ("parcels", "lfMinusRf"), ("voxels", "PCC"),
        ("voxels", "lf"), ("voxels", "lfMinusRf")]
    assert all(item.files == {"01": subject_level[role]} for item in inputs for role in analysed
               if subject_level[role] in item.files.values())
    assert session_inputs(out.output_dir, ["01"]) == []  # one session: no per-session results to compare


def test_a_spec_needs_its_varying_entities():
    with pytest.raises(ValueError, match="'contrast'"):
        layout.CONTRAST_TABLE.name({"sub": "01"})
    with pytest.raises(ValueError, match="'sub'"):
        OutputLayout(Path("out")).participant_file(layout.RUN_SUMMARY, {"task": "rest"})
