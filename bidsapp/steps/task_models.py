"""Which conditions and contrasts a task's first-level model has.

The seven HCP tasks have presets in ``bidsapp/data/hcp_tasks.yml`` (the block
EVs HCP models and its main contrasts; Barch et al. 2013, NeuroImage
80:169-189). Any other task models every condition, with each condition
against baseline and every pairwise difference as contrasts
(:func:`bidsapp.steps.glm.contrasts.default_contrasts`). ``--contrast`` replaces these
defaults: a task gets the ``--contrast`` definitions that name only its conditions, and
the defaults too when the word ``defaults`` is among the ``--contrast`` values (a user
contrast then replaces a default of the same name).
"""

from __future__ import annotations

import fnmatch
import importlib.resources
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from bidsapp.errors import UsageError
from bidsapp.steps.glm.contrasts import Contrast, default_contrasts, expression_names


def hcp_task_presets() -> dict[str, Any]:
    """The presets of ``bidsapp/data/hcp_tasks.yml``, keyed by lower-case task label."""
    with (importlib.resources.files("bidsapp") / "data" / "hcp_tasks.yml").open("r") as stream:
        return yaml.safe_load(stream)


def _matching(patterns: Iterable[str], conditions: Sequence[str]) -> list[str]:
    return [c for c in conditions if any(fnmatch.fnmatchcase(c, pattern) for pattern in patterns)]


def design_conditions(task: str, conditions: Iterable[str], presets: dict[str, Any]) -> list[str]:
    """The conditions modelled for ``task``: all but the preset's excluded EVs, sorted."""
    exclude = presets.get(task.lower(), {}).get("exclude", [])
    return sorted(c for c in set(conditions) if not _matching(exclude, [c]))


def _term(names: Sequence[str]) -> str:
    quoted = [name if name.isidentifier() else f"`{name}`" for name in names]
    return quoted[0] if len(quoted) == 1 else f"({' + '.join(quoted)})/{len(quoted)}"


def mean_difference(name: str, positive: Sequence[str], negative: Sequence[str]) -> Contrast:
    """The contrast ``mean(positive) - mean(negative)`` as an expression (non-identifiers backquoted)."""
    expression = _term(positive)
    return Contrast(name, f"{expression} - {_term(negative)}" if negative else expression)


def task_contrasts(task: str, conditions: Sequence[str], user: Sequence[Contrast],
                   presets: dict[str, Any], *, defaults: bool | None = None) -> list[Contrast]:
    """The contrasts of one task.

    Parameters
    ----------
    task : str
        Task label (``motor``...).
    conditions : sequence of str
        The task's modelled conditions (:func:`design_conditions`).
    user : sequence of Contrast
        ``--contrast`` definitions; those naming only these conditions are the task's.
    presets : dict
        :func:`hcp_task_presets`.
    defaults : bool, optional
        Keep the default contrasts as well (``--contrast defaults``; a user contrast
        replaces a default of the same name). Default: only when ``user`` is empty.

    Returns
    -------
    list of Contrast
        The defaults when kept (preset contrasts whose patterns match conditions
        on both sides for HCP tasks, :func:`bidsapp.steps.glm.contrasts.default_contrasts`
        for other tasks), then the user's.
    """
    mine = [c for c in user if set(expression_names(c.expression)) <= set(conditions)]
    keep_defaults = not user if defaults is None else defaults
    if not keep_defaults:
        return mine
    preset = presets.get(task.lower())
    if preset is None:
        contrasts = default_contrasts(conditions)
    else:
        contrasts = []
        for spec in preset["contrasts"]:
            positive = _matching(spec["positive"], conditions)
            negative = _matching(spec.get("negative", []), conditions)
            if positive and (negative or not spec.get("negative")):
                contrasts.append(mean_difference(spec["name"], positive, negative))
    names = {c.name for c in mine}
    return [c for c in contrasts if c.name not in names] + mine


def check_user_contrasts(user: Sequence[Contrast], conditions_by_task: dict[str, Sequence[str]]) -> None:
    """Refuse a ``--contrast`` that names conditions of no task.

    Raises
    ------
    UsageError
        Naming the contrast and the conditions of each task.
    """
    for contrast in user:
        names = set(expression_names(contrast.expression))
        if not any(names <= set(conditions) for conditions in conditions_by_task.values()):
            available = "; ".join(f"{task}: {', '.join(conditions)}" for task, conditions in conditions_by_task.items())
            raise UsageError(f"--contrast {contrast.name}={contrast.expression}: names conditions of no task; "
                             f"conditions available: {available or 'none (no task runs selected)'}")
