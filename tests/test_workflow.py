"""End to end on the embedded demo: validation, dry run, participant and group levels, re-runs, failures."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from bidsschematools.schema import load_schema
from conftest import MIXED_SESSIONS, error_lines

from bidsapp import __version__
from bidsapp.cli import main
from bidsapp.demo import truth
from bidsapp.inputs.validation import validator_executable

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_invalid_bids_exit_16(fmriprep, tmp_path, capsys):
    bids_dir = fmriprep("21+")
    (bids_dir / "sub-01" / "func" / "sub-01_task-rest_bold.json").write_text("{not json")
    assert main([str(bids_dir), str(tmp_path / "o"), "participant", "-w", str(tmp_path / "w")]) == 16
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "not valid BIDS" in err[0] and "--skip-bids-validation" in err[0]
    assert not (tmp_path / "o" / "sub-01").exists()


def test_demo_participant_and_group(demo, demo_results):
    out, codes = demo_results
    assert set(codes.values()) == {0}
    description = json.loads((out / "fmriprep" / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "bidsapp"
    assert description["GeneratedBy"][0]["Version"] == __version__
    assert "participant" in description["GeneratedBy"][0]["Command"]
    summaries = sorted((out / "fmriprep").glob("sub-*/func/*_desc-summary_qc.tsv"))
    assert len(summaries) == 8 * 3
    sidecar = json.loads(summaries[0].with_suffix(".json").read_text())
    assert sidecar["Parameters"]["fd_threshold_mm"] == 0.5 and sidecar["Sources"]
    group = pd.read_csv(out / "fmriprep" / "group" / "desc-summary_qc.tsv", sep="\t")
    assert len(group) == 24 and {"group", "age", "sex"} <= set(group.columns)
    assert (group["n_high_motion"] > 0).any()
    report = (out / "fmriprep" / "group" / "desc-onesample_report.html").read_text()
    assert "sub-08" in report and "<table>" in report
    assert "connectome of the strongest edges" in report and "design matrix and contrasts" in report
    hcp_group = pd.read_csv(out / "hcp" / "group" / "desc-summary_qc.tsv", sep="\t")
    assert (hcp_group["n_parcels"] == 360).all() and (hcp_group["n_flat_parcels"] == 0).all()
    hcp_report = (out / "hcp" / "group" / "desc-onesample_report.html").read_text()
    assert "connectome of the strongest edges" in hcp_report  # at the centroids of the dataset's atlas.npz


def makefile_group_options(pipeline: str) -> list[list[str]]:
    """The options of each group command ``make run-demo`` runs on the demo's ``pipeline`` part (without ``-w``)."""
    recipe = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    commands = [shlex.split(line) for line in recipe.splitlines() if line.startswith("\t$(DEMO_BIDSAPP)")]
    options = [words[4:] for words in commands if words[2].endswith(f"/results/{pipeline}") and words[3] == "group"]
    for words in options:
        del words[words.index("-w"):words.index("-w") + 2]
    return options


def test_make_demo_group_step_finds_the_planted_effects(demo, demo_results, tmp_path):
    """``make run-demo``'s fMRIPrep group commands on the demo's outputs: the one-sample test of lf - rf finds both
    planted motor blobs, with their planted signs, surviving FWE (cluster-wise), and nothing elsewhere; then the
    two-sample test, which keeps the one-sample report beside its own."""
    out = tmp_path / "fmriprep"
    shutil.copytree(demo_results[0] / "fmriprep", out)
    options = makefile_group_options("fmriprep")
    assert [words[:2] for words in options] == [["--correction", "fdr"], ["--group-test", "twosample"]]
    for words in options:
        assert main([str(demo.bids_dir), str(out), "group", "-w", str(tmp_path / "work"), *words]) == 0
    assert {path.name for path in (out / "group").glob("*_report.html")} == {
        "desc-onesample_report.html", "desc-twosampleGroup_report.html"}

    stem = out / "group" / "task-motor_space-MNI152NLin2009cAsym_contrast-lfMinusRf"
    mask = nib.load(f"{stem}_desc-meanClustersize_mask.nii.gz")
    survivors = np.argwhere(np.asarray(mask.dataobj) > 0)
    z = np.asarray(nib.load(f"{stem}_stat-z_desc-mean_statmap.nii.gz").dataobj)[tuple(survivors.T)]
    xyz = nib.affines.apply_affine(mask.affine, survivors)
    explained = np.zeros(len(xyz), bool)
    for blob in truth.TASK_BLOBS:
        sign = truth.LF_MINUS_RF_SIGN[blob.name]
        near = np.linalg.norm(xyz - blob.center_mm, axis=1) <= blob.fwhm_mm
        if sign:
            assert near.sum() >= 5 and (np.sign(z[near]) == sign).all(), blob.name
            explained |= near
    assert explained.all()


def validate(output_dir: Path) -> tuple[list[tuple[str, str]], dict]:
    """``bids-validator-deno`` on a derivatives dataset: its errors (code, location) and its summary."""
    result = subprocess.run([str(validator_executable()), "--format", "json", str(output_dir)],
                            capture_output=True, text=True)
    report = json.loads(result.stdout)
    errors = [(issue["code"], issue.get("location")) for issue in report["issues"]["issues"]
              if issue["severity"] == "error"]
    assert (result.returncode == 0) == (not errors), result.stderr
    return errors, report["summary"]


IGNORE_LINE = re.compile(r"\*_(?P<suffix>[A-Za-z0-9]+)\.(json|tsv|nii\.gz|html)|/sub-\*\.html|/group")
PROPOSAL = re.compile(r"# (BEP0[0-9]{2} \(|no BEP yet: )")


@pytest.mark.parametrize("pipeline", ["fmriprep", "hcp"])
def test_outputs_are_a_valid_bids_derivatives_dataset(demo_results, pipeline):
    """0 errors, every participant counted (through its scans tables), and .bidsignore hides only file kinds the
    schema has no rule for, each under the proposal that covers it: a new kind of output is an error here."""
    out, _ = demo_results
    errors, summary = validate(out / pipeline)
    assert errors == []
    assert len(summary["subjects"]) == 8  # the demo's participants, fMRIPrep and HCP alike
    participants = {path.name[len("sub-"):] for path in (out / pipeline).glob("sub-*") if path.is_dir()}
    assert set(summary["subjects"]) == participants
    lines = (out / pipeline / ".bidsignore").read_text().splitlines()
    schema_suffixes = set(load_schema().objects.suffixes)
    ignored, reason = [], ""
    for line in lines:
        if line.startswith("#"):
            reason = line
            continue
        match = IGNORE_LINE.fullmatch(line)
        assert match, line  # a suffix pattern (or one of the two places BIDS does not define)
        assert PROPOSAL.match(reason), (line, reason)  # under the BEP that covers it, or saying plainly none does
        if match["suffix"] is not None:
            assert match["suffix"] not in schema_suffixes, line  # the schema has a rule: follow it instead
            ignored.append(line)
    # group/ is ignored as a folder: each of its files is of an ignored kind, or a survivor mask
    group = [path.name for path in (out / pipeline / "group").iterdir()]
    assert group and all(any(fnmatch(name, pattern) for pattern in ignored) or name.endswith(("_mask.nii.gz",
                                                                                               "_mask.json"))
                         for name in group), group


def test_session_subject_and_seed_outputs_validate(mixed_sessions):
    """Per-run, per-session and subject-level outputs, seed maps and covariance matrices: 0 errors."""
    _, out = mixed_sessions
    names = {path.name for path in out.rglob("*")}
    assert any("_ses-" in name and "_run-" not in name and name.endswith("_relmat.tsv") for name in names)
    assert any("_roi-pcc_" in name for name in names) and any("_stat-covariance_" in name for name in names)
    errors, summary = validate(out)
    assert errors == []
    assert sorted(summary["subjects"]) == sorted(MIXED_SESSIONS) and sorted(summary["sessions"]) == ["1", "2"]
    scans = pd.read_csv(out / "sub-02" / "ses-1" / "sub-02_ses-1_scans.tsv", sep="\t")
    summaries = sorted((out / "sub-02" / "ses-1" / "func").glob("*_desc-summary_qc.tsv"))
    assert scans["filename"].tolist() == [f"func/{path.name}" for path in summaries]
    expected = pd.concat([pd.read_csv(path, sep="\t") for path in summaries], ignore_index=True)
    pd.testing.assert_frame_equal(scans.drop(columns="filename"), expected)


def data_files(root: Path) -> set[Path]:
    """Every file under ``root`` except logs, relative to it."""
    return {path.relative_to(root) for path in root.rglob("*") if path.is_file() and "logs" not in path.parts}


def assert_same_data(path: Path, reference: Path) -> None:
    """Two outputs hold the same numbers (tables and images) or the same JSON."""
    if path.name.endswith(".tsv"):
        pd.testing.assert_frame_equal(pd.read_csv(path, sep="\t"), pd.read_csv(reference, sep="\t"), rtol=1e-6)
    elif path.name.endswith(".nii.gz"):
        np.testing.assert_allclose(nib.load(path).get_fdata(), nib.load(reference).get_fdata(), rtol=1e-5, atol=1e-6)
    elif path.suffix == ".json" and path.name != "dataset_description.json":
        assert json.loads(path.read_text()).keys() == json.loads(reference.read_text()).keys()


def test_concurrent_participant_jobs_lose_nothing(demo, demo_results, tmp_path):
    """As a scheduler's array runs it: four jobs of two participants each write one OUTPUT_DIR and one work
    directory at the same time; then the group level. Everything equals the single-job run."""
    out, work = tmp_path / "out", tmp_path / "work"
    jobs = [subprocess.Popen([sys.executable, "-m", "bidsapp", str(demo.bids_dir), str(out), "participant",
                              "--participant-label", *labels, "--nprocs", "1", "-w", str(work),
                              "--skip-bids-validation"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for labels in (("01", "02"), ("03", "04"), ("05", "06"), ("07", "08"))]
    for job in jobs:
        assert job.wait() == 0, job.stderr.read()
    assert main([str(demo.bids_dir), str(out), "group", "-w", str(work), "--skip-bids-validation"]) == 0
    reference = demo_results[0] / "fmriprep"
    assert data_files(out) == data_files(reference)
    assert not [path for path in data_files(out) if path.name.startswith(".") and path.name != ".bidsignore"]
    for path in sorted(data_files(out)):
        assert_same_data(out / path, reference / path)


def test_rerun_skips_complete_outputs(demo, demo_results, capsys):
    out, _ = demo_results
    summaries = sorted((out / "fmriprep").glob("sub-*/func/*_desc-summary_qc.tsv"))
    before = {path: path.stat().st_mtime_ns for path in summaries}
    assert main([str(demo.bids_dir), str(out / "fmriprep"), "participant", "--participant-label", "01", "02",
                 "-w", str(out / "work"), "--nprocs", "1", "--skip-bids-validation"]) == 0
    assert {path: path.stat().st_mtime_ns for path in summaries} == before


def test_dry_run_writes_nothing(demo, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(demo.bids_dir), str(out), "participant", "--dry-run", "--participant-label", "03",
                 "-w", str(tmp_path / "w"), "--mem-gb", "4"]) == 0
    plan = capsys.readouterr().out
    assert not out.exists()
    assert "sub-03: 3 runs" in plan and "GB" in plan
    assert "sub-03_task-rest_desc-summary_qc.tsv" in plan
    assert "desc-preproc_bold.nii.gz" in plan and "confounds" in plan


def test_group_before_participant_exit_18(demo, tmp_path, capsys):
    assert main([str(demo.bids_dir), str(tmp_path / "o"), "group", "-w", str(tmp_path / "w")]) == 18
    assert "run the participant level first" in capsys.readouterr().err


def test_group_lists_missing_participants(demo, demo_results, tmp_path, capsys):
    out, _ = demo_results
    partial = tmp_path / "partial"
    shutil.copytree(out / "fmriprep", partial)
    shutil.rmtree(partial / "group")
    shutil.rmtree(partial / "sub-05")
    assert main([str(demo.bids_dir), str(partial), "group", "-w", str(tmp_path / "w")]) == 0
    assert "sub-05" in capsys.readouterr().err
    group = pd.read_csv(partial / "group" / "desc-summary_qc.tsv", sep="\t")
    assert "sub-05" not in set(group["participant_id"]) and len(group) == 21


def test_internal_error_exit_1_with_traceback_in_log(demo, tmp_path, capsys, monkeypatch):
    import bidsapp.participant.level

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(bidsapp.participant.level, "run_participant_level", explode)
    out = tmp_path / "o"
    assert main([str(demo.bids_dir), str(out), "participant", "--skip-bids-validation",
                 "-w", str(tmp_path / "w")]) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "RuntimeError: boom" in err[0] and "traceback" in err[0]
    log = next((out / "logs").glob("*.log")).read_text()
    assert "Traceback" in log and "boom" in log


def test_output_dir_of_another_pipeline_exit_2(demo, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "dataset_description.json").write_text(json.dumps(
        {"Name": "x", "BIDSVersion": "1.10.0", "DatasetType": "derivative", "GeneratedBy": [{"Name": "fMRIPrep"}]}))
    assert main([str(demo.hcp_dir), str(out), "participant"]) == 2
    assert "dataset_description.json" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["dataset_description.json"]  # not even a log written


def test_planted_default_mode_group_difference_found(demo, tmp_path):
    """Seed 001's analysis: within-network connectivity of the planted nodes compared between groups."""
    out, work = tmp_path / "out", tmp_path / "work"
    common = ["--task", "rest", "-w", str(work), "--skip-bids-validation"]
    assert main([str(demo.bids_dir), str(out), "participant", "--atlas", str(demo.network_atlas), "--nprocs", "2",
                 *common]) == 0
    assert main([str(demo.bids_dir), str(out), "group", "--group-test", "twosample", "--group-column", "group",
                 "--correction", "fdr", *common]) == 0
    table = pd.read_csv(next((out / "group").glob("task-rest_*_desc-networksControlMinusPatient_networks.tsv")),
                        sep="\t").set_index(["node_a", "node_b"])
    assert table.loc[("default_mode", "default_mode"), "t"] > 0
    assert table["survives_fdr"].to_dict() == {pair: pair == ("default_mode", "default_mode") for pair in table.index}
