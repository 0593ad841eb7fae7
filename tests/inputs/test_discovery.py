"""Input discovery through ``main([...])`` and ``discover``: every input form, selection and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import error_lines

from bidsapp.cli import main, parse_arguments
from bidsapp.config import build_config
from bidsapp.inputs.discovery import discover


def inventory(*argv):
    return discover(build_config(parse_arguments([str(a) for a in argv]), ["bidsapp"]))


def fmriprep_dir(bids_dir: Path) -> Path:
    return bids_dir / "derivatives" / "fmriprep"


@pytest.mark.parametrize(("naming", "confounds_suffix"), [
    ("21+", "_desc-confounds_timeseries.tsv"),
    ("1.4", "_desc-confounds_regressors.tsv"),
    ("1.0", "_bold_confounds.tsv"),
])
def test_fmriprep_runs_for_each_confounds_naming(fmriprep, tmp_path, naming, confounds_suffix):
    bids_dir = fmriprep(naming)
    found = inventory(bids_dir, tmp_path / "out", "participant", "-w", tmp_path / "work")
    assert found.input_type == "fmriprep" and found.form == "raw BIDS + fMRIPrep derivatives"
    assert found.participants == ("01", "02", "03")
    runs = found.runs_of("01")
    assert sorted(run.name for run in runs) == ["sub-01_task-motor_run-1", "sub-01_task-motor_run-2",
                                                "sub-01_task-rest"]
    for run in runs:
        assert run.confounds.name.endswith(confounds_suffix)
        assert run.mask.is_file() and run.data.is_file()
        assert run.repetition_time == 2.0
        rows = len(pd.read_csv(run.confounds, sep="\t"))
        assert run.n_volumes == rows
    motor = next(run for run in runs if run.name == "sub-01_task-motor_run-1")
    assert motor.events.name == "sub-01_task-motor_run-01_events.tsv"  # run-1 matched to run-01
    assert next(run for run in runs if run.entities["task"] == "rest").events is None
    assert found.participants_tsv == bids_dir / "participants.tsv"


def test_participant_level_each_naming_writes_motion_summary(fmriprep, tmp_path):
    for naming in ("21+", "1.4", "1.0"):
        bids_dir, out = fmriprep(naming), tmp_path / f"out{naming}"
        assert main([str(bids_dir), str(out), "participant", "--skip-bids-validation", "--nprocs", "1",
                     "-w", str(tmp_path / "work")]) == 0
        summary = pd.read_csv(out / "sub-02" / "func" / "sub-02_task-rest_desc-summary_qc.tsv", sep="\t")
        confounds = pd.read_csv(next((fmriprep_dir(bids_dir) / "sub-02" / "func").glob("*rest*confounds*.tsv")),
                                sep="\t", na_values="n/a")
        fd = confounds.filter(regex="^(framewise_displacement|FramewiseDisplacement)$").iloc[1:, 0]
        assert summary.loc[0, "mean_fd_mm"] == pytest.approx(fd.mean())
        assert summary.loc[0, "n_high_motion"] == int((fd > 0.5).sum())
        assert summary.loc[0, "n_non_steady_state"] >= 1


def test_sessions_and_filters(fmriprep, tmp_path):
    bids_dir = fmriprep("sessions")
    found = inventory(bids_dir, tmp_path / "out", "participant", "-w", tmp_path / "w")
    assert {run.entities.get("ses") for run in found.runs} == {"1", "2"}
    assert len(found.runs_of("01")) == 6
    only_ses2 = inventory(bids_dir, tmp_path / "out", "participant", "-w", tmp_path / "w", "--session-label", "ses-2",
                          "--task", "motor")
    assert {(run.entities["ses"], run.entities["task"]) for run in only_ses2.runs} == {("2", "motor")}
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"bold": {"run": "02"}}))
    run2 = inventory(bids_dir, tmp_path / "out", "participant", "-w", tmp_path / "w", "--bids-filter-file", filters)
    assert {run.entities.get("run") for run in run2.runs} == {"2"}


def test_derivatives_alone_and_given_elsewhere(fmriprep, tmp_path):
    bids_dir = fmriprep("21+")
    alone = inventory(fmriprep_dir(bids_dir), tmp_path / "out", "participant", "-w", tmp_path / "w")
    assert alone.form == "fMRIPrep derivatives" and len(alone.runs) == 9
    assert all(run.events is None for run in alone.runs)
    moved = tmp_path / "elsewhere"
    fmriprep_dir(bids_dir).rename(moved)
    given = inventory(bids_dir, tmp_path / "out", "participant", "-w", tmp_path / "w", "--derivatives", moved)
    assert len(given.runs) == 9 and any(run.events for run in given.runs)


def test_no_derivatives_exit_66(fmriprep, tmp_path, capsys):
    bids_dir = fmriprep("21+")
    import shutil

    shutil.rmtree(fmriprep_dir(bids_dir))
    assert main([str(bids_dir), str(tmp_path / "o"), "participant", "--skip-bids-validation"]) == 66
    assert "--derivatives" in capsys.readouterr().err


def test_unknown_participant_exit_18(fmriprep, tmp_path, capsys):
    code = main([str(fmriprep("21+")), str(tmp_path / "o"), "participant", "--participant-label", "99",
                 "--skip-bids-validation", "-w", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 18 and "99" in err and "01, 02, 03" in err
    assert not (tmp_path / "o" / "sub-99").exists()


def test_unknown_space_exit_18_names_spaces(fmriprep, tmp_path, capsys):
    code = main([str(fmriprep("21+")), str(tmp_path / "o"), "participant", "--space", "T1w",
                 "--skip-bids-validation", "-w", str(tmp_path / "w")])
    assert code == 18 and "MNI152NLin2009cAsym" in capsys.readouterr().err


def test_filters_matching_nothing_exit_18(fmriprep, tmp_path, capsys):
    code = main([str(fmriprep("21+")), str(tmp_path / "o"), "participant", "--task", "nback",
                 "--skip-bids-validation", "-w", str(tmp_path / "w")])
    assert code == 18 and "nback" in capsys.readouterr().err


def _break(bids_dir: Path, how: str) -> Path:
    func = fmriprep_dir(bids_dir) / "sub-02" / "func"
    if how == "no confounds":
        victim = next(func.glob("*task-rest*_desc-confounds_timeseries.tsv"))
        victim.unlink()
    elif how == "short confounds":
        victim = next(func.glob("*task-rest*_desc-confounds_timeseries.tsv"))
        lines = victim.read_text().splitlines()
        victim.write_text("\n".join(lines[:-3]) + "\n")
    elif how == "no mask":
        victim = next(func.glob("*task-rest*_desc-brain_mask.nii.gz"))
        victim.unlink()
    elif how == "no repetition time":
        victim = next(func.glob("*task-rest*_desc-preproc_bold.json"))
        victim.write_text(json.dumps({"SkullStripped": False}))
        for raw_sidecar in [*bids_dir.glob("task-rest_bold.json"), *bids_dir.glob("sub-02/**/*task-rest*_bold.json")]:
            metadata = json.loads(raw_sidecar.read_text())
            metadata.pop("RepetitionTime", None)
            raw_sidecar.write_text(json.dumps(metadata))
    return victim


@pytest.mark.parametrize(("how", "needle"), [
    ("no confounds", "confounds file not found"),
    ("short confounds", "rows but"),
    ("no mask", "brain mask not found"),
    ("no repetition time", "RepetitionTime"),
])
def test_bad_run_stops_or_is_skipped(fmriprep, tmp_path, capsys, how, needle):
    bids_dir = fmriprep("21+")
    victim = _break(bids_dir, how)
    argv = [str(bids_dir), str(tmp_path / "o"), "participant", "--skip-bids-validation", "-w", str(tmp_path / "w"),
            "--nprocs", "1"]
    assert main(argv) == 66
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and victim.name in err[0] and needle in err[0] and "--skip-bad-runs" in err[0]
    assert not (tmp_path / "o" / "sub-01").exists()  # nothing written when the command fails

    assert main([*argv, "--skip-bad-runs"]) == 0
    assert not list((tmp_path / "o" / "sub-02" / "func").glob("*task-rest*"))
    assert len(list((tmp_path / "o" / "sub-01" / "func").glob("*_qc.tsv"))) == 3


def test_hcp_course_layout(hcp, tmp_path):
    found = inventory(hcp("course"), tmp_path / "o", "participant")
    assert found.input_type == "hcp" and found.form == "HCP course layout"
    assert found.participants == ("100307", "100408") and len(found.parcel_names) == 360
    runs = {run.name: run for run in found.runs_of("100307")}
    assert {"sub-100307_task-rest_dir-LR_run-1", "sub-100307_task-rest_dir-RL_run-2",
            "sub-100307_task-motor_dir-RL", "sub-100307_task-emotion_dir-LR",
            "sub-100307_task-gambling_dir-RL"} <= set(runs)
    motor = runs["sub-100307_task-motor_dir-RL"]
    assert motor.n_volumes == 284 and motor.repetition_time == 0.72 and motor.shape == (360,)
    assert motor.events.name == "tfMRI_MOTOR_RL" and (motor.events / "lf.txt").is_file()
    assert runs["sub-100307_task-rest_dir-LR_run-1"].n_volumes == 100


def test_hcp_course_transposed_timeseries(hcp, tmp_path, capsys):
    root = hcp("course")
    path = root / "subjects" / "100408" / "timeseries" / "bold5_Atlas_MSMAll_Glasser360Cortical.npy"
    np.save(path, np.load(path).T)
    assert main([str(root), str(tmp_path / "o"), "participant"]) == 66
    err = capsys.readouterr().err
    assert path.name in err and "transpose" in err


def test_hcp_course_wrong_parcel_count(hcp, tmp_path, capsys):
    root = hcp("course")
    path = root / "subjects" / "100408" / "timeseries" / "bold9_Atlas_MSMAll_Glasser360Cortical.npy"
    np.save(path, np.load(path)[:300])
    assert main([str(root), str(tmp_path / "o"), "participant", "--skip-bad-runs"]) == 0
    assert "300" in capsys.readouterr().err


def test_hcp_bids_style(hcp, tmp_path):
    root = hcp("bids")
    found = inventory(root, tmp_path / "o", "participant", "--task", "motor")
    assert found.form == "BIDS-style parcellated" and len(found.parcel_names) == 360
    run = found.runs_of("100307")[0]
    assert run.entities["task"] == "motor" and run.entities["dir"] in ("LR", "RL")
    assert run.n_volumes == 284 and run.repetition_time == 0.72
    assert run.events is not None and run.events.name.endswith("_events.tsv")


def test_hcp_bids_style_missing_repetition_time(hcp, tmp_path, capsys):
    root = hcp("bids")
    sidecar = next(root.glob("sub-100307/func/*task-motor*_timeseries.json"))
    sidecar.write_text("{}")
    assert main([str(root), str(tmp_path / "o"), "participant"]) == 66
    assert sidecar.name in capsys.readouterr().err


def test_input_type_override(hcp, tmp_path, capsys):
    assert main([str(hcp("course")), str(tmp_path / "o"), "participant", "--input-type", "fmriprep",
                 "--skip-bids-validation"]) == 66
    assert "derivatives/fmriprep" in capsys.readouterr().err
