"""Checks of the group preflight on what the group level reads: participant-level outputs and resampling.

:func:`intact` tells a participant-level output from a missing or damaged one by its
sidecar; :func:`summary_entities` lists the runs whose summaries the group level reads
(every selected run, whatever the state of its BOLD inputs); :func:`permutation_outlook`
tells ahead which contrasts' permutation corrections will be left out because too few
distinct resamples exist to reach ``--alpha``, with the permutation engine's own checks
(:mod:`bidsapp.stats.permutation`), so the dry run and the real run agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bidsapp.config import GroupAnalysis
from bidsapp.errors import NoDataError
from bidsapp.inputs.runs import Inventory, parse_entities
from bidsapp.outputs.sidecars import read_sidecar
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.stats.design import GroupDesign
from bidsapp.stats.pvalues import reproducing, smallest_p
from bidsapp.stats.resampling import check_resolution, draw_resamples
from bidsapp.stats.residuals import build_model

#: Corrections that need permutations, and of those the ones that need voxel maps.
PERMUTATION_CORRECTIONS = ("fwe", "cluster", "tfce")
SPATIAL_CORRECTIONS = ("cluster", "tfce")


def intact(writer: DerivativesWriter, path: Path) -> bool:
    """Whether a participant-level output exists and matches its sidecar (size, SHA-256, parameters hash).

    The parameters are those the sidecar records: the group level cannot know the participant
    level's options, only whether the file is the one its sidecar describes.
    """
    metadata = read_sidecar(path)
    parameters = metadata.get("Parameters") if metadata is not None else None
    return isinstance(parameters, dict) and writer.is_complete(path, parameters)


def summary_entities(inventory: Inventory) -> list[dict[str, str]]:
    """The entities of every selected run, those whose BOLD inputs discovery found at fault included."""
    found = {run.name: dict(run.entities) for run in inventory.runs}
    for problem in inventory.skipped:
        found.setdefault(problem.run_name, parse_entities(problem.run_name))
    return [found[name] for name in sorted(found, key=lambda name: (found[name]["sub"], name))]


def permutation_outlook(design: GroupDesign, settings: GroupAnalysis, *, spatial: bool) -> dict[str, str]:
    """Contrasts whose permutation corrections will be left out, with the reason the real run gives.

    Parameters
    ----------
    design : GroupDesign
    settings : GroupAnalysis
        ``corrections``, ``alpha``, ``n_perm``, ``random_seed``.
    spatial : bool
        Voxel maps (cluster and TFCE corrections apply).

    Returns
    -------
    dict of str to str
        Contrast name to why (too few distinct sign flips or permutations); empty when every
        contrast's permutations can reach ``alpha``, or none are asked for.

    Raises
    ------
    UsageError
        ``--n-perm`` too small for ``--alpha``, or an effect that permutations cannot test.
    """
    wanted = [method for method in settings.corrections if method in PERMUTATION_CORRECTIONS
              and (spatial or method not in SPATIAL_CORRECTIONS)]
    if not wanted:
        return {}
    matrix = design.matrix.to_numpy(float)
    stand_in = np.random.default_rng(0).standard_normal((matrix.shape[0], 1))  # the checks use the design only
    left_out = {}
    for name, contrast in design.contrasts.items():
        try:
            model, _, scheme = build_model(stand_in, matrix, np.asarray(contrast), design.blocks, True, np.float32)
            resamples, exhaustive = draw_resamples(scheme, matrix.shape[0], settings.n_perm, design.blocks,
                                                   settings.random_seed)
            symmetric = model.two_sided or model.stat_type == "F"
            same = reproducing(resamples, model.exact_basis, scheme, symmetric)
            check_resolution(smallest_p(int(same.sum()), len(resamples), exhaustive), len(resamples), exhaustive,
                             settings.alpha, scheme)
        except NoDataError as error:
            left_out[name] = f"{', '.join(wanted)} left out: {error}"
    return left_out
