"""Shared fixtures: small synthetic datasets made on the fly with bidsapp.demo (no download)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bidsapp.demo import make_demo, write_fmriprep_dataset, write_hcp_bids_dataset, write_hcp_course_dataset

PARTICIPANTS = ["01", "02", "03"]


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The full embedded demo (8 participants), built once per test session."""
    return make_demo(tmp_path_factory.mktemp("demo"), n_participants=8, seed=0)


@pytest.fixture(scope="session")
def demo_results(demo, tmp_path_factory):
    """Participant then group level on the demo's fMRIPrep and HCP parts, run once per test session."""
    from bidsapp.cli import main

    out = tmp_path_factory.mktemp("results")
    work = out / "work"
    codes = {}
    for name, bids_dir in (("fmriprep", demo.bids_dir), ("hcp", demo.hcp_dir)):
        for level in ("participant", "group"):
            codes[name, level] = main([str(bids_dir), str(out / name), level, "-w", str(work), "--nprocs", "2"])
    return out, codes


@pytest.fixture(scope="session")
def fmriprep_templates(tmp_path_factory):
    """Small fMRIPrep datasets, one per confounds naming, built once; copy before changing them."""
    root = tmp_path_factory.mktemp("fmriprep_templates")
    datasets = {}
    for naming in ("21+", "1.4", "1.0"):
        bids_dir = root / naming.replace(".", "_").replace("+", "plus")
        write_fmriprep_dataset(bids_dir, participants=PARTICIPANTS, confounds_naming=naming, n_task_runs=2,
                               resolution_mm=8.0, seed=1)
        datasets[naming] = bids_dir
    sessions = root / "sessions"
    write_fmriprep_dataset(sessions, participants=PARTICIPANTS[:2], sessions=["1", "2"], n_task_runs=2,
                           resolution_mm=8.0, seed=2)
    datasets["sessions"] = sessions
    return datasets


@pytest.fixture
def fmriprep(fmriprep_templates, tmp_path):
    """A private copy of a small fMRIPrep dataset: ``fmriprep("21+")``."""

    def copy(kind: str = "21+") -> Path:
        target = tmp_path / f"bids_{len(list(tmp_path.iterdir()))}"
        shutil.copytree(fmriprep_templates[kind], target)
        return target

    return copy


@pytest.fixture(scope="session")
def hcp_templates(tmp_path_factory):
    """Small HCP-style datasets (course layout and BIDS-style), built once."""
    root = tmp_path_factory.mktemp("hcp_templates")
    subjects = ["100307", "100408"]
    write_hcp_course_dataset(root / "course", subjects=subjects, seed=3, rest_frames=100)
    write_hcp_bids_dataset(root / "bids", subjects=subjects, seed=3, rest_frames=100)
    return {"course": root / "course", "bids": root / "bids"}


@pytest.fixture
def hcp(hcp_templates, tmp_path):
    """A private copy of a small HCP-style dataset: ``hcp("course")`` or ``hcp("bids")``."""

    def copy(kind: str) -> Path:
        target = tmp_path / f"hcp_{kind}"
        shutil.copytree(hcp_templates[kind], target)
        return target

    return copy


def error_lines(stderr: str) -> list[str]:
    """The one-line error messages bidsapp printed (log lines left out)."""
    return [line for line in stderr.splitlines() if line.startswith("bidsapp:")]


#: The mixed-session study: participant -> (sessions or None, motor runs per session).
MIXED_SESSIONS = {"01": (["1", "2"], 2), "02": (["1", "2"], 1), "03": (["1", "2"], 2), "04": (["1"], 2),
                  "05": (None, 2), "06": (None, 1)}


@pytest.fixture(scope="session")
def mixed_sessions(tmp_path_factory):
    """A study shaped as real ones are, processed at participant level once (motor and rest, one seed).

    Participants 01-03 have ses-1 and ses-2 (02 with one motor run per session, the others two),
    04 has ses-1 only, 05 and 06 have no session (05 two motor runs, 06 one). Returns (bids, out).
    """
    from bidsapp.cli import main

    root = tmp_path_factory.mktemp("mixed_sessions")
    bids = root / "bids"
    rows = []
    for index, (label, (sessions, runs)) in enumerate(MIXED_SESSIONS.items()):
        part = root / f"part_{label}"
        write_fmriprep_dataset(part, participants=[label], sessions=sessions, n_task_runs=runs, resolution_mm=8.0,
                               seed=10 + index)
        if not bids.exists():
            shutil.copytree(part, bids, ignore=shutil.ignore_patterns("sub-*"))
        for source in (part, part / "derivatives" / "fmriprep"):
            shutil.copytree(source / f"sub-{label}", bids / source.relative_to(part) / f"sub-{label}")
        rows.append((part / "participants.tsv").read_text().splitlines()[1])
    header = (bids / "participants.tsv").read_text().splitlines()[0]
    (bids / "participants.tsv").write_text("\n".join([header, *rows]) + "\n")
    out = root / "out"
    assert main([str(bids), str(out), "participant", "--skip-bids-validation", "--seeds", "pcc=0,-52,26",
                 "--connectivity", "correlation", "covariance", "-w", str(root / "work"),
                 "--nprocs", "2"]) == 0
    return bids, out


@pytest.fixture
def output_copy(participant_out, tmp_path):
    """A private copy of the requesting module's participant-level outputs (``participant_out``), without logs."""
    bids, out = participant_out
    copy = tmp_path / "out"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("logs"))
    return bids, copy


def motor_group(bids: Path, out: Path, *options: str) -> int:
    """The group level of the motor task on ``out`` (validation skipped, work directory beside it)."""
    from bidsapp.cli import main

    return main([str(bids), str(out), "group", "--skip-bids-validation", "--task", "motor",
                 "-w", str(out.parent / "work"), *options])


def snapshot(out: Path) -> dict[str, int]:
    """Every file under OUTPUT_DIR but logs/, with its modification time."""
    return {str(path.relative_to(out)): path.stat().st_mtime_ns for path in out.rglob("*")
            if path.is_file() and path.relative_to(out).parts[0] != "logs"}
