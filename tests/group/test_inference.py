"""Group inference: an analysis whose resamples cannot reach alpha keeps its parametric results."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from bidsapp.config import GroupAnalysis
from bidsapp.group.inference import infer
from bidsapp.stats.design import group_design


def test_too_few_permutations_leave_out_fwe_but_keep_fdr(caplog):
    rng = np.random.default_rng(3)
    table = pd.DataFrame({"participant_id": ["sub-1", "sub-2", "sub-3"], "group": ["a", "a", "b"]})
    data = rng.normal(size=(3, 50))
    data[:2, :5] += 4.0  # planted difference between the groups
    design = group_design(table, "twosample", group_column="group")
    settings = GroupAnalysis(test="twosample", group_column="group", corrections=("fdr", "fwe"), n_perm=1000)
    with caplog.at_level(logging.WARNING, logger="bidsapp"):
        (inference,) = infer(data, design, settings)
    assert [correction.name for correction in inference.corrections] == ["fdr"]
    assert inference.permutation is None
    # 3 participants in groups of 2 and 1: 3 distinct labelings, the smallest two-sided p is 1/3
    assert "permutation corrections left out" in caplog.text and "0.333" in caplog.text
    expected = stats.ttest_ind(data[:2], data[2:], equal_var=True).statistic
    np.testing.assert_allclose(np.abs(inference.result.stat), np.abs(expected), rtol=1e-6)
