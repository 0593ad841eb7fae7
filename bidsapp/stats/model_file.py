"""``--group-model FILE``: a group design and contrasts the flags cannot say, as YAML or JSON.

Example::

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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bidsapp.errors import UsageError
from bidsapp.stats.design import GroupDesign

_NAME = re.compile(r"^[A-Za-z0-9]+$")


def load_group_model(path: Path) -> dict[str, Any]:
    """Read and check the structure of a group model file (columns and contrasts).

    Raises
    ------
    MissingInputError
        The file is missing or unreadable (exit 66).
    UsageError
        Not valid YAML or JSON (one line with the line and column), a missing key, a malformed
        column or contrast (the file and the entry named).
    """
    from bidsapp.options import read_option_file

    model = read_option_file(Path(path), "--group-model")
    if not isinstance(model, dict) or not isinstance(model.get("columns"), list) or not model["columns"] \
            or not isinstance(model.get("contrasts"), dict) or not model["contrasts"]:
        raise UsageError(f"--group-model {path}: expected 'columns' (a list) and 'contrasts' (a mapping); see the "
                         "README for an example")
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


def model_design(table: pd.DataFrame, model: dict[str, Any]) -> GroupDesign:
    """The design matrix and contrasts of a group model for the participants in ``table``.

    Raises
    ------
    UsageError
        A column missing from participants.tsv or with missing values, a rank-deficient design,
        or a contrast naming no design column.
    """
    where = f"--group-model {model['path']}"
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
