"""``--dry-run --slurm-script FILE``: the job-array and group scripts, their sizes, and the refusals (exit 2).

The scripts are run here with bash as SLURM would run a task (``SLURM_ARRAY_TASK_ID`` set); ``make slurm-check``
submits them to a real SLURM cluster.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import error_lines

from bidsapp.cli import main
from bidsapp.slurm import ArrayTask, resources, time_limit

BIDSAPP = str(Path(sys.executable).parent / "bidsapp")


def _main(*args: object) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main([str(arg) for arg in args])


def _sbatch(script: str) -> dict[str, str]:
    """The script's ``#SBATCH --key=value`` directives."""
    return dict(re.findall(r"^#SBATCH --([a-z-]+)=(\S+)", script, flags=re.MULTILINE))


def test_resources_margins_and_floors():
    tasks = [ArrayTask("01", seconds=3600.0, memory_gb=3.0), ArrayTask("02", seconds=600.0, memory_gb=5.0)]
    sized = resources(tasks, cpus=4)
    assert sized.cpus == 4
    assert sized.memory_mb == math.ceil(1.5 * 5.0 * 1024)  # the largest estimate, 1.5 x
    assert sized.time_limit == "02:00:00"  # the longest estimate, 2 x
    small = resources([ArrayTask("01", seconds=5.0, memory_gb=0.3)], cpus=1)
    assert (small.memory_mb, small.time_limit) == (1024, "00:15:00")  # the floors
    assert time_limit(24 * 60 + 61) == "1-01:01:00" and time_limit(59) == "00:59:00"


@pytest.mark.slow
def test_array_script_runs_each_participant_and_group_script_follows(fmriprep, tmp_path, capsys):
    bids, out, work, jobs = fmriprep("21+"), tmp_path / "out", tmp_path / "work", tmp_path / "jobs"
    jobs.mkdir()
    config = tmp_path / "options.yml"
    config.write_text("n-perm: 100\nskip-bids-validation: true\nparticipant-label: ['01', '03']\n")
    script = jobs / "array.sbatch"
    assert _main(bids, out, "participant", "-w", work, "--config", config, "--dry-run", "--slurm-script",
                 script, "--correction", "fdr", "fwe", "--nprocs", "2") == 0
    plan = capsys.readouterr().out
    assert not out.exists()
    group_script = jobs / "array_group.sbatch"
    text, group_text = script.read_text(), group_script.read_text()
    assert f"SLURM job array: {script} (2 tasks" in plan and str(group_script) in plan

    directives = _sbatch(text)
    assert directives["array"] == "1-2" and "labels=(01 03)" in text
    assert directives["cpus-per-task"] == "2" and directives["chdir"] == os.getcwd()
    # --mem: 1.5 x the largest participant's peak-memory estimate printed by the plan (two decimals), at least 1 GB
    memory_gb = max(float(s) for s in re.findall(r"^sub-\d+: .* peak memory ~([\d.]+) GB", plan, flags=re.MULTILINE))
    assert abs(int(directives["mem"].removesuffix("M")) - max(1024, 1.5 * memory_gb * 1024)) <= 1.5 * 0.005 * 1024 + 1
    seconds = max(float(s) for s in re.findall(r"^sub-\d+: .* time ~(\d+) s", plan, flags=re.MULTILINE))
    assert directives["time"] == time_limit(max(15, math.ceil(2 * seconds / 60)))
    # the dry run's options, a --config file's included, but neither --config, --dry-run nor --slurm-script
    assert "--n-perm 100" in text and "--skip-bids-validation" in text and "--correction fdr fwe" in text
    assert "--config" not in text.split("#SBATCH --chdir")[1].split("labels=")[1]
    assert "--dry-run" not in text.split("labels=")[1] and "--slurm-script" not in text.split("labels=")[1]
    assert "--participant-label 01 03" in group_text and "--dependency=afterok" in group_text
    assert "--n-perm 100" in group_text and "--correction fdr fwe" in group_text

    env = {**os.environ, "BIDSAPP": BIDSAPP, "SLURM_CPUS_PER_TASK": "1"}
    for task in ("2", "1"):
        done = subprocess.run(["bash", str(script)], env={**env, "SLURM_ARRAY_TASK_ID": task},
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        participants = sorted(path.name for path in out.glob("sub-*") if path.is_dir())
        assert participants == (["sub-03"] if task == "2" else ["sub-01", "sub-03"])
    done = subprocess.run(["bash", str(group_script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(out / "group" / "desc-summary_qc.tsv", sep="\t")
    assert set(summary["participant_id"]) == {"sub-01", "sub-03"}


@pytest.mark.parametrize("where", ["output", "bids"])
def test_script_inside_a_dataset_exit_2(fmriprep, tmp_path, capsys, where):
    bids, out = fmriprep("21+"), tmp_path / "out"
    out.mkdir()
    script = (out if where == "output" else bids / "code") / "jobs.sbatch"
    script.parent.mkdir(exist_ok=True)
    assert _main(bids, out, "participant", "--dry-run", "--skip-bids-validation", "--slurm-script", script) == 2
    lines = error_lines(capsys.readouterr().err)
    name = "OUTPUT_DIR" if where == "output" else "BIDS_DIR"
    assert lines == [f"bidsapp: error: --slurm-script {script} is inside {name} "
                     f"{out if where == 'output' else bids}; write it elsewhere, e.g. the folder you submit jobs from"]
    assert not script.exists() and list(out.iterdir()) == []


@pytest.mark.parametrize("extra", [(), ("--dry-run",)], ids=["no-dry-run", "group-level"])
def test_script_only_with_participant_dry_run_exit_2(fmriprep, tmp_path, capsys, extra):
    bids, out, script = fmriprep("21+"), tmp_path / "out", tmp_path / "jobs.sbatch"
    level = "group" if extra else "participant"
    assert _main(bids, out, level, *extra, "--skip-bids-validation", "--slurm-script", script) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and f"--slurm-script {script}" in lines[0] and "add --dry-run" in lines[0]
    assert not script.exists() and not out.exists()


def test_script_folder_missing_exit_2(fmriprep, tmp_path, capsys):
    script = tmp_path / "nowhere" / "jobs.sbatch"
    assert _main(fmriprep("21+"), tmp_path / "out", "participant", "--dry-run", "--skip-bids-validation",
                 "--slurm-script", script) == 2
    lines = error_lines(capsys.readouterr().err)
    assert lines == [f"bidsapp: error: --slurm-script {script}: its folder does not exist; give a file name in an "
                     "existing folder"]
