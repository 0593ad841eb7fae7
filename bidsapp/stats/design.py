"""Group designs: design matrix, contrasts and exchangeability blocks from a participants table.

The input is a table with one row per input map (the rows of the data the design is fitted to, in the
same order): a ``participant_id`` column, a ``condition`` column for within-participant designs, and the
``participants.tsv`` columns used as groups or covariates. The designs follow the conventions of SPM and
nilearn's ``SecondLevelModel``:

- ``onesample``: an intercept (contrast ``mean``).
- ``twosample``: one column per group (cell means), contrast ``<A>Minus<B>`` over the two levels of
  ``--group-column`` in sorted order.
- ``paired``: one column per condition plus one per participant (rank-deficient on purpose, as in
  seed 004); contrast ``<A>Minus<B>`` equals the paired t-test. Exchangeability blocks are the
  participants.
- ``anova`` with one map per participant: one-way between-participant ANOVA, one column per level of
  ``--group-column``; F contrast ``effectOf<Column>`` plus every pairwise t contrast.
- ``anova`` with several conditions per participant: repeated-measures ANOVA with pooled (spherical)
  error, one column per condition plus one per participant; F contrast ``effectOfCondition`` plus every
  pairwise t contrast. The F test equals statsmodels' ``AnovaRM`` for a single within factor.

Covariates (``--covariates``) are centred when numeric and dummy-coded (first sorted level as reference)
when categorical. A covariate that adds no rank to the design is refused, naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd

from bidsapp.errors import NoDataError, UsageError
from bidsapp.stats.parametric import Alternative

GroupTest = Literal["onesample", "twosample", "paired", "anova"]


@dataclass(frozen=True, eq=False)
class GroupDesign:
    """A group-level design ready for :mod:`bidsapp.stats.parametric` and the permutation engine.

    Attributes
    ----------
    test : {"onesample", "twosample", "paired", "anova", "model"}
        The ``--group-test`` it was built for, or ``"model"`` for a ``--group-model`` file.
    within_participant : bool
        True for paired and repeated-measures designs (several maps per participant).
    matrix : pandas.DataFrame
        Design matrix, one row per input map (index of the input table), named columns.
    contrasts : mapping of str to numpy.ndarray
        Contrast name (BIDS-safe, alphanumeric) to a vector (t) or a 2-D matrix (F) over the columns.
    blocks : numpy.ndarray or None
        Exchangeability block (participant number) per row for within-participant designs.
    alternatives : mapping of str to {"two-sided", "greater", "less"}
        The one-sided t contrasts' tails (a model file's ``test:``); contrasts not listed are two-sided.
    """

    test: GroupTest | Literal["model"]
    within_participant: bool
    matrix: pd.DataFrame
    contrasts: Mapping[str, np.ndarray]
    blocks: np.ndarray | None = None
    alternatives: Mapping[str, Alternative] = field(default_factory=dict)


def group_design(table: pd.DataFrame, test: GroupTest, *, group_column: str | None = None,
                 covariates: Sequence[str] = (), subject_column: str = "participant_id",
                 condition_column: str = "condition") -> GroupDesign:
    """Build the design for ``--group-test``; see the module docstring for each design.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per input map: ``subject_column``, ``condition_column`` (within-participant designs)
        and the participants.tsv columns.
    test : {"onesample", "twosample", "paired", "anova"}
        ``anova`` is repeated-measures when ``table`` has several conditions per participant.
    group_column : str, optional
        ``--group-column`` (two-sample and between-participant ANOVA).
    covariates : sequence of str
        ``--covariates`` columns.

    Raises
    ------
    UsageError
        Missing or unusable columns, one-level groups, missing values, collinear covariates.
    NoDataError
        Fewer participants than the design needs (the message says how many).
    """
    if subject_column not in table.columns:
        raise UsageError(f"the group table has no {subject_column!r} column")
    if test == "onesample":
        return _between(table, test, subject_column, None, covariates)
    if test == "twosample":
        return _between(table, test, subject_column, _need_group_column(table, test, group_column), covariates)
    if test == "paired":
        return _within(table, test, subject_column, condition_column, covariates)
    if test == "anova":
        if condition_column in table.columns and table[condition_column].nunique() > 1:
            if group_column:
                raise UsageError(f"--group-column {group_column!r}: with several conditions per participant "
                                 "--group-test anova is a repeated-measures ANOVA; mixed "
                                 "between x within designs are not supported yet")
            return _within(table, test, subject_column, condition_column, covariates)
        return _between(table, test, subject_column, _need_group_column(table, test, group_column), covariates)
    raise UsageError(f"--group-test {test!r}: use one of onesample, twosample, paired, anova")


def cell_design(table: pd.DataFrame, *, within: bool, group_column: str | None, covariates: Sequence[str],
                where: str, subject_column: str = "participant_id",
                condition_column: str = "condition") -> tuple[GroupDesign, list[str]]:
    """Cell means of a ``--group-model`` file with ``conditions`` and/or ``groups`` (no contrasts yet).

    One column per cell, then (within designs) one per participant, as in seed 004; between designs get
    the centred covariates instead. Cells are the conditions (within), the levels of ``group_column``
    (between), or ``<level>.<condition>`` (mixed), in the order of the table's rows.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per input map: ``subject_column``, ``condition_column`` (within) and participants.tsv columns.
    within : bool
        Several conditions per participant (the rows are participant x condition).
    group_column : str, optional
        The model's ``groups`` column.
    covariates : sequence of str
        The model's ``covariates`` (between designs only).
    where : str
        ``--group-model FILE``, for messages.

    Returns
    -------
    design : GroupDesign
        Blocks are the participants for within designs.
    cells : list of str
        The cell columns, first in ``design.matrix``.

    Raises
    ------
    UsageError
        Missing group values, covariates in a within design, collinear covariates.
    NoDataError
        One group level among these participants, or too few participants for the design.
    """
    labels, levels = pd.Series("", index=table.index), [""]
    if group_column is not None:
        levels = _levels(table, group_column, subject_column, option=f"{where}: groups")
        if len(levels) < 2:
            raise NoDataError(f"{where}: groups column {group_column!r} has one level ({levels[0]}) among these "
                              "participants; a group comparison needs at least two")
        labels = table[group_column].map(_level_label) + ("." if within else "")
        levels = [level + ("." if within else "") for level in levels]
    conditions = list(dict.fromkeys(table[condition_column].astype(str))) if within else [""]
    if within:
        labels = labels + table[condition_column].astype(str)
    cells = [level + condition for level in levels for condition in conditions]
    matrix = pd.DataFrame({cell: (labels == cell).astype(float) for cell in cells}, index=table.index)
    ids = table[subject_column].astype(str)
    subjects = list(dict.fromkeys(ids))
    blocks = None
    if within:
        if covariates:
            raise UsageError(f"{where}: covariates {', '.join(covariates)}: a participant-level value is constant "
                             "within each participant, so the per-participant columns of a within design absorb it; "
                             "drop 'covariates' (within-participant contrasts do not change)")
        matrix = pd.concat([matrix, pd.DataFrame({f"participant[{s}]": (ids == s).astype(float) for s in subjects},
                                                 index=table.index)], axis=1)
        blocks = ids.map({s: i for i, s in enumerate(subjects)}).to_numpy()
    else:
        matrix = _add_covariates(matrix, table, covariates, subject_column, within=False, option=f"{where}: covariates")
    _check_enough(matrix, len(subjects), within)
    return GroupDesign(test="model", within_participant=within, matrix=matrix, contrasts={}, blocks=blocks), cells


def _need_group_column(table: pd.DataFrame, test: str, column: str | None) -> str:
    if not column:
        raise UsageError(f"--group-test {test} needs --group-column COL (a column of participants.tsv)")
    if column not in table.columns:
        raise UsageError(f"--group-column {column!r} is not a column of participants.tsv "
                         f"(columns: {', '.join(map(str, table.columns))})")
    return column


def _between(table: pd.DataFrame, test: GroupTest, subject_column: str, group_column: str | None,
             covariates: Sequence[str]) -> GroupDesign:
    """One map per participant: intercept or cell-mean group columns, plus covariates."""
    repeated = table[subject_column][table[subject_column].duplicated()].unique()
    if len(repeated):
        raise UsageError(f"--group-test {test} needs one map per participant; {_names(repeated)} "
                         "have several: use --group-test paired or anova for several conditions")
    if group_column is None:
        base = pd.DataFrame({"intercept": 1.0}, index=table.index)
        contrasts = {"mean": np.array([1.0])}
    else:
        levels = _levels(table, group_column, subject_column, option="--group-column")
        if len(levels) < 2:
            raise UsageError(f"--group-column {group_column!r} has one level ({levels[0]}): "
                             f"--group-test {test} needs at least two groups")
        if test == "twosample" and len(levels) > 2:
            raise UsageError(f"--group-column {group_column!r} has {len(levels)} levels ({', '.join(levels)}): "
                             "--group-test twosample needs two; use --group-test anova")
        labels = table[group_column].map(_level_label)
        base = pd.DataFrame({f"{group_column}[{level}]": (labels == level).astype(float) for level in levels},
                            index=table.index)
        contrasts = _level_contrasts(levels, f"effectOf{_camel(group_column)}", option="--group-column",
                                     with_f=test == "anova")
    matrix = _add_covariates(base, table, covariates, subject_column, within=False)
    contrasts = {name: _pad(vector, matrix.shape[1]) for name, vector in contrasts.items()}
    _check_enough(matrix, table[subject_column].nunique(), within=False)
    return GroupDesign(test=test, within_participant=False, matrix=matrix, contrasts=contrasts)


def _within(table: pd.DataFrame, test: GroupTest, subject_column: str, condition_column: str,
            covariates: Sequence[str]) -> GroupDesign:
    """Several maps per participant: one column per condition plus one per participant (seed 004)."""
    if condition_column not in table.columns:
        raise UsageError(f"--group-test {test} needs one map per condition and participant "
                         f"(no {condition_column!r} column in the group table)")
    conditions = _levels(table, condition_column, subject_column, option="the condition column")
    if test == "paired" and len(conditions) != 2:
        raise UsageError(f"--group-test paired needs exactly two conditions; found {len(conditions)} "
                         f"({', '.join(conditions)}): use --group-test anova")
    if len(conditions) < 2:
        raise UsageError(f"--group-test {test} needs at least two conditions per participant; "
                         f"found one ({conditions[0]})")
    labels = table[condition_column].map(_level_label)
    pairs = pd.Series(list(zip(table[subject_column], labels, strict=True)))
    if pairs.duplicated().any():
        raise UsageError(f"participant {pairs[pairs.duplicated()].iloc[0][0]} has several maps for condition "
                         f"{pairs[pairs.duplicated()].iloc[0][1]!r}: give one map per condition")
    subjects = sorted(table[subject_column].astype(str).unique())
    counts = table.groupby(subject_column)[condition_column].nunique()
    incomplete = counts.index[counts < len(conditions)]
    if len(incomplete):
        raise NoDataError(f"{_names(incomplete)} lack a map for some of the conditions {', '.join(conditions)}; "
                          f"--group-test {test} needs every condition for every participant (leave them out)")
    condition_part = pd.DataFrame({f"condition[{c}]": (labels == c).astype(float) for c in conditions},
                                  index=table.index)
    ids = table[subject_column].astype(str)
    subject_part = pd.DataFrame({f"participant[{s}]": (ids == s).astype(float) for s in subjects}, index=table.index)
    matrix = _add_covariates(pd.concat([condition_part, subject_part], axis=1), table, covariates, subject_column,
                             within=True)
    contrasts = _level_contrasts(conditions, "effectOfCondition", option="the condition column",
                                 with_f=test == "anova")
    contrasts = {name: _pad(vector, matrix.shape[1]) for name, vector in contrasts.items()}
    _check_enough(matrix, len(subjects), within=True)
    blocks = ids.map({s: i for i, s in enumerate(subjects)}).to_numpy()
    return GroupDesign(test=test, within_participant=True, matrix=matrix, contrasts=contrasts, blocks=blocks)


def _levels(table: pd.DataFrame, column: str, subject_column: str, option: str) -> list[str]:
    """Level labels of a grouping column, sorted (numerically for numbers); refuse missing values."""
    missing = table[column].isna()
    if missing.any():
        raise UsageError(f"{option} {column!r} has no value for {_names(table.loc[missing, subject_column])}: "
                         "fill them in participants.tsv or leave those participants out")
    values = table[column].unique()
    if not pd.api.types.is_numeric_dtype(table[column]):
        values = [str(value) for value in values]
    return [_level_label(value) for value in sorted(values)]


def _level_contrasts(levels: Sequence[str], f_name: str, option: str, with_f: bool) -> dict[str, np.ndarray]:
    """Pairwise t contrasts ``<A>Minus<B>`` and, for ANOVA, the F contrast of all successive differences."""
    names = [_camel(level) for level in levels]
    if len(set(names)) < len(names) or not all(names):
        raise UsageError(f"{option}: levels {', '.join(levels)} do not give distinct alphanumeric contrast names; "
                         "rename them")
    contrasts: dict[str, np.ndarray] = {}
    if with_f:
        contrasts[f_name] = np.eye(len(levels))[:-1] - np.eye(len(levels), k=1)[:-1]
    for i, j in combinations(range(len(levels)), 2):
        vector = np.zeros(len(levels))
        vector[i], vector[j] = 1.0, -1.0
        contrasts[f"{_lead(names[i])}Minus{names[j]}"] = vector
    return contrasts


def _add_covariates(base: pd.DataFrame, table: pd.DataFrame, covariates: Sequence[str], subject_column: str,
                    within: bool, option: str = "--covariates") -> pd.DataFrame:
    """Append centred numeric / dummy-coded categorical covariates; refuse any that adds no rank."""
    matrix = base
    for name in covariates:
        if name not in table.columns:
            raise UsageError(f"{option}: column {name!r} is not in participants.tsv "
                             f"(columns: {', '.join(map(str, table.columns))})")
        values = table[name]
        if values.isna().any():
            raise UsageError(f"{option}: column {name!r} has no value for "
                             f"{_names(table.loc[values.isna(), subject_column])}: fill them in participants.tsv "
                             "or leave those participants out")
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            block = pd.DataFrame({name: values.astype(float) - values.astype(float).mean()}, index=table.index)
        else:
            labels = values.map(_level_label)
            levels = sorted(labels.unique())
            block = pd.DataFrame({f"{name}[{level}]": (labels == level).astype(float) for level in levels[1:]},
                                 index=table.index)
        before = np.linalg.matrix_rank(matrix.to_numpy())
        candidate = pd.concat([matrix, block], axis=1)
        if block.shape[1] == 0 or np.linalg.matrix_rank(candidate.to_numpy()) < before + block.shape[1]:
            raise UsageError(f"{option}: {name!r} is collinear with {_collinear_with(matrix, base, within)}; "
                             "remove it")
        matrix = candidate
    return matrix


def _collinear_with(matrix: pd.DataFrame, base: pd.DataFrame, within: bool) -> str:
    if within:
        return "the per-participant columns (a participant-level value cannot vary within a participant)"
    if matrix.shape[1] > base.shape[1]:
        return "the groups and the covariates before it"
    return "the intercept" if list(base.columns) == ["intercept"] else "the groups of --group-column"


def _check_enough(matrix: pd.DataFrame, n_subjects: int, within: bool) -> None:
    """At least one residual degree of freedom; say how many participants are needed."""
    rank = np.linalg.matrix_rank(matrix.to_numpy())
    if matrix.shape[0] - rank >= 1:
        return
    needed = 2 if within else matrix.shape[1] + 1
    raise NoDataError(f"the group design has {rank} independent columns and needs at least {needed} participants "
                      f"to estimate its error; found {n_subjects}")


def _pad(vector: np.ndarray, n_columns: int) -> np.ndarray:
    """Extend a contrast over the leading columns with zeros over the remaining (participant, covariate) columns."""
    vector = np.atleast_1d(np.asarray(vector, dtype=float))
    width = [(0, 0)] * (vector.ndim - 1) + [(0, n_columns - vector.shape[-1])]
    return np.pad(vector, width)


def _level_label(value: object) -> str:
    """A level as text: ``2.0`` (integers read as floats next to missing values) becomes ``2``."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _camel(label: str) -> str:
    """BIDS-safe contrast label part: alphanumerics only, first letter upper case."""
    cleaned = re.sub(r"[^0-9a-zA-Z]", "", str(label))
    return cleaned[:1].upper() + cleaned[1:]


def _lead(name: str) -> str:
    """A contrast name's first part: ``Control`` becomes ``control``; an acronym (``CONTROL``, ``SCHZ``) is kept."""
    return name if name[1:2].isupper() else name[:1].lower() + name[1:]


def _names(values: Sequence[object] | pd.Series | pd.Index) -> str:
    """Participants named in a message, at most ten."""
    names = [str(value) for value in values]
    shown = ", ".join(names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")
