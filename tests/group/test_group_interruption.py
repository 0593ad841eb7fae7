"""Clean interruption of the group level, end to end: ``bidsapp ... group`` as a real process, during permutations.

Eight small fMRIPrep participants (two motor runs each) are processed at participant level once. The group
level (two-sample test, FWE by 3000 random permutations of 8 rows: 8! = 40320 exist) is signalled once its
first analysis is written, while the next one's permutations run. It must exit 143 with one line saying how
many analyses finished, leave no temporary file and no group summary, and a re-run must end with the outputs
of an uninterrupted run.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import error_lines

from bidsapp.demo import write_fmriprep_dataset

pytestmark = pytest.mark.slow
PARTICIPANTS = [f"{index:02d}" for index in range(1, 9)]


def _command(bids: Path, out: Path, level: str = "group") -> list[str]:
    options = ["--task", "motor"]
    if level == "group":
        options += ["--group-test", "twosample", "--group-column", "group", "--correction", "fwe", "--n-perm", "3000",
                    "--random-seed", "11"]
    return [sys.executable, "-m", "bidsapp", str(bids), str(out), level, "--skip-bids-validation", "--nprocs", "2",
            "-w", str(out.parent / f"work_{out.name}"), *options]


def _run(bids: Path, out: Path, level: str = "group") -> subprocess.CompletedProcess:
    return subprocess.run(_command(bids, out, level), capture_output=True, text=True, timeout=1800)


def _group_files(out: Path) -> dict[str, Path]:
    return {path.name: path for path in sorted((out / "group").glob("*")) if path.is_file()} \
        if (out / "group").is_dir() else {}


def _temporaries(out: Path) -> list[str]:
    return [str(path) for path in out.rglob("*") if ".tmp" in path.name
            or (path.name.startswith(".") and path.name != ".bidsignore")]


@pytest.fixture(scope="module")
def participant_out(tmp_path_factory):
    """The participant level's outputs, and an uninterrupted group run on a copy of them."""
    root = tmp_path_factory.mktemp("group_interruption")
    bids = root / "bids"
    write_fmriprep_dataset(bids, participants=PARTICIPANTS, confounds_naming="21+", n_task_runs=2,
                           resolution_mm=8.0, seed=4)
    out = root / "participant"
    result = _run(bids, out, "participant")
    assert result.returncode == 0, result.stderr
    reference = root / "reference"
    shutil.copytree(out, reference, ignore=shutil.ignore_patterns("logs"))
    result = _run(bids, reference)
    assert result.returncode == 0, result.stderr
    return bids, out, reference


def test_sigterm_during_permutations_then_rerun_equals_uninterrupted(participant_out, tmp_path):
    bids, participant, reference = participant_out
    out = tmp_path / "out"
    shutil.copytree(participant, out, ignore=shutil.ignore_patterns("logs"))
    expected = _group_files(reference)
    n_analyses = len({path.name.split("_", 1)[1] for pattern in ("*_stat-effect_statmap.nii.gz", "*_statmap.tsv",
                                                                  "*_desc-fisherz_relmat.tsv")
                      for path in participant.glob(f"sub-*/func/{pattern}")
                      if "_run-" not in path.name})  # the subject level's results, not the runs they combine
    assert n_analyses >= 3

    process = subprocess.Popen(_command(bids, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen: list[str] = []
    try:  # the log says when each analysis starts: signal once the second one has started its permutations
        while sum("twosample test over" in line for line in seen) < 2:
            line = process.stderr.readline()
            assert line or process.poll() is None, "".join(seen)
            seen.append(line)
        process.send_signal(signal.SIGTERM)  # a scheduler's time limit
        _, rest = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = "".join(seen) + rest
    assert process.returncode == 143, stderr
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    finished = int(lines[0].split("interrupted (SIGTERM): ")[1].split(" of ")[0])
    assert lines[0].endswith(f" of {n_analyses} group analyses finished; completed outputs are kept; a re-run does "
                             "the rest")
    assert 1 <= finished < n_analyses
    assert _temporaries(out) == []
    written = _group_files(out)
    assert set(written) < set(expected) and "desc-summary_qc.tsv" not in written

    result = _run(bids, out)
    assert result.returncode == 0, result.stderr
    found = _group_files(out)
    assert list(found) == list(expected)
    for name, path in expected.items():
        if name.endswith(".tsv"):
            assert found[name].read_bytes() == path.read_bytes(), name
        elif name.endswith(".nii.gz"):
            assert np.array_equal(np.asarray(nib.load(found[name]).dataobj), np.asarray(nib.load(path).dataobj),
                                  equal_nan=True), name
        elif name.endswith(".json"):  # the same record but for the paths of this OUTPUT_DIR
            mine, theirs = json.loads(found[name].read_text()), json.loads(path.read_text())
            for content in (mine, theirs):
                content.pop("Sources", None)
            assert json.dumps(mine).replace(str(out), "OUT") == json.dumps(theirs).replace(str(reference), "OUT")
