"""First-level contrasts: the Contrast type, default contrasts, contrast vectors and the statistics written.

A contrast is a name and an expression over condition names (design
columns), e.g. ``lfMinusRf = lf - rf``; names that are not Python identifiers
are backquoted (```2bk_body` - `0bk_body```). Each t contrast gives the five
statistics of :data:`STATISTICS`, in nilearn's conventions.
"""

from __future__ import annotations

import functools
import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bidsapp.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

_NAME = re.compile(r"`([^`]*)`|(?<![\w.])([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Contrast:
    """A first-level contrast: ``name`` (letters and digits) and an expression over condition names."""

    name: str
    expression: str


@dataclass(frozen=True)
class Statistic:
    """One statistic of a t contrast: its ``stat-`` label (and table column) and what it is."""

    name: str
    description: str


#: The statistics written per contrast, in order (nilearn's conventions, :mod:`bidsapp.steps.glm`).
STATISTICS = (
    Statistic("effect", "contrast estimate c'beta"),
    Statistic("variance", "variance of the contrast estimate"),
    Statistic("t", "t statistic, effect / sqrt(variance)"),
    Statistic("z", "standard normal quantile with the same upper-tail probability as t"),
    Statistic("p", "one-sided (upper-tail) p-value of t; two-sided is 2 * min(p, 1 - p)"),
)


def contrast_name(condition: str) -> str:
    """A condition's name as a contrast name: its letters and digits (``win_event`` -> ``winevent``)."""
    return re.sub(r"[^A-Za-z0-9]", "", condition)


def default_contrasts(conditions: Sequence[str]) -> list[Contrast]:
    """Each condition against baseline, then every ordered pair difference.

    Parameters
    ----------
    conditions : sequence of str
        Condition names (``trial_type`` values, EV file stems). Names that are
        not Python identifiers (e.g. ``0bk_body``) cannot appear in an
        expression unquoted and are skipped, as are names that would repeat.

    Returns
    -------
    list of Contrast
        ``lf`` (expression ``lf``) for each condition, and ``lfMinusRf``
        (``lf - rf``) for each ordered pair.
    """
    usable: dict[str, str] = {}
    for condition in dict.fromkeys(conditions):
        name = contrast_name(condition)
        if condition.isidentifier() and not keyword.iskeyword(condition) and name and name not in usable:
            usable[name] = condition
    contrasts = [Contrast(name, condition) for name, condition in usable.items()]
    for name_a, a in usable.items():
        for name_b, b in usable.items():
            if a != b:
                contrasts.append(Contrast(f"{name_a}Minus{name_b[0].upper()}{name_b[1:]}", f"{a} - {b}"))
    return contrasts


def expression_names(expression: str) -> list[str]:
    """The condition names a contrast expression uses, in order, without repeats (backquotes removed)."""
    return list(dict.fromkeys(quoted or bare for quoted, bare in _NAME.findall(expression)))


def contrast_vector(contrast: Contrast, columns: Sequence[str]) -> np.ndarray:
    """The weights of ``contrast`` on the design ``columns``.

    Parameters
    ----------
    contrast : Contrast
        Its expression names design columns (backquoted when not identifiers,
        e.g. ```2bk_body` - `0bk_body```), combined with ``+ - * /`` and numbers.
    columns : sequence of str
        Design matrix columns.

    Returns
    -------
    ndarray of shape (n_columns,)
        From :func:`nilearn.glm.expression_to_contrast_vector`.

    Raises
    ------
    UsageError
        If the expression names something not in the design or does not parse;
        the message names ``--contrast NAME`` and the conditions available.
    """
    import numpy as np  # here, not at the top: the command line imports Contrast before parsing

    columns = [str(c) for c in columns]
    conditions = [c for c in columns if not c.startswith("drift_") and c != "constant"]

    def problem(what: str) -> UsageError:
        return UsageError(f"--contrast {contrast.name}={contrast.expression}: {what}; conditions available: "
                          f"{', '.join(conditions) or 'none'}")

    unknown = [name for name in expression_names(contrast.expression) if name not in columns]
    if unknown:
        raise problem(f"{', '.join(unknown)} not in this run's design")
    try:
        return np.array(_expression_vector(contrast.expression, tuple(columns)))
    except ValueError as error:
        raise problem("the expression does not parse (write e.g. \"lf - rf\" or \"t - 0.25*(lf + rf + lh + rh)\")"
                      ) from error


@functools.lru_cache(maxsize=1024)
def _expression_vector(expression: str, columns: tuple[str, ...]) -> tuple[float, ...]:
    """nilearn's contrast vector of ``expression`` (cached: every run of a task asks for the same ones)."""
    import numpy as np
    from nilearn.glm import expression_to_contrast_vector

    return tuple(np.asarray(expression_to_contrast_vector(expression, list(columns)), dtype=float).tolist())



def condition_weights(contrast: Contrast, conditions: Sequence[str]) -> dict[str, float]:
    """The contrast's non-zero weight on each condition."""
    vector = contrast_vector(contrast, list(conditions))
    return {condition: float(w) for condition, w in zip(conditions, vector, strict=True) if w != 0}


def estimable(contrasts: Sequence[Contrast], columns: Sequence[str]) -> list[Contrast]:
    """The contrasts whose conditions are all design ``columns`` (those a run can estimate)."""
    names = {str(column) for column in columns}
    return [c for c in contrasts if set(expression_names(c.expression)) <= names]
