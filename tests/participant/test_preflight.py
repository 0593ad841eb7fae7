"""The participant-level preflight: every input problem found before the first write, by the run and the dry run.

Each fault is planted in a private copy of a small dataset; the real run and
``--dry-run`` must stop with the same exit code and the same lines, naming the
file or option, and OUTPUT_DIR must hold nothing but ``logs/`` afterwards.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import error_lines

from bidsapp.cli import main
from bidsapp.inputs.atlas import find_atlas_files

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::RuntimeWarning")]
SPACE = "MNI152NLin2009cAsym"


def _main(bids: Path, out: Path, *options: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main([str(bids), str(out), "participant", "--skip-bids-validation", "-w", str(out.parent / "work"),
                     *options])


def _func(bids: Path, sub: str) -> Path:
    return bids / "derivatives" / "fmriprep" / f"sub-{sub}" / "func"


def _tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


def _written(out: Path) -> list[str]:
    """Everything in OUTPUT_DIR but its log folder."""
    return sorted(p.name for p in out.iterdir() if p.name != "logs") if out.exists() else []


def _fails_alike(bids: Path, tmp_path: Path, capsys, code: int, *options: str) -> list[str]:
    """Run for real and as a dry run; both exit ``code`` with the same error lines, writing nothing. The lines."""
    found = []
    for name, extra in (("run", ()), ("dry", ("--dry-run",))):
        out = tmp_path / f"out_{name}"
        capsys.readouterr()
        assert _main(bids, out, *options, *extra) == code, capsys.readouterr().err
        captured = capsys.readouterr()
        found.append(error_lines(captured.err))
        assert _written(out) == [], (name, _written(out))
        assert "bidsapp dry run" not in captured.out
    assert found[0] == found[1], found
    assert found[0], "no error line"
    return found[0]


def test_fmriprep_1_0_confounds_without_csf(fmriprep, tmp_path, capsys):
    """A real 1.0 table has WhiteMatter and GlobalSignal but no CSF: found for sub-02 before sub-01 is written."""
    bids = fmriprep("1.0")
    path = _func(bids, "02") / "sub-02_task-rest_bold_confounds.tsv"
    table = _tsv(path)
    assert {"WhiteMatter", "GlobalSignal", "CSF"} <= set(table.columns)
    table.drop(columns="CSF").to_csv(path, sep="\t", index=False, na_rep="n/a")
    lines = _fails_alike(bids, tmp_path, capsys, 66)
    assert len(lines) == 1, lines
    for needle in (str(path), "'csf'", "(fMRIPrep 1.0/1.1 name: CSF)", "'simple' strategy", "--skip-bad-runs"):
        assert needle in lines[0], (needle, lines[0])


def test_skip_bad_runs_leaves_out_what_the_preflight_rejected(fmriprep, tmp_path, capsys):
    bids = fmriprep("1.0")
    path = _func(bids, "02") / "sub-02_task-rest_bold_confounds.tsv"
    _tsv(path).drop(columns="CSF").to_csv(path, sep="\t", index=False, na_rep="n/a")
    capsys.readouterr()
    assert _main(bids, tmp_path / "out", "--skip-bad-runs", "--dry-run", "--task", "rest") == 0
    captured = capsys.readouterr()
    plan = captured.out.splitlines()
    assert f"  skipped: {path}: no column 'csf' (fMRIPrep 1.0/1.1 name: CSF), which the 'simple' strategy needs for " \
           "wm_csf; this table follows fMRIPrep 1.0-1.1 (CamelCase columns): choose another --denoise-strategy or " \
           "re-run fMRIPrep" in plan
    assert "Participants (2): 01 03" in plan
    assert not any("sub-02_task-rest_bold_space" in line for line in plan)
    assert "Leaving out sub-02_task-rest" in captured.err
    assert _written(tmp_path / "out") == []


def test_scrubbing_needs_framewise_displacement(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    path = _func(bids, "01") / "sub-01_task-rest_desc-confounds_timeseries.tsv"
    _tsv(path).drop(columns="framewise_displacement").to_csv(path, sep="\t", index=False, na_rep="n/a")
    lines = _fails_alike(bids, tmp_path, capsys, 66, "--participant-label", "01", "--denoise-strategy", "scrubbing")
    assert len(lines) == 1 and path.name in lines[0] and "'framewise_displacement'" in lines[0], lines


def test_invalid_json_sidecar(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    sidecar = _func(bids, "01") / f"sub-01_task-rest_space-{SPACE}_desc-preproc_bold.json"
    sidecar.write_text('{"RepetitionTime": 2.0,\n  "SkullStripped": }\n')
    lines = _fails_alike(bids, tmp_path, capsys, 66, "--participant-label", "01")
    assert len(lines) == 1, lines
    assert str(sidecar) in lines[0] and "cannot be read as JSON" in lines[0] and "line 2" in lines[0], lines


def test_invalid_confounds_json_sidecar(fmriprep, tmp_path, capsys):
    bids = fmriprep("1.4")
    sidecar = _func(bids, "01") / "sub-01_task-rest_desc-confounds_regressors.json"
    assert sidecar.is_file()
    sidecar.write_text("{not json")
    lines = _fails_alike(bids, tmp_path, capsys, 66, "--participant-label", "01", "--task", "rest")
    assert len(lines) == 1 and str(sidecar) in lines[0] and "cannot be read as JSON" in lines[0], lines


def test_events_without_trial_type_are_one_condition_with_a_warning(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    path = bids / "sub-01" / "func" / "sub-01_task-motor_run-01_events.tsv"
    events = _tsv(path)
    events.drop(columns="trial_type").to_csv(path, sep="\t", index=False)
    capsys.readouterr()
    assert _main(bids, tmp_path / "out", "--participant-label", "01", "--task", "motor", "--dry-run") == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "WARNING" in line and str(path) in line]
    assert len(warning) == 1, err
    assert f"its {len(events)} events are modelled as one condition, 'dummy'" in warning[0]


def test_events_with_nothing_to_model(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    path = bids / "sub-01" / "func" / "sub-01_task-motor_run-02_events.tsv"
    events = _tsv(path)
    events["trial_type"] = "n/a"
    events.to_csv(path, sep="\t", index=False)
    lines = _fails_alike(bids, tmp_path, capsys, 66, "--participant-label", "01")
    assert len(lines) == 1 and str(path) in lines[0] and "no events to model" in lines[0], lines


def test_unknown_contrast_condition(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    lines = _fails_alike(bids, tmp_path, capsys, 2, "--contrast", "bad=lf - xx")
    conditions = sorted(set(_tsv(bids / "sub-01" / "func" / "sub-01_task-motor_run-01_events.tsv")["trial_type"]))
    assert lines == [f"bidsapp: error: --contrast bad=lf - xx: names conditions of no task; conditions available: "
                     f"motor: {', '.join(conditions)}"]


def test_contrast_of_a_condition_one_participant_lacks(fmriprep, tmp_path, capsys):
    """The run stops before sub-01 is written, although only sub-02 lacks the condition."""
    bids = fmriprep("21+")
    for run in ("01", "02"):
        path = bids / "sub-02" / "func" / f"sub-02_task-motor_run-{run}_events.tsv"
        events = _tsv(path)
        events["trial_type"] = events["trial_type"].replace({"lf": "lh"})
        events.to_csv(path, sep="\t", index=False)
    lines = _fails_alike(bids, tmp_path, capsys, 2, "--contrast", "left=lf")
    assert len(lines) == 1 and lines[0].startswith("bidsapp: error: --contrast left=lf: ") and "(in sub-02)" in lines[0]


def test_atlas_given_as_its_table(fmriprep, tmp_path, capsys):
    _, table, _ = find_atlas_files("AICHA", SPACE)
    lines = _fails_alike(fmriprep("21+"), tmp_path, capsys, 2, "--participant-label", "01", "--atlas", str(table))
    assert lines == [f"bidsapp: error: --atlas {table}: this is a parcel table; give the label NIfTI image (.nii.gz) "
                     "it describes, with the table beside it"]


def test_mask_on_another_grid(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    path = _func(bids, "03") / f"sub-03_task-rest_space-{SPACE}_desc-brain_mask.nii.gz"
    image = nib.load(path)
    affine = image.affine.copy()
    affine[:3, :3] *= 0.5
    nib.Nifti1Image(np.asarray(image.dataobj), affine).to_filename(path)
    lines = _fails_alike(bids, tmp_path, capsys, 66)
    assert len(lines) == 1 and str(path) in lines[0] and "does not match the BOLD grid" in lines[0], lines


def test_every_problem_reported_together_options_first(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    confounds = _func(bids, "01") / "sub-01_task-rest_desc-confounds_timeseries.tsv"
    _tsv(confounds).drop(columns="csf").to_csv(confounds, sep="\t", index=False, na_rep="n/a")
    sidecar = _func(bids, "02") / f"sub-02_task-rest_space-{SPACE}_desc-preproc_bold.json"
    sidecar.write_text("{")
    lines = _fails_alike(bids, tmp_path, capsys, 2, "--seeds", "Sky=0,0,150", "--contrast", "bad=xx")
    assert lines[0].startswith("bidsapp: error: --seeds Sky=0,0,150") and lines[1].startswith("bidsapp: error: "
                                                                                              "--contrast bad=xx")
    assert [line for line in lines[2:] if str(confounds) in line] and [line for line in lines[2:] if str(sidecar)
                                                                        in line], lines
    assert len(lines) == 4, lines


def test_hcp_unknown_contrast_and_events_after_the_run(hcp, tmp_path, capsys):
    bids = hcp("bids")
    lines = _fails_alike(bids, tmp_path / "a", capsys, 2, "--contrast", "bad=nothere")
    assert len(lines) == 1 and lines[0].startswith("bidsapp: error: --contrast bad=nothere: ") and \
        "conditions available" in lines[0], lines
    events = sorted(bids.rglob("*_events.tsv"))[0]
    table = _tsv(events)
    table.loc[len(table)] = [1e5, 1.0] + [table.iloc[0, i] for i in range(2, table.shape[1])]
    table.to_csv(events, sep="\t", index=False)
    lines = _fails_alike(bids, tmp_path / "b", capsys, 66)
    assert len(lines) == 1 and str(events) in lines[0] and "starts after the run ends" in lines[0], lines


def test_a_clean_dataset_passes(fmriprep, tmp_path, capsys):
    """A clean dataset passes the preflight: the dry run lists every run (the run itself is tested elsewhere)."""
    bids = fmriprep("21+")
    assert _main(bids, tmp_path / "out", "--dry-run") == 0
    plan = capsys.readouterr().out
    assert plan.count("desc-preproc_bold.nii.gz") == 9 and "skipped" not in plan


def _planned_contrasts(bids: Path, out: Path, capsys, *options: str) -> set[str]:
    """The contrast names of the first-level maps a dry run plans for sub-01's motor task."""
    capsys.readouterr()
    assert _main(bids, out, "--participant-label", "01", "--task", "motor", "--dry-run", *options) == 0
    plan = capsys.readouterr().out
    return {line.split("_contrast-")[1].split("_")[0] for line in plan.splitlines()
            if "_contrast-" in line and line.strip().startswith("/")}


def test_contrast_replaces_the_defaults_unless_defaults_is_given(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    events = _tsv(next(bids.glob("sub-01/func/sub-01_task-motor_run-*_events.tsv")))
    conditions = sorted(set(events["trial_type"]))
    assert len(conditions) >= 2
    a, b = conditions[:2]
    # the defaults: each condition, and each ordered pair of conditions
    pairs = {f"{x}Minus{y[0].upper()}{y[1:]}" for x in conditions for y in conditions if x != y}
    assert _planned_contrasts(bids, tmp_path / "o1", capsys) == set(conditions) | pairs
    mine = f"{a}Over{b[0].upper()}{b[1:]}"
    assert _planned_contrasts(bids, tmp_path / "o2", capsys, "--contrast", f"{mine}={a} - {b}") == {mine}
    assert _planned_contrasts(bids, tmp_path / "o3", capsys, "--contrast", f"{mine}={a} - {b}", "defaults") == \
        set(conditions) | pairs | {mine}
    assert _planned_contrasts(bids, tmp_path / "o4", capsys, "--contrast", "defaults") == set(conditions) | pairs
    # a contrast of a default's name replaces it; an unknown condition still stops before any write (exit 2)
    assert _planned_contrasts(bids, tmp_path / "o5", capsys, "--contrast", f"{a}=2*{a}", "defaults") == \
        set(conditions) | pairs
    lines = _fails_alike(bids, tmp_path, capsys, 2, "--contrast", "defaults", "bad=nothere")
    assert len(lines) == 1 and lines[0].startswith("bidsapp: error: --contrast bad=nothere: ")


def test_tasks_no_contrast_is_for_are_named(hcp, tmp_path, capsys):
    """HCP course data: a --contrast of motor conditions leaves emotion and gambling without contrasts, said once."""
    bids = hcp("course")
    capsys.readouterr()
    assert _main(bids, tmp_path / "out", "--participant-label", "100307", "--contrast", "lf=lf", "--dry-run") == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if "no contrast names only conditions of task" in line]
    assert sorted(line.split("of task ")[1].split(",")[0] for line in warned) == ["emotion", "gambling"]
    assert all("add the word defaults to --contrast" in line for line in warned)
    contrasts = {line.split("_contrast-")[1].split("_")[0] for line in captured.out.splitlines() if "_contrast-" in line}
    assert contrasts == {"lf"}
