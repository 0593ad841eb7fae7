"""No analysis sinks the others: an inestimable analysis is skipped, listed in the log, the report and the dry run.

On a small fMRIPrep dataset (3 participants; participants.tsv: sub-01 and sub-03 control, sub-02 patient)
processed at participant level once (motor task, contrasts lf, rf and the default pairs: 8 analyses, as
voxel maps and parcel tables). Each test plants one fault in a copy of the participant-level outputs; the
expected analyses come from the files on disk, the expected permutation counts from first principles.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import error_lines, snapshot
from conftest import motor_group as group

from bidsapp.cli import main
from bidsapp.outputs.writer import CHECKSUM_KEY, SIZE_KEY, file_checksum

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def participant_out(fmriprep_templates, tmp_path_factory):
    """Participant level on the motor task with single-condition contrasts lf, rf."""
    bids = fmriprep_templates["21+"]
    out = tmp_path_factory.mktemp("nosink") / "out"
    assert main([str(bids), str(out), "participant", "--skip-bids-validation", "--task", "motor", "--contrast",
                 "lf=lf", "rf=rf", "-w", str(out.parent / "work"), "--nprocs", "2"]) == 0
    return bids, out


def analyses(out: Path) -> dict[str, str]:
    """The analyses the participant-level files make: name (entities after ``sub``) to kind.

    The subject level's results (no ``run``) are analysed, not the runs they combine.
    """
    found = {}
    for path in out.glob("sub-*/func/*_contrast-*_stat-effect_statmap.nii.gz"):
        if "_run-" in path.name:
            continue
        found[path.name.split("_", 1)[1].replace("_stat-effect_statmap.nii.gz", "")] = "voxels"
    for path in out.glob("sub-*/func/*_contrast-*_statmap.tsv"):
        if "_run-" in path.name:
            continue
        found[path.name.split("_", 1)[1].replace("_statmap.tsv", "")] = "parcels"
    for path in out.glob("sub-*/func/*_desc-fisherz_relmat.tsv"):
        if "_run-" in path.name:
            continue
        found[path.name.split("_", 1)[1].replace("_relmat.tsv", "")] = "edges"
    return found


def stem(name: str) -> str:
    """An analysis's name without its ``desc`` (group outputs put the group contrast there)."""
    return name.split("_desc-")[0]


def replant(path: Path, change) -> None:
    """Change a participant-level file and record its new size and SHA-256, so it is intact but different."""
    change(path)
    sidecar = path.with_name(path.name.split(".")[0] + ".json")
    content = json.loads(sidecar.read_text())
    content[SIZE_KEY], content[CHECKSUM_KEY] = path.stat().st_size, file_checksum(path)
    sidecar.write_text(json.dumps(content))


def other_grid(path: Path) -> None:
    """The same map on a grid one voxel narrower."""
    img = nib.load(path)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[1:], img.affine), path)


def renamed_parcel(path: Path) -> None:
    """The first parcel (row of a contrast table, node of a matrix) renamed."""
    first_column = "name" if path.name.endswith("_statmap.tsv") else "node"
    table = pd.read_csv(path, sep="\t")
    table.loc[0, first_column] = "not_a_parcel"
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")


def plan_sections(plan: str) -> tuple[dict[str, str], dict[str, str], dict[str, list[str]]]:
    """From the dry run: analyses to run (name to its header line), skipped (name to reason), and per analysis
    to run its indented detail lines."""
    to_run, skipped, details = {}, {}, {}
    section, current = None, None
    for line in plan.splitlines():
        if line.startswith("Analyses to run"):
            section = "run"
        elif line.startswith("Analyses skipped"):
            section = "skipped"
        elif not line.startswith("  "):
            section = None
        elif section == "run" and not line.startswith("    "):
            current = line.split(" (")[0].strip()
            to_run[current], details[current] = line, []
        elif section == "run":
            details[current].append(line.strip())
        elif section == "skipped":
            name, reason = re.match(r"\s+(\S+) \(\w+\): (.*)", line).groups()
            skipped[name] = reason
    return to_run, skipped, details


def test_one_group_level_skips_that_analysis_only_and_dry_run_agrees(output_copy, capsys):
    bids, out = output_copy
    expected = analyses(out)
    for path in out.glob("sub-02/func/*_contrast-lf_*"):  # lf: only the two controls are left
        path.unlink()
    options = ("--group-test", "twosample", "--group-column", "group", "--correction", "fdr", "fwe",
               "--n-perm", "100", "--random-seed", "7")
    before = snapshot(out)
    assert group(bids, out, *options, "--dry-run") == 0
    captured = capsys.readouterr()
    assert snapshot(out) == before
    to_run, skipped, details = plan_sections(captured.out)
    lf = {name for name in expected if name.endswith("contrast-lf")}
    assert len(lf) == 2 and len(expected) == 5  # lf and rf as maps and tables, the subject level's connectivity
    assert set(skipped) == lf and set(to_run) == set(expected) - lf
    assert all("--group-column 'group' has one level (control)" in reason for reason in skipped.values())
    for name in to_run:
        assert "twosample, N = 3 (control 2, patient 1)" in to_run[name]
        assert details[name][:2] == ["design columns: group[control], group[patient]",
                                     "contrasts: controlMinusPatient (t)"]
        # 3 rows: 3! = 6 orderings, 2 of which (the controls swapped) give back the data: smallest p 2/6
        assert any(line.startswith("contrast controlMinusPatient: fwe left out: only 6 permutations")
                   and "smallest FWE p value is 0.333" in line for line in details[name])

    assert group(bids, out, *options) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "skipped," in line]
    assert len(warnings) == 2 and all("WARNING" in line for line in warnings)
    assert {name for name in lf if any(f"{name}: skipped, --group-column 'group' has one level" in line
                                       for line in warnings)} == lf
    written = sorted(path.name for path in (out / "group").iterdir())
    assert not any("contrast-lf_" in name for name in written)
    for name, kind in expected.items():
        if name in lf:
            continue
        assert any(f.startswith(f"{stem(name)}_desc-") and "ontrolMinusPatient" in f for f in written), name
        if kind != "voxels":  # the dry run said fwe is left out: the table has no FWE column
            table = pd.read_csv(next((out / "group").glob(f"{stem(name)}_desc-*ontrolMinusPatient_*.tsv")), sep="\t")
            assert "p_fdr" not in table and "survives_fdr" in table and "p_fwe" not in table
    assert not any("Fwe" in name for name in written)

    report = (out / "group" / "desc-twosampleGroup_report.html").read_text()
    skipped_part = report[report.index("Analyses skipped"):]
    assert all(name in skipped_part for name in lf) and "has one level" in skipped_part
    assert report.count("N per cell: control: 2, patient: 1") == len(expected) - len(lf)
    assert all(f"<td>sub-{label}</td>" in report for label in ("01", "02", "03"))  # design rows
    assert "<td>controlMinusPatient</td>" in report
    summary = json.loads((out / "group" / "desc-summary_qc.json").read_text())
    assert set(summary["Parameters"]["skipped"]) == lf


def test_grid_mismatch_skips_that_analysis_only(output_copy, capsys):
    bids, out = output_copy
    expected = analyses(out)
    victim = next(out.glob("sub-03/func/*_contrast-rf_stat-effect_statmap.nii.gz"))
    replant(victim, other_grid)
    name = victim.name.split("_", 1)[1].replace("_stat-effect_statmap.nii.gz", "")
    assert group(bids, out, "--correction", "fdr", "--dry-run") == 0
    to_run, skipped, _ = plan_sections(capsys.readouterr().out)
    assert list(skipped) == [name] and str(victim) in skipped[name] and "grid" in skipped[name]
    assert set(to_run) == set(expected) - {name}
    assert all("onesample, N = 3 (all 3)" in line for line in to_run.values())

    assert group(bids, out, "--correction", "fdr") == 0
    err = capsys.readouterr().err
    assert f"{name}: skipped, {victim}: its grid" in err
    written = [path.name for path in (out / "group").iterdir()]
    assert not any(f.startswith(f"{name}_") for f in written)
    assert all(any(f.startswith(f"{stem(other)}_desc-") for f in written) for other in set(expected) - {name})
    report = (out / "group" / "desc-onesample_report.html").read_text()
    assert name in report[report.index("Analyses skipped"):]


def test_incomplete_output_left_out_and_listed(output_copy, capsys):
    bids, out = output_copy
    victim = next(out.glob("sub-03/func/*_contrast-lf_statmap.tsv"))
    victim.write_bytes(victim.read_bytes()[:100])  # truncated; its sidecar still records the whole file
    name = victim.name.split("_", 1)[1].replace("_statmap.tsv", "")
    assert group(bids, out, "--correction", "fdr") == 0
    err = capsys.readouterr().err
    assert f"sub-03 left out, {victim} is incomplete" in err
    sidecar = json.loads((out / "group" / f"{name}_desc-mean_statmap.json").read_text())
    assert sidecar["Participants"] == 2 and sidecar["LeftOut"] == ["03"]
    table = pd.read_csv(out / "group" / f"{name}_desc-mean_statmap.tsv", sep="\t").set_index("name")
    effects = np.array([pd.read_csv(path, sep="\t").set_index("name").loc[table.index, "effect"]
                        for path in sorted(out.glob(f"sub-0[12]/func/sub-0?_{name}_statmap.tsv"))])
    assert table["mean"].to_numpy() == pytest.approx(effects.mean(axis=0), rel=1e-9, nan_ok=True)  # only sub-01 and sub-02


@pytest.mark.parametrize("dry_run", [False, True])
def test_every_analysis_inestimable_exit_18_writes_nothing(output_copy, capsys, dry_run):
    bids, out = output_copy
    expected = analyses(out)
    for path in out.glob("sub-02/func/*_contrast-*_stat-effect_statmap.nii.gz"):
        replant(path, other_grid)
    for path in [*out.glob("sub-03/func/*_contrast-*_statmap.tsv"), *out.glob("sub-03/func/*_desc-fisherz_relmat.tsv")]:
        replant(path, renamed_parcel)
    before = snapshot(out)
    assert group(bids, out, "--correction", "fdr", *(["--dry-run"] if dry_run else [])) == 18
    err = error_lines(capsys.readouterr().err)
    assert len(err) == len(expected) == 5
    for name, kind in expected.items():
        line = next(line for line in err if line.startswith(f"bidsapp: error: {name}: "))
        assert {"voxels": f"sub-02_{name}_stat-effect_statmap.nii.gz: its grid",
                "parcels": f"sub-03_{name}_statmap.tsv: its parcels differ",
                "edges": f"sub-03_{name}_relmat.tsv: its parcels differ"}[kind] in line
    assert snapshot(out) == before
    assert not (out / "group").exists()


def test_bad_confounds_input_does_not_stop_the_group_level(output_copy, tmp_path, capsys):
    source, out = output_copy
    bids = tmp_path / "bids"
    shutil.copytree(source, bids)
    confounds = next(bids.glob("derivatives/fmriprep/sub-01/func/sub-01_task-motor_run-1_desc-confounds_timeseries.tsv"))
    lines = confounds.read_text().splitlines(keepends=True)
    confounds.write_text("".join(lines[:-10]))  # 10 rows fewer than the BOLD run's volumes
    # the participant level rejects the run: the planted fault is real
    assert main([str(bids), str(tmp_path / "fresh"), "participant", "--skip-bids-validation", "--task", "motor",
                 "-w", str(tmp_path / "w")]) == 66
    assert str(confounds) in capsys.readouterr().err
    # the group level reads sub-01's participant-level outputs, which are complete
    assert main([str(bids), str(out), "group", "--skip-bids-validation", "--task", "motor", "--correction", "fdr",
                 "-w", str(tmp_path / "w")]) == 0
    summary = pd.read_csv(out / "group" / "desc-summary_qc.tsv", sep="\t")
    assert "sub-01_task-motor_run-1" in set(summary["run"]) and len(summary) == 6
    sidecar = json.loads(next((out / "group").glob("*contrast-lf_desc-mean_statmap.json")).read_text())
    assert sidecar["Participants"] == 3 and sidecar["LeftOut"] == []
