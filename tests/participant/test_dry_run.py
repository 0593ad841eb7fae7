"""``--dry-run`` at the participant level lists exactly what the real run writes, and writes nothing itself."""

from __future__ import annotations

import re
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
