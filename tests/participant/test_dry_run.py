"""``--dry-run`` at the participant level lists exactly what the real run writes, and writes nothing itself.

Its peak-memory estimate is checked against the real run's peak resident memory (a factor-of-2 accuracy check).
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from bidsapp.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]


def _main(*args: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(list(args))


def _planned(plan: str) -> set[Path]:
    """The paths under the plan's ``Outputs to write (N, ...)`` heading; N must be their number."""
    lines = plan.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Outputs to write"))
    count = int(re.match(r"Outputs to write \((\d+)", lines[start]).group(1))
    paths = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        paths.append(Path(line.strip()))
    assert len(paths) == count
    assert len(set(paths)) == count, "a planned output is listed twice"
    return set(paths)


def _written(out: Path) -> set[Path]:
    """Data files the run wrote: sidecars, logs and the dataset's own files (description, ignore list) left out."""
    return {path for path in out.rglob("*") if path.is_file() and "logs" not in path.relative_to(out).parts
            and path.relative_to(out) not in (Path("dataset_description.json"), Path(".bidsignore"))
            and not (path.suffix == ".json" and _sidecar(path))}


def _sidecar(path: Path) -> bool:
    """True for a JSON file that is the sidecar of another file."""
    stem = path.name[:-len(".json")]
    return any(other.name.startswith(stem + ".") for other in path.parent.iterdir() if other != path)


def _dry_then_real(bids: Path, tmp_path: Path, capsys, *options: str) -> tuple[set[Path], set[Path], str]:
    """Run the dry run, check it wrote no output, then the real run; the planned and the written outputs."""
    out, work = tmp_path / "out", tmp_path / "work"
    common = (str(bids), str(out), "participant", "-w", str(work), "--nprocs", "1", *options)
    capsys.readouterr()
    assert _main(*common, "--dry-run") == 0
    plan = capsys.readouterr().out
    assert not out.exists(), "the dry run wrote to OUTPUT_DIR"  # the work dir may hold the index cache
    assert _main(*common) == 0
    return _planned(plan), _written(out), plan


def test_fmriprep_dry_run_lists_what_the_run_writes(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    planned, written, plan = _dry_then_real(bids, tmp_path, capsys, "--participant-label", "01",
                                            "--seeds", "PCC=0,-52,26", "--contrast", "lfMinusRf=lf - rf")
    assert any(path.name.endswith("_bold.nii.gz") or path.name.endswith("_statmap.nii.gz") for path in written)
    assert planned == written
    assert re.search(r"^Estimate: .*time ~\d+ s", plan, re.M)
    assert "measured" in plan


def test_hcp_dry_run_lists_what_the_run_writes(hcp, tmp_path, capsys):
    bids = hcp("course")
    planned, written, plan = _dry_then_real(bids, tmp_path, capsys, "--participant-label", "100307",
                                            "--contrast", "lf=lf")
    assert any(path.suffix == ".tsv" for path in written)
    assert planned == written
    assert "measured" in plan


#: Runs a command and prints its peak resident memory in KB: the largest of its processes (Linux ``ru_maxrss``).
_PEAK_RSS = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True); sys.exit(code)")


def _measured(*command: str) -> tuple[str, float]:
    """Run ``bidsapp *command`` in a fresh process; its stdout and its peak resident memory in MB."""
    result = subprocess.run([sys.executable, "-c", _PEAK_RSS, sys.executable, "-m", "bidsapp", *command],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    *plan, peak_kb = result.stdout.strip().splitlines()
    return "\n".join(plan), int(peak_kb) / 1024


@pytest.mark.parametrize("dataset", ["bids_dir", "hcp_dir"])
def test_peak_memory_estimate_within_a_factor_of_2_of_the_real_run(demo, tmp_path, dataset):
    """The plan's peak memory, scaled from the measured read, against the real run's peak RSS (one worker)."""
    out, work = tmp_path / "out", tmp_path / "work"
    labels = ["01", "02"] if dataset == "bids_dir" else ["100307"]
    common = (str(getattr(demo, dataset)), str(out), "participant", "-w", str(work), "--nprocs", "1",
              "--skip-bids-validation", "--participant-label", *labels)
    plan, dry_peak = _measured(*common, "--dry-run")
    match = re.search(r"^Estimate: 1 participants at a time, peak memory ~([\d.]+) GB \(([\d.]+) GB per worker\)",
                      plan, re.M)
    assert match is not None, plan
    estimate = float(match[1]) * 1024
    assert match[1] == match[2]  # one worker: the main process does the work
    assert "at most" in plan and "MB; a worker's libraries" in plan  # what was measured
    assert not out.exists() and not work.exists()  # the dry run wrote nothing, no index cache either
    _, real_peak = _measured(*common)
    assert real_peak / 2 <= estimate <= 2 * real_peak, (estimate, real_peak)


def test_dry_run_reuses_a_current_index_cache_and_writes_nothing(fmriprep, tmp_path, capsys):
    bids = fmriprep("21+")
    out, work = tmp_path / "out", tmp_path / "work"
    common = (str(bids), str(out), "participant", "-w", str(work), "--participant-label", "01", "--task", "rest",
              "--skip-bids-validation")
    assert _main(*common, "--dry-run") == 0
    assert "in memory (a dry run writes no cache" in capsys.readouterr().err
    assert not work.exists() and not out.exists()
    assert _main(*common) == 0  # the real run caches the index
    before = {path: path.stat().st_mtime_ns for path in work.rglob("*")}
    assert any(path.name == "runs-sub-01.pickle" for path in before)  # the run checks of participant 01
    capsys.readouterr()
    assert _main(*common, "--dry-run") == 0
    assert "Reusing the dataset index cached in" in capsys.readouterr().err
    assert {path: path.stat().st_mtime_ns for path in work.rglob("*")} == before
