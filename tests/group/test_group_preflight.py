"""Group-level preflight: the same checks for the real run and --dry-run, all before anything is written.

On a small fMRIPrep dataset (3 participants: participants.tsv columns group, age, sex) processed at
participant level once. Expectations come from the files on disk and participants.tsv, not from the
code under test.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import error_lines, snapshot
from conftest import motor_group as group

from bidsapp.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def participant_out(fmriprep_templates, tmp_path_factory):
    """Participant level on the motor task with single-condition contrasts lf, rf and the defaults."""
    bids = fmriprep_templates["21+"]
    out = tmp_path_factory.mktemp("preflight") / "out"
    assert main([str(bids), str(out), "participant", "--skip-bids-validation", "--task", "motor", "--contrast",
                 "lf=lf", "rf=rf", "defaults", "-w", str(out.parent / "work"), "--nprocs", "2"]) == 0
    return bids, out


@pytest.mark.parametrize("dry_run", [False, True])
def test_group_before_participant_exit_18(participant_out, tmp_path, capsys, dry_run):
    bids, _ = participant_out
    out = tmp_path / "empty"
    assert group(bids, out, *(["--dry-run"] if dry_run else [])) == 18
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and str(out) in err[0] and "run the participant level first" in err[0]
    assert not out.exists() if dry_run else {path.name for path in out.iterdir()} == {"logs"}


@pytest.mark.parametrize("dry_run", [False, True])
def test_unknown_group_column_and_covariate_exit_2(output_copy, capsys, dry_run):
    bids, out = output_copy
    before = snapshot(out)
    code = group(bids, out, "--group-test", "twosample", "--group-column", "diagnosis", "--covariates", "age",
                 "weight", *(["--dry-run"] if dry_run else []))
    assert code == 2
    err = error_lines(capsys.readouterr().err)
    columns = [c for c in pd.read_csv(bids / "participants.tsv", sep="\t").columns if c != "participant_id"]
    assert len(err) == 2
    assert err[0].startswith("bidsapp: error: --group-column:") and "'diagnosis'" in err[0]
    assert err[1].startswith("bidsapp: error: --covariates:") and "'weight'" in err[1]
    assert all(str(bids / "participants.tsv") in line and ", ".join(columns) in line for line in err)
    assert snapshot(out) == before


def _analyses(out: Path) -> dict[str, set[str]]:
    """Expected analyses from the participant-level files: name to participants having it."""
    found: dict[str, set[str]] = {}
    for path in out.glob("sub-*/func/*_contrast-*_stat-effect_statmap.nii.gz"):
        name = path.name.split("_", 1)[1].replace("_stat-effect_statmap.nii.gz", "")
        found.setdefault(name, set()).add(path.name.split("_")[0])
    for path in out.glob("sub-*/func/*_contrast-*_statmap.tsv"):
        name = path.name.split("_", 1)[1].replace("_statmap.tsv", "")
        found.setdefault(name, set()).add(path.name.split("_")[0])
    return found


def test_dry_run_lists_designs_and_agrees_with_real_run(output_copy, capsys):
    bids, out = output_copy
    before = snapshot(out)
    options = ("--group-test", "twosample", "--group-column", "group", "--correction", "fdr", "fwe",
               "--n-perm", "100", "--random-seed", "7")
    assert group(bids, out, *options, "--dry-run") == 0
    plan = capsys.readouterr().out
    assert snapshot(out) == before
    participants = pd.read_csv(bids / "participants.tsv", sep="\t")
    cells = ", ".join(f"{level} {n}" for level, n in sorted(participants["group"].value_counts().items()))
    assert "corrections fdr, fwe at alpha 0.05; 100 permutations (seed 7) for fwe" in plan
    expected = _analyses(out)
    # lf, rf and the default pairwise contrasts, as voxel maps and parcel tables
    assert {name.split("contrast-")[1] for name in expected} == {"lf", "rf", "lfMinusRf", "rfMinusLf"}
    assert len(expected) == 8
    lines = plan.splitlines()
    for name in expected:
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{name} ("))
        assert f"twosample, N = {len(participants)} ({cells})" in lines[at]
        assert lines[at + 1].strip() == "design columns: group[control], group[patient]"
        assert lines[at + 2].strip() == "contrasts: controlMinusPatient (t)"
    assert "skipped" not in plan

    assert group(bids, out, *options) == 0
    written = {path.name for path in (out / "group").iterdir()}
    for name in expected:
        assert any(f.startswith(f"{name}_") and "desc-controlMinusPatient" in f for f in written), name


def test_inestimable_analysis_skipped_with_reason(output_copy, capsys):
    bids, out = output_copy
    for path in out.glob("sub-03/func/*_contrast-lf_*"):
        path.unlink()
    options = ("--covariates", "age", "--correction", "fdr")  # intercept + age: at least 3 participants
    assert group(bids, out, *options, "--dry-run") == 0
    plan = capsys.readouterr().out
    skipped = plan[plan.index("Analyses skipped (2):"):].splitlines()[1:3]
    assert all("contrast-lf " in line and "needs at least 3 participants" in line and "found 2" in line
               for line in skipped)
    run_lines = plan[:plan.index("Analyses skipped")]
    assert "contrast-rf (voxels): onesample, N = 3 (all 3)" in run_lines
    assert "design columns: intercept, age" in run_lines

    assert group(bids, out, *options) == 0
    assert "contrast-lf: skipped" in capsys.readouterr().err
    names = [path.name for path in (out / "group").iterdir()]
    assert not any("contrast-lf_" in name for name in names)
    assert any("contrast-rf_" in name for name in names)


def test_every_analysis_inestimable_exit_18_writes_nothing(output_copy, capsys):
    bids, out = output_copy
    before = snapshot(out)
    # intercept, age and sex[M]: three independent columns for three participants, no error df left
    assert group(bids, out, "--covariates", "age", "sex") == 18
    err = error_lines(capsys.readouterr().err)
    assert all("needs at least" in line for line in err)
    assert all(any(line.startswith(f"bidsapp: error: {name}: ") for line in err) for name in _analyses(out))
    assert snapshot(out) == before
