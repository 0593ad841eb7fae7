"""The subject level: each participant's runs combined within a session, and sessions within the participant.

At the end of a participant's participant level (either pipeline), the results
the pipeline wrote per run, or per session when the pipeline itself combines
runs, are combined into one result per participant, task, space, atlas, seed,
connectivity kind and contrast, named as its sources without ``run``, ``dir``
and ``ses`` (:data:`~bidsapp.outputs.layout.SUBJECT_LEVEL_DROPS`). A participant
with several sessions gets per-session results too (``ses``, no ``run``), which
the group level uses when sessions are conditions.

* First-level contrasts: fixed effects (:func:`~bidsapp.steps.glm.fixed_effects.combine_maps`,
  as runs are combined within a session); both pipelines already combine a
  session's runs so, so only sessions are combined here.
* Correlations (Pearson and partial, matrices and seed maps): the equal-weight
  mean of Fisher z, back to r; Fisher z matrices and maps, network means,
  covariances and selective averages: the plain equal-weight mean.
* A pipeline's own combination of a session's runs is reused: the HCP
  pipeline's rest matrices of concatenated runs, both pipelines' GLM fixed effects.

A result with one source (one run, or one session) is copied under the
combined name, so that the group level finds one result per participant; when
the source already has that name (no session, one run without ``run``) nothing
is written. Each sidecar lists the runs and sessions that went in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bidsapp import __version__
from bidsapp.outputs.layout import SESSION_LEVEL_DROPS, SUBJECT_LEVEL_DROPS, OutputLayout, split_filename
from bidsapp.outputs.relmat import read_relmat, relmat_text
from bidsapp.outputs.sidecars import read_sidecar
from bidsapp.outputs.writer import CHECKSUM_KEY, DerivativesWriter
from bidsapp.steps.connectivity import fisher_z
from bidsapp.steps.glm.contrasts import STATISTICS
from bidsapp.steps.glm.fixed_effects import ContrastMaps, combine_maps

LOGGER = logging.getLogger(__name__)
Method = Literal["fixed effects", "mean Fisher z", "mean"]
_METHODS = {"fixed effects": "fixed effects (effects averaged, variances summed / n^2, degrees of freedom summed; "
                             "nilearn compute_fixed_effects)",
            "mean Fisher z": "equal-weight mean of Fisher z (arctanh r), transformed back to r (tanh)",
            "mean": "equal-weight mean (the values are not correlations, or are Fisher z already)"}
_CORRELATIONS = ("pearsoncorrelation", "partialcorrelation")
_OWN_KEYS = ("Parameters", "ParametersHash", "Sources", "GeneratedBy", "DataFileSize", CHECKSUM_KEY)


@dataclass(frozen=True)
class Combination:
    """One result combined from a participant's runs or sessions.

    Attributes
    ----------
    level : {"session", "subject"}
    method : {"fixed effects", "mean Fisher z", "mean"}
    output : Path
        The combined file; for contrast maps the effect map (the other statistics beside it).
    sources : tuple of Path
        The per-run (or per-session) files combined, effect maps for contrast maps.
    """

    level: Literal["session", "subject"]
    method: Method
    output: Path
    sources: tuple[Path, ...]

    @property
    def outputs(self) -> tuple[Path, ...]:
        """Every file written: one, or each statistic of a contrast map."""
        if _is_contrast_map(self.output):
            return tuple(_with_stat(self.output, statistic.name) for statistic in STATISTICS)
        return (self.output,)


def _is_contrast_map(path: Path) -> bool:
    entities, suffix, extension = split_filename(path.name)
    return suffix == "statmap" and extension == ".nii.gz" and "contrast" in entities


def _with_stat(path: Path, stat: str) -> Path:
    entities, suffix, extension = split_filename(path.name)
    return path.with_name(path.name.replace(f"_stat-{entities['stat']}_", f"_stat-{stat}_"))


def _method(path: Path) -> Method | None:
    """How results of this file's kind combine; ``None`` for files that are not combined."""
    entities, suffix, extension = split_filename(path.name)
    if suffix == "statmap" and "contrast" in entities:
        if extension == ".nii.gz":
            return "fixed effects" if entities.get("stat") == "effect" else None
        return "mean" if entities.get("desc") == "selectiveaverage" else "fixed effects"
    if (suffix == "statmap" and "roi" in entities) or suffix == "relmat":
        return "mean Fisher z" if entities.get("stat") in _CORRELATIONS and "desc" not in entities else "mean"
    return None


def plan_combinations(layout: OutputLayout, planned: Iterable[Path]) -> list[Combination]:
    """The combinations of a participant's planned participant-level outputs, sessions after runs.

    Parameters
    ----------
    layout : OutputLayout
    planned : iterable of Path
        Every file the participant's pipeline writes.

    Returns
    -------
    list of Combination
        Per-session combinations first (only for a participant with several sessions), then
        the subject-level ones.
    """
    paths = sorted({path for path in planned if _method(path) is not None})
    written = set(paths)
    sessions: dict[Path, list[Path]] = {}
    for path in paths:
        sessions.setdefault(layout.combined_file(path, SESSION_LEVEL_DROPS), []).append(path)
    session_results: dict[Path, Combination | Path] = {}
    for target, members in sessions.items():
        if target in written or members == [target]:
            session_results[target] = target  # the pipeline's own combination, or a lone unnamed run
        else:
            session_results[target] = Combination("session", _method(target) or "mean", target, tuple(members))
    subjects: dict[Path, list[Path]] = {}
    for target in session_results:
        subjects.setdefault(layout.combined_file(target, SUBJECT_LEVEL_DROPS), []).append(target)
    session_level, subject_level = [], []
    for target, members in subjects.items():
        method = _method(target) or "mean"
        if len(members) == 1:  # one session (or none): its runs give the subject-level result directly
            found = session_results[members[0]]
            if isinstance(found, Combination):
                subject_level.append(replace(found, level="subject", output=target))
            elif found != target:
                subject_level.append(Combination("subject", method, target, (found,)))
            continue
        for member in members:
            found = session_results[member]
            if isinstance(found, Combination):
                session_level.append(found)
        subject_level.append(Combination("subject", method, target, tuple(members)))
    return session_level + subject_level


def combine_participant(layout: OutputLayout, writer: DerivativesWriter, planned: Iterable[Path]) -> list[Path]:
    """Write every combination of the participant's outputs that is not complete yet; return those written."""
    written: list[Path] = []
    for combination in plan_combinations(layout, planned):
        sources = [path for path in combination.sources if path.is_file()]
        if not sources:
            LOGGER.info("%s: no source written, not combined", combination.output.name)
            continue
        parameters = {"bidsapp": __version__, "step": f"{combination.level} level", "method": combination.method,
                      # by name, not path: OUTPUT_DIR may move; the checksum catches a rewritten source
                      "sources": {path.name: (read_sidecar(path) or {}).get(CHECKSUM_KEY) for path in sources}}
        if all(writer.is_complete(path, parameters) for path in combination.outputs):
            continue
        _write(writer, replace(combination, sources=tuple(sources)), parameters)
        written += combination.outputs
        LOGGER.info("wrote %s (%s of %d)", combination.output.name, combination.method, len(sources))
    return written


def _sidecar(combination: Combination) -> dict[str, Any]:
    """The sources' shared sidecar content, with the combination, its runs and sessions."""
    sidecars = [read_sidecar(path) or {} for path in combination.sources]
    shared = {key: value for key, value in sidecars[0].items()
              if key not in _OWN_KEYS and all(other.get(key) == value for other in sidecars[1:])}
    runs, sessions = [], []
    for path, sidecar in zip(combination.sources, sidecars, strict=True):
        entities, _, _ = split_filename(path.name)
        listed = sidecar.get("Runs") or [_run_label(entities)]
        runs += [run for run in listed if run not in runs]
        for session in sidecar.get("Sessions") or ([entities["ses"]] if "ses" in entities else []):
            sessions += [] if session in sessions else [session]
    what = "sessions" if combination.level == "subject" and len(sessions) > 1 else "runs"
    description = sidecars[0].get("Description", "")
    return {**shared, "Description": f"{description}; {what} combined by {_METHODS[combination.method]}",
            "CombinationLevel": combination.level, "CombinationMethod": _METHODS[combination.method],
            "Runs": runs, "Sessions": sessions}


def _run_label(entities: dict[str, str]) -> str:
    return "_".join(f"{key}-{entities[key]}" for key in ("sub", "ses", "task", "acq", "dir", "run", "echo")
                    if key in entities)


def _write(writer: DerivativesWriter, combination: Combination, parameters: dict[str, Any]) -> None:
    """Read the sources, combine them and write the result(s) with their sidecar."""
    sidecar = _sidecar(combination)
    sources = [str(path) for path in combination.sources]
    output = combination.output
    if _is_contrast_map(output):
        _write_contrast_maps(writer, combination, sidecar, parameters)
    elif output.suffix == ".tsv" and output.name.endswith("_relmat.tsv"):
        tables = [read_relmat(path) for path in combination.sources]
        values = combine_values([table.to_numpy(dtype=float) for table in tables], combination.method)
        writer.write_text(output, relmat_text(values, tables[0].columns.tolist(), str(tables[0].index.name)),
                          sidecar, parameters=parameters, sources=sources)
    elif output.suffix == ".tsv":
        table, dof = _combine_tables(combination)
        writer.write_table(output, table, {**sidecar, **({"DegreesOfFreedom": dof} if dof is not None else {})},
                           parameters=parameters, sources=sources)
    else:
        import nibabel as nib

        images = [nib.load(path) for path in combination.sources]
        stack = [np.asarray(image.get_fdata(), dtype=float) for image in images]
        inside = np.logical_and.reduce([np.isfinite(values) & (values != 0) for values in stack])
        volume = np.zeros(inside.shape, dtype=np.float32)
        volume[inside] = combine_values([values[inside] for values in stack], combination.method)
        writer.write_image(output, nib.Nifti1Image(volume, images[0].affine), sidecar, parameters=parameters,
                           sources=sources)


def combine_values(values: Sequence[np.ndarray], method: Method) -> np.ndarray:
    """Equal-weight combination of same-shaped arrays: the mean, or the mean Fisher z back to r.

    Where every source has the same value (a diagonal of ones, a single source) that value is kept.
    """
    stack = np.stack([np.asarray(item, dtype=float) for item in values])
    if method == "mean":
        return stack.mean(axis=0)
    combined = np.tanh(fisher_z(stack).mean(axis=0))
    same = (stack == stack[0]).all(axis=0)
    return np.where(same, stack[0], combined)


def _fixed_effects(effects: Sequence[np.ndarray], variances: Sequence[np.ndarray], dofs: Sequence[float],
                   valid: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """Each statistic of the fixed effects on ``valid`` units (NaN elsewhere), and the degrees of freedom."""
    maps: ContrastMaps = combine_maps([e[valid] for e in effects], [v[valid] for v in variances], dofs)
    result = {}
    for statistic in STATISTICS:
        values = np.full(valid.shape, np.nan)
        values[valid] = getattr(maps, statistic.name)
        result[statistic.name] = values
    return result, maps.dof


def _dofs(combination: Combination) -> list[float]:
    return [float((read_sidecar(path) or {})["DegreesOfFreedom"]) for path in combination.sources]


def _write_contrast_maps(writer: DerivativesWriter, combination: Combination, sidecar: dict[str, Any],
                         parameters: dict[str, Any]) -> None:
    """Each statistic map of a contrast's fixed effects over the voxels every source has."""
    import nibabel as nib

    images = [nib.load(path) for path in combination.sources]
    effects = [np.asarray(image.get_fdata(), dtype=float) for image in images]
    variances = [np.asarray(nib.load(_with_stat(path, "variance")).get_fdata(), dtype=float)
                 for path in combination.sources]
    valid = np.logical_and.reduce([np.isfinite(e) & np.isfinite(v) & (v > 0) for e, v in zip(effects, variances,
                                                                                             strict=True)])
    maps, dof = _fixed_effects(effects, variances, _dofs(combination), valid)
    if len(combination.sources) == 1:  # a copy: the source's own statistics, not recomputed from float32 maps
        maps = {statistic.name: np.asarray(nib.load(_with_stat(combination.sources[0], statistic.name)).dataobj,
                                           dtype=float) for statistic in STATISTICS}
    sources = [str(_with_stat(path, stat)) for path in combination.sources for stat in ("effect", "variance")]
    for statistic in STATISTICS:
        volume = np.nan_to_num(maps[statistic.name], nan=0.0).astype(np.float32)
        writer.write_image(_with_stat(combination.output, statistic.name), nib.Nifti1Image(volume, images[0].affine),
                           {**sidecar, "Statistic": f"{statistic.name}: {statistic.description}",
                            "DegreesOfFreedom": dof}, parameters=parameters, sources=sources)


def _combine_tables(combination: Combination) -> tuple[pd.DataFrame, float | None]:
    """A parcel table's statistics combined row by row (fixed effects, or the mean ``effect``), and its dof."""
    tables = [pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False) for path in combination.sources]
    table = tables[0].copy()
    if len(tables) == 1:
        return table, _dofs(combination)[0] if combination.method == "fixed effects" else None
    if combination.method == "mean":
        table["effect"] = np.mean([item["effect"].to_numpy(dtype=float) for item in tables], axis=0)
        return table, None
    effects = [item["effect"].to_numpy(dtype=float) for item in tables]
    variances = [item["variance"].to_numpy(dtype=float) for item in tables]
    valid = np.logical_and.reduce([np.isfinite(e) & np.isfinite(v) & (v > 0) for e, v in zip(effects, variances,
                                                                                             strict=True)])
    maps, dof = _fixed_effects(effects, variances, _dofs(combination), valid)
    for name, values in maps.items():
        table[name] = values
    return table, dof
