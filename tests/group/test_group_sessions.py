"""Group level on a study with mixed sessions and unequal runs (``mixed_sessions`` in conftest.py).

By default one analysis per task and kind over every participant (their subject-level results);
with ``--group-test paired`` and no group column, sessions are the conditions and the per-session
results of the participants with both sessions are used (t against scipy ``ttest_rel``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import MIXED_SESSIONS
from scipy import stats

from bidsapp.cli import main
from bidsapp.group.inputs import find_group_inputs, session_inputs

pytestmark = pytest.mark.slow
SPACE = "space-MNI152NLin2009cAsym"
EVERYONE = sorted(MIXED_SESSIONS)
BOTH_SESSIONS = [label for label, (sessions, _) in MIXED_SESSIONS.items() if sessions == ["1", "2"]]


def group(bids: Path, out: Path, *options: str) -> int:
    return main([str(bids), str(out), "group", "--skip-bids-validation", "-w", str(out.parent / "work_group"),
                 *options])


def test_one_analysis_per_kind_over_every_participant(mixed_sessions, capsys):
    bids, out = mixed_sessions
    inputs = find_group_inputs(out, EVERYONE)
    motor = f"task-motor_{SPACE}"
    expected = {("voxels", f"{motor}_contrast-{c}") for c in ("lf", "rf", "lfMinusRf", "rfMinusLf")}
    expected |= {("parcels", f"{motor}_seg-AICHA_contrast-{c}") for c in ("lf", "rf", "lfMinusRf", "rfMinusLf")}
    for task in ("motor", "rest"):
        expected.add(("voxels", f"task-{task}_{SPACE}_roi-pcc"))
        expected |= {("edges", f"task-{task}_{SPACE}_seg-AICHA_stat-{stat}")
                     for stat in ("pearsoncorrelation_desc-fisherz", "covariance")}
    assert {(item.kind, item.name) for item in inputs} == expected
    assert all(sorted(item.files) == EVERYONE for item in inputs)
    assert not any(key in item.entities for item in inputs for key in ("ses", "run", "dir"))

    assert group(bids, out, "--dry-run") == 0
    plan = capsys.readouterr().out
    analysis_lines = [line for line in plan.splitlines() if ": onesample, N = " in line]
    assert len(analysis_lines) == len(expected)
    assert all(f"onesample, N = {len(EVERYONE)} (all {len(EVERYONE)})" in line for line in analysis_lines)
    assert "skipped" not in plan

    assert group(bids, out, "--correction", "fdr") == 0
    written = [path.name for path in (out / "group").iterdir()]
    for kind, name in expected:  # an input's desc goes into the group output's desc
        assert any(path.startswith(f"{name.split('_desc-')[0]}_") for path in written), name
    assert not any("ses-" in path or "run-" in path for path in written)


def _session_table(out: Path, label: str, session: str, rest: str) -> pd.DataFrame:
    path = out / f"sub-{label}/ses-{session}/func/sub-{label}_ses-{session}_task-motor_{SPACE}_{rest}"
    return pd.read_csv(path, sep="\t", na_values="n/a").set_index("name")


def test_paired_over_sessions_equals_ttest_rel(mixed_sessions, capsys):
    bids, out = mixed_sessions
    sets = {shared.name: conditions for shared, conditions in session_inputs(out, EVERYONE)}
    name = f"task-motor_{SPACE}_seg-AICHA_contrast-lfMinusRf"
    assert sorted(sets[name]) == ["ses-1", "ses-2"]
    assert sorted(sets[name]["ses-2"].files) == BOTH_SESSIONS  # 04 has ses-1 only, 05 and 06 no session

    assert group(bids, out, "--group-test", "paired", "--task", "motor", "--dry-run") == 0
    plan = capsys.readouterr().out
    lines = plan.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{name} ("))
    assert f"paired, N = {len(BOTH_SESSIONS)}" in lines[at]
    left_out = next(line for line in lines[at:] if "left out" in line)
    assert left_out.strip() == "left out, no output: sub-04, sub-05, sub-06"

    assert group(bids, out, "--group-test", "paired", "--task", "motor", "--correction", "fdr") == 0
    [path] = (out / "group").glob(f"{name}_desc-ses1MinusSes2_statmap.tsv")
    table = pd.read_csv(path, sep="\t", na_values="n/a").set_index("name")
    rest = "seg-AICHA_contrast-lfMinusRf_statmap.tsv"
    first = pd.DataFrame({label: _session_table(out, label, "1", rest)["effect"] for label in BOTH_SESSIONS})
    second = pd.DataFrame({label: _session_table(out, label, "2", rest)["effect"] for label in BOTH_SESSIONS})
    expected = stats.ttest_rel(first.loc[table.index].to_numpy(), second.loc[table.index].to_numpy(), axis=1)
    assert len(table) > 50
    np.testing.assert_allclose(table["t"].to_numpy(), expected.statistic, rtol=1e-8)
    np.testing.assert_allclose(table["p"].to_numpy(), expected.pvalue, rtol=1e-6)
