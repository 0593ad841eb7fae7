"""Group designs: shapes, contrasts, and one plain error line naming the option or column at fault."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bidsapp.errors import NoDataError, UsageError
from bidsapp.stats.design import group_design


def _participants(n: int = 8) -> pd.DataFrame:
    return pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(1, n + 1)],
                         "group": [("patient", "control")[i % 2] for i in range(n)],
                         "age": np.linspace(20, 50, n),
                         "sex": [("F", "M", "M", "F")[i % 4] for i in range(n)]})


def _long(subjects: int, conditions: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"participant_id": f"sub-{s}", "condition": c}
                         for s in range(1, subjects + 1) for c in conditions])


def test_one_sample_with_covariates():
    design = group_design(_participants(), "onesample", covariates=["age", "sex"])
    assert list(design.matrix.columns) == ["intercept", "age", "sex[M]"]
    np.testing.assert_allclose(design.matrix["age"].mean(), 0, atol=1e-12)
    np.testing.assert_array_equal(design.contrasts["mean"], [1, 0, 0])
    assert design.blocks is None and not design.within_participant


def test_two_sample_levels_sorted_and_named():
    design = group_design(_participants(), "twosample", group_column="group")
    assert list(design.matrix.columns) == ["group[control]", "group[patient]"]
    np.testing.assert_array_equal(design.contrasts["controlMinusPatient"], [1, -1])


def test_numeric_group_codes_with_missing_values_are_named():
    participants = _participants().assign(arm=[1.0, 2.0] * 4, dose=[10, 2] * 4)
    assert list(group_design(participants, "twosample", group_column="arm").contrasts) == ["1Minus2"]
    assert list(group_design(participants, "twosample", group_column="dose").contrasts) == ["2Minus10"]
    participants.loc[2, "arm"] = np.nan
    with pytest.raises(UsageError, match=r"--group-column 'arm' has no value for sub-03"):
        group_design(participants, "twosample", group_column="arm")


@pytest.mark.parametrize(("test", "kwargs", "message"), [
    ("twosample", {}, r"--group-test twosample needs --group-column"),
    ("twosample", {"group_column": "diagnosis"}, r"--group-column 'diagnosis' is not a column of participants.tsv"),
    ("twosample", {"group_column": "site"}, r"--group-column 'site' has one level \(a\)"),
    ("twosample", {"group_column": "arm"}, r"has 3 levels \(x, y, z\).*use --group-test anova"),
    ("onesample", {"covariates": ["weight"]}, r"--covariates: column 'weight' is not in participants.tsv"),
    ("onesample", {"covariates": ["site"]}, r"--covariates: 'site' is collinear with the intercept"),
    ("twosample", {"group_column": "group", "covariates": ["patient"]},
     r"--covariates: 'patient' is collinear with the groups of --group-column"),
    ("onesample", {"covariates": ["age", "age_months"]},
     r"--covariates: 'age_months' is collinear with the groups and the covariates before it"),
    ("onesample", {"covariates": ["bmi"]}, r"--covariates: column 'bmi' has no value for sub-02"),
])
def test_usage_errors_name_the_option_and_column(test, kwargs, message):
    participants = _participants(6 * 2).assign(site="a", arm=list("xyz") * 4, bmi=[20.0, np.nan] * 6)
    participants["patient"] = (participants["group"] == "patient").astype(int)
    participants["age_months"] = participants["age"] * 12
    with pytest.raises(UsageError, match=message) as error:
        group_design(participants, test, **kwargs)
    assert "\n" not in str(error.value)


def test_too_few_participants_says_how_many():
    with pytest.raises(NoDataError, match=r"needs at least 3 participants .*found 2"):
        group_design(_participants(2), "twosample", group_column="group")
    with pytest.raises(NoDataError, match=r"needs at least 4 participants"):
        group_design(_participants(4).iloc[:3], "onesample", covariates=["age", "sex"])
    with pytest.raises(NoDataError, match=r"needs at least 2 participants"):
        group_design(_long(1, ["a", "b"]), "paired")


def test_within_participant_designs():
    design = group_design(_long(5, ["b", "a", "c"]), "anova")
    assert design.within_participant
    assert list(design.contrasts) == ["effectOfCondition", "aMinusB", "aMinusC", "bMinusC"]
    assert design.contrasts["effectOfCondition"].shape == (2, 3 + 5)
    np.testing.assert_array_equal(design.blocks, np.repeat(np.arange(5), 3))
    with pytest.raises(UsageError, match=r"--group-test paired needs exactly two conditions; found 3"):
        group_design(_long(5, ["a", "b", "c"]), "paired")
    incomplete = _long(5, ["a", "b"]).iloc[:-1]
    with pytest.raises(NoDataError, match=r"sub-5 lack a map for some of the conditions a, b"):
        group_design(incomplete, "paired")
    with pytest.raises(UsageError, match=r"--covariates: 'age' is collinear with the per-participant columns"):
        group_design(_long(5, ["a", "b"]).assign(age=lambda t: t["participant_id"].str[4:].astype(float)),
                     "paired", covariates=["age"])
    with pytest.raises(UsageError, match=r"--group-column 'group': with several conditions per participant"):
        group_design(_long(4, ["a", "b"]).assign(group="x"), "anova", group_column="group")


def test_one_map_per_participant_for_between_designs():
    with pytest.raises(UsageError, match=r"one map per participant; sub-1, sub-2 have several"):
        group_design(_long(2, ["a", "b"]), "onesample")
