"""``--group-model FILE``: a group design and contrasts the flags cannot say, as YAML or JSON.

Cell-means form (seed 004's repeated-measures ANOVA is the worked example)::

    conditions: [IniFF, ImmFF, DelFF, IniUF, ImmUF, DelUF, IniSF, ImmSF, DelSF]
    groups: diagnosis       # optional: a participants.tsv column; cells become <level>.<condition>
    covariates: [age]       # optional, centred (between designs: no conditions)
    contrasts:
      FacesScrambled: (IniFF + ImmFF + DelFF + IniUF + ImmUF + DelUF)/6 - (IniSF + ImmSF + DelSF)/3
      StimulusXRepetition: ["(IniFF + IniUF)/2 - IniSF - ((ImmFF + ImmUF)/2 - ImmSF)",
                            "IniFF - IniUF - (ImmFF - ImmUF)"]          # a list: an F test
      famousOverUnfamiliar: {expression: (IniFF + ImmFF + DelFF)/3 - (IniUF + ImmUF + DelUF)/3, test: greater}

``conditions`` are participant-level contrast names or ``ses-<label>`` (rows are participant x condition;
:mod:`bidsapp.group.conditions` finds them); the design is one column per cell plus one per participant
(:func:`bidsapp.stats.design.cell_design`). Without ``conditions`` the cells are the ``groups`` levels, one
row per participant. Contrast expressions are parsed by the first-level parser
(:func:`bidsapp.steps.glm.contrasts.contrast_vector`); cell names that are not Python identifiers are
backquoted (```1.IniFF```). ``test: greater|less`` makes a t contrast one-sided (default two-sided).

Columns form (one row per participant)::

    columns:                # design columns, built from participants.tsv
      - intercept           # a column of ones
      - group: patient      # indicator of group == patient, named groupPatient
      - age                 # a numeric column, centred
    contrasts:
      patientEffect: {groupPatient: 1}
      ageEffect: {age: 1}
      anyEffect: [{groupPatient: 1}, {age: 1}]   # several rows: an F contrast

Contrast names are letters and digits (they name output files); weights refer
to design columns by name. The design is fitted as given (no column is added),
so include ``intercept`` unless the indicators span it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bidsapp.errors import UsageError
from bidsapp.stats.design import GroupDesign, cell_design
from bidsapp.stats.parametric import Alternative

_NAME = re.compile(r"^[A-Za-z0-9]+$")
_KEYS = ("conditions", "groups", "covariates", "contrasts")
_TESTS = ("two-sided", "greater", "less")
_DOTTED = re.compile(r"`[^`]*`|(?<![\w.`])([A-Za-z_]\w*\.[A-Za-z_]\w*)")


@dataclass(frozen=True)
class ModelContrast:
    """A model file's contrast: ``name``, its expressions over cells (several: an F test), and its tail."""

    name: str
    expressions: tuple[str, ...]
    f_test: bool
    alternative: Alternative = "two-sided"


@dataclass(frozen=True)
class CellModel:
    """A cell-means model file, checked.

    Attributes
    ----------
    path : str
    conditions : tuple of str
        Participant-level contrast names or ``ses-<label>``; empty for a between design.
    groups : str, optional
        participants.tsv column whose levels are (or split) the cells.
    covariates : tuple of str
    contrasts : tuple of ModelContrast
    """

    path: str
    conditions: tuple[str, ...]
    groups: str | None
    covariates: tuple[str, ...]
    contrasts: tuple[ModelContrast, ...]

    @property
    def where(self) -> str:
        """The option and file, for messages."""
        return f"--group-model {self.path}"

    @property
    def sessions(self) -> bool:
        """Whether the conditions are sessions (``ses-<label>``) rather than participant-level contrasts."""
        return bool(self.conditions) and self.conditions[0].startswith("ses-")


def load_group_model(path: Path) -> dict[str, Any]:
    """Read and check the structure of a group model file (either form; see the module docstring).

    Raises
    ------
    MissingInputError
        The file is missing or unreadable (exit 66).
    UsageError
        Not valid YAML or JSON (one line with the line and column), an unknown or missing key, a malformed
        condition, column or contrast (the file and the entry named).
    """
    from bidsapp.options import read_option_file

    model = read_option_file(Path(path), "--group-model")
    if isinstance(model, dict) and "columns" not in model and any(key in model for key in _KEYS[:3]):
        model["path"] = str(path)
        cell_model(model)
        return model
    if not isinstance(model, dict) or not isinstance(model.get("columns"), list) or not model["columns"] \
            or not isinstance(model.get("contrasts"), dict) or not model["contrasts"]:
        raise UsageError(f"--group-model {path}: expected 'conditions' (a list) or 'groups' (a participants.tsv "
                         "column), and 'contrasts' (a mapping); or 'columns' and 'contrasts'; see the README")
    for column in model["columns"]:
        if not (isinstance(column, str) or (isinstance(column, dict) and len(column) == 1)):
            raise UsageError(f"--group-model {path}: column {column!r} must be a name or {{column: level}}")
    for name, weights in model["contrasts"].items():
        rows = weights if isinstance(weights, list) else [weights]
        if not _NAME.match(str(name)) or not rows or not all(isinstance(row, dict) for row in rows):
            raise UsageError(f"--group-model {path}: contrast {name!r} needs a letters-and-digits name and "
                             "{column: weight} (or a list of them for an F contrast)")
    model["path"] = str(path)
    return model


def cell_model(model: Mapping[str, Any]) -> CellModel:
    """The cell-means form of a loaded model file, checked.

    Raises
    ------
    UsageError
        An unknown key (the known ones listed), fewer than two or repeated conditions, sessions mixed with
        contrast names, a malformed ``groups``, ``covariates`` or contrast.
    """
    where = f"--group-model {model['path']}"
    unknown = sorted(set(model) - {*_KEYS, "path"})
    if unknown:
        raise UsageError(f"{where}: unknown key {', '.join(map(repr, unknown))} (known: {', '.join(_KEYS)}, or "
                         "'columns' for the columns form)")
    conditions = model.get("conditions", [])
    if not isinstance(conditions, list) or not all(isinstance(c, str) and c for c in conditions) \
            or len(set(conditions)) < len(conditions) or len(conditions) == 1:
        raise UsageError(f"{where}: 'conditions' must list two or more different participant-level contrast "
                         f"names or ses-<label> sessions; got {conditions!r}")
    if len({c.startswith("ses-") for c in conditions}) > 1:
        raise UsageError(f"{where}: conditions {', '.join(conditions)} mix sessions (ses-<label>) and contrasts; "
                         "use one kind")
    groups, covariates = model.get("groups"), model.get("covariates", [])
    if groups is not None and not (isinstance(groups, str) and groups):
        raise UsageError(f"{where}: 'groups' must name one participants.tsv column; got {groups!r}")
    if not isinstance(covariates, list) or not all(isinstance(c, str) and c for c in covariates):
        raise UsageError(f"{where}: 'covariates' must list participants.tsv columns; got {covariates!r}")
    if not conditions and groups is None:
        raise UsageError(f"{where}: give 'conditions', 'groups' or both (cells are conditions, groups or "
                         "group x condition)")
    contrasts = model.get("contrasts")
    if not isinstance(contrasts, dict) or not contrasts:
        raise UsageError(f"{where}: 'contrasts' must map contrast names to expressions over the cells")
    return CellModel(str(model["path"]), tuple(conditions), groups, tuple(covariates),
                     tuple(_model_contrast(str(name), value, where) for name, value in contrasts.items()))


def _model_contrast(name: str, value: Any, where: str) -> ModelContrast:
    """One contrast entry: an expression, a list of them (F), or {expression, test}."""
    hint = ("an expression, a list of expressions (an F test), or {expression: EXPR, test: greater|less}")
    if not _NAME.match(name):
        raise UsageError(f"{where}: contrast name {name!r} must be letters and digits (it names output files)")
    if isinstance(value, str) and value.strip():
        return ModelContrast(name, (value,), f_test=False)
    if isinstance(value, list) and value and all(isinstance(row, str) and row.strip() for row in value):
        return ModelContrast(name, tuple(value), f_test=True)
    if isinstance(value, dict) and isinstance(value.get("expression"), str) and set(value) <= {"expression", "test"}:
        test = value.get("test", "two-sided")
        if test not in _TESTS:
            raise UsageError(f"{where}: contrast {name}: test {test!r}; use {', '.join(_TESTS)}")
        return ModelContrast(name, (value["expression"],), f_test=False, alternative=test)
    raise UsageError(f"{where}: contrast {name} must be {hint}; got {value!r}")


def model_columns(model: Mapping[str, Any]) -> list[str]:
    """The participants.tsv columns a loaded model file names (``groups``, ``covariates`` or ``columns``)."""
    if "columns" not in model:
        return [*([model["groups"]] if model.get("groups") else []), *model.get("covariates", [])]
    sources = [next(iter(column)) if isinstance(column, dict) else column for column in model["columns"]]
    return [source for source in sources if source != "intercept"]


def conditions_design(rows: pd.DataFrame, model: CellModel) -> GroupDesign:
    """The within (or mixed) design of ``rows`` (participant x condition, a ``condition`` column) and its contrasts.

    Raises
    ------
    UsageError
        A contrast naming an unknown cell, not parsing, or whose weights do not sum to zero within each group.
    NoDataError
        Too few participants, or one group level.
    """
    design, cells = cell_design(rows, within=True, group_column=model.groups, covariates=model.covariates,
                                where=model.where)
    return _with_contrasts(design, cells, model)


def _with_contrasts(design: GroupDesign, cells: list[str], model: CellModel) -> GroupDesign:
    """Parse every contrast over ``cells`` and pad it to the design's columns."""
    from bidsapp.steps.glm.contrasts import Contrast, contrast_vector, expression_names

    contrasts, alternatives = {}, {}
    for contrast in model.contrasts:
        rows = []
        for expression in contrast.expressions:
            quoted = _DOTTED.sub(lambda match: f"`{match[1]}`" if match[1] else match[0], expression)
            unknown = [name for name in expression_names(quoted) if name not in cells]
            if unknown:
                raise UsageError(f"{model.where}: contrast {contrast.name} names {', '.join(map(repr, unknown))}, "
                                 f"not a cell of this design (cells: {', '.join(cells)})")
            try:
                rows.append(contrast_vector(Contrast(contrast.name, quoted), cells))
            except UsageError as error:
                raise UsageError(f"{model.where}: contrast {contrast.name}: {expression!r} does not parse; write "
                                 "e.g. \"(IniFF + ImmFF)/2 - IniSF\"") from error
            if design.within_participant:
                _check_sums_to_zero(rows[-1], cells, contrast.name, model)
        matrix = np.pad(np.array(rows), [(0, 0), (0, design.matrix.shape[1] - len(cells))])
        contrasts[contrast.name] = matrix if contrast.f_test else matrix[0]
        if contrast.alternative != "two-sided":
            alternatives[contrast.name] = contrast.alternative
    return replace(design, contrasts=contrasts, alternatives=alternatives)


def _check_sums_to_zero(weights: np.ndarray, cells: Sequence[str], name: str, model: CellModel) -> None:
    """Within designs: each participant's column absorbs its mean, so weights must sum to zero (per group)."""
    prefixes = sorted({cell.rsplit(".", 1)[0] + "." for cell in cells}) if model.groups else [""]
    for prefix in prefixes:
        total = float(sum(w for cell, w in zip(cells, weights, strict=True) if cell.startswith(prefix)))
        if abs(total) > 1e-8:
            scope = f" over the {prefix[:-1]} cells" if prefix else ""
            raise UsageError(f"{model.where}: contrast {name}: its weights sum to {total:g}{scope}, not 0; a within "
                             "design has one column per participant, so only differences between conditions are "
                             "estimable (weights summing to zero" + (" within each group" if prefix else "")
                             + "); test a condition's mean or a group difference on a participant-level contrast, "
                             "one row per participant (no 'conditions')")


def model_design(table: pd.DataFrame, model: dict[str, Any]) -> GroupDesign:
    """The design matrix and contrasts of a group model for the participants in ``table`` (one row each).

    Raises
    ------
    UsageError
        A column missing from participants.tsv or with missing values, a rank-deficient design,
        or a contrast naming no design column (or cell).
    NoDataError
        Cell form: too few participants, or one group level.
    """
    where = f"--group-model {model['path']}"
    if "columns" not in model:
        cells_model = cell_model(model)
        if cells_model.conditions:
            raise UsageError(f"{where}: conditions need one map per participant and condition; none found")
        design, cells = cell_design(table, within=False, group_column=cells_model.groups,
                                    covariates=cells_model.covariates, where=where)
        return _with_contrasts(design, cells, cells_model)
    columns: dict[str, np.ndarray] = {}
    for column in model["columns"]:
        if column == "intercept":
            columns["intercept"] = np.ones(len(table))
            continue
        source, level = next(iter(column.items())) if isinstance(column, dict) else (column, None)
        if source not in table.columns:
            raise UsageError(f"{where}: participants.tsv has no column {source!r}")
        values = table[source]
        if values.isna().any():
            missing = ", ".join(table.loc[values.isna(), "participant_id"].astype(str))
            raise UsageError(f"{where}: column {source!r} has missing values for {missing}")
        if level is None:
            numbers = pd.to_numeric(values, errors="coerce")
            if numbers.isna().any():
                raise UsageError(f"{where}: column {source!r} is not numeric; write {{{source}: LEVEL}} for a group")
            columns[source] = (numbers - numbers.mean()).to_numpy(float)
        else:
            dummy = f"{source}{str(level)[:1].upper()}{str(level)[1:]}"
            columns[dummy] = (values.astype(str) == str(level)).to_numpy(float)
    matrix = pd.DataFrame(columns, index=table.index)
    if np.linalg.matrix_rank(matrix.to_numpy()) < matrix.shape[1]:
        raise UsageError(f"{where}: the design columns {', '.join(matrix.columns)} are collinear for these "
                         "participants; drop one")
    if len(matrix) <= matrix.shape[1]:
        raise UsageError(f"{where}: {len(matrix)} participants cannot fit {matrix.shape[1]} columns; "
                         f"at least {matrix.shape[1] + 1} are needed")
    contrasts = {}
    for name, weights in model["contrasts"].items():
        rows = weights if isinstance(weights, list) else [weights]
        vectors = []
        for row in rows:
            unknown = sorted(set(row) - set(matrix.columns))
            if unknown:
                raise UsageError(f"{where}: contrast {name} names {', '.join(unknown)}, not design columns "
                                 f"({', '.join(matrix.columns)})")
            vectors.append([float(row.get(column, 0.0)) for column in matrix.columns])
        contrasts[str(name)] = np.asarray(vectors[0] if len(vectors) == 1 else vectors)
    return GroupDesign(test="model", within_participant=False, matrix=matrix, contrasts=contrasts)
