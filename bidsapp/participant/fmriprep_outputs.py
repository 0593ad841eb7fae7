"""Names, parameters and sidecars of the fMRIPrep pipeline's outputs, and writing them.

Every output is named with the run's entities (or, for task GLMs combined over
runs, ``sub``, ``ses`` and ``task``), the BOLD's space, then ``seg-<atlas>``,
``roi-<seed>``, ``contrast-<name>`` and ``stat-<statistic>``, as xcp_d and
fitlins name them. Each sidecar records its inputs, the denoising (strategy,
regressors, censored volumes, degrees of freedom) and every parameter; its
parameters hash decides whether a re-run skips the output.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp import __version__
from bidsapp.config import Analysis
from bidsapp.inputs.atlas import Atlas, parcel_centroids
from bidsapp.outputs.layout import (
    CONTRAST_MAP,
    CONTRAST_TABLE,
    FISHER_Z,
    NETWORK_MEANS,
    PARCEL_TIMESERIES,
    RELMAT,
    SEED_MAP,
    entities_label,
)
from bidsapp.outputs.relmat import relmat_text
from bidsapp.outputs.sidecars import AtlasRecord, ContrastRecord
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.steps import connectivity, denoise
from bidsapp.steps.glm.contrasts import STATISTICS, Contrast
from bidsapp.steps.glm.design import DEFAULT_HIGH_PASS_HZ
from bidsapp.steps.glm.fixed_effects import CombinedContrast
from bidsapp.steps.seeds import Seed
from bidsapp.steps.strategies import Strategy

LOGGER = logging.getLogger(__name__)
#: Statistics written per contrast, with what each is (:data:`bidsapp.steps.glm.contrasts.STATISTICS`).
GLM_STATS = {statistic.name: statistic.description for statistic in STATISTICS}
_ESTIMATORS = {"correlation": "Pearson correlation (numpy.corrcoef)",
               "partial correlation": "negated, normalised inverse of the empirical covariance",
               "covariance": "empirical (maximum-likelihood) covariance, divided by the number of volumes"}


@dataclass
class Context:
    """What every output of one participant shares; ``written`` lists the files written so far."""

    writer: DerivativesWriter
    analysis: Analysis
    strategy: Strategy
    atlas: Atlas
    written: list[Path] = field(default_factory=list)


def glm_high_pass(strategy: Strategy) -> float:
    """Cut-off of the design's cosine drift model, Hz: the strategy's high-pass, else nilearn's 0.01 Hz."""
    return strategy.high_pass_hz or DEFAULT_HIGH_PASS_HZ


def run_paths(writer: DerivativesWriter, entities: Mapping[str, str], space: Mapping[str, str], atlas: Atlas,
              analysis: Analysis) -> dict[str, Path]:
    """A run's outputs by role: ``timeseries``, ``relmat:<kind|fisherz|networks>``, ``seed:<name>:<r|z>``."""
    layout = writer.layout
    base = {**entities, **space}
    parcel = {**base, "seg": atlas.label}
    paths = {"timeseries": layout.participant_file(PARCEL_TIMESERIES, parcel)}
    for kind in analysis.connectivity:
        paths[f"relmat:{kind}"] = layout.participant_file(RELMAT, {**parcel, "stat": connectivity.STAT_LABELS[kind]})
    if "correlation" in analysis.connectivity:
        paths["relmat:fisherz"] = layout.participant_file(FISHER_Z, parcel)
        if atlas.networks:
            paths["relmat:networks"] = layout.participant_file(NETWORK_MEANS, parcel)
    for seed in analysis.seeds:
        for key, stat in (("r", "pearsoncorrelation"), ("z", "fisherz")):
            paths[f"seed:{seed.name}:{key}"] = layout.participant_file(SEED_MAP, {**base, "roi": seed.name,
                                                                                  "stat": stat})
    return paths


def task_paths(writer: DerivativesWriter, entities: dict, space: dict, atlas: Atlas,
               contrasts: list[Contrast]) -> dict[str, Path]:
    """A task's GLM outputs by role: ``<contrast>:<stat>`` maps and ``<contrast>:parcels`` tables."""
    layout = writer.layout
    base = {key: value for key, value in entities.items() if value is not None} | space
    paths = {}
    for contrast in contrasts:
        for stat in GLM_STATS:
            paths[f"{contrast.name}:{stat}"] = layout.participant_file(
                CONTRAST_MAP, {**base, "contrast": contrast.name, "stat": stat})
        paths[f"{contrast.name}:parcels"] = layout.participant_file(
            CONTRAST_TABLE, {**base, "seg": atlas.label, "contrast": contrast.name})
    return paths


def _denoise_parameters(context: Context, run) -> dict:
    return {"bidsapp": __version__, "inputs": [str(p) for p in run.files], "strategy": context.strategy.parameters(),
            "repetition_time_s": run.repetition_time}


def atlas_record(atlas: Atlas) -> AtlasRecord:
    """What parcel outputs' sidecars say about the atlas, with each parcel's centroid in mm."""
    return AtlasRecord(atlas.label, atlas.space, np.round(parcel_centroids(atlas), 2).tolist(),
                       tuple(str(p) for p in atlas.files), atlas.description, atlas.citation, len(atlas.names))


def contrast_record(contrast: Contrast, group) -> ContrastRecord:
    """A task contrast as its sidecars record it, with the conditions of the task's events."""
    conditions = sorted({str(c) for item in group.runs for c in item.events["trial_type"]})
    return ContrastRecord(contrast.name, contrast.expression, tuple(conditions))


def run_parameters(context: Context, item, role: str) -> dict:
    """Every parameter one run output depends on."""
    parameters = _denoise_parameters(context, item.run)
    if role.startswith("seed:"):
        seed = next(s for s in context.analysis.seeds if s.name == role.split(":")[1])
        return {**parameters, "seed": asdict(seed), "seed_radius_mm": context.analysis.seed_radius_mm,
                "smoothing_fwhm_mm": context.analysis.smoothing_fwhm_mm}
    parameters["atlas"] = {"label": context.atlas.label, "files": [str(p) for p in context.atlas.files]}
    if role.startswith("relmat:"):
        parameters["measure"] = role.split(":")[1]
    return parameters


def task_parameters(context: Context, group) -> dict[Path, dict]:
    """Every task output of ``group`` with the parameters it depends on."""
    analysis = context.analysis
    common = {"bidsapp": __version__, "inputs": [[str(p) for p in item.run.files] for item in group.runs],
              "strategy": context.strategy.parameters(), "hrf_model": analysis.hrf_model,
              "noise_model": analysis.noise_model, "drift_model": "cosine",
              "high_pass_hz": glm_high_pass(context.strategy)}
    contrasts = {c.name: asdict(c) for c in group.contrasts}
    result = {}
    space = group.runs[0].space
    for role, path in task_paths(context.writer, group.entities, space, context.atlas, group.contrasts).items():
        name, kind = role.split(":")
        extra = {"atlas": [str(p) for p in context.atlas.files]} if kind == "parcels" else \
            {"smoothing_fwhm_mm": analysis.smoothing_fwhm_mm}
        result[path] = {**common, **extra, "contrast": contrasts[name]}
    return result


def _write(context: Context, kind: str, path: Path, data, sidecar: dict, parameters: dict, sources) -> None:
    writer = context.writer
    if writer.is_complete(path, parameters):
        return
    if kind == "table":
        writer.write_table(path, data, sidecar, parameters=parameters, sources=sources)
    elif kind == "text":
        writer.write_text(path, data, sidecar, parameters=parameters, sources=sources)
    else:
        writer.write_image(path, data, sidecar, parameters=parameters, sources=sources)
    context.written.append(path)
    LOGGER.info("wrote %s", path.name)


def _denoise_sidecar(context: Context, item) -> dict:
    record = denoise.denoising_record(context.strategy, item.denoising, item.run.repetition_time)
    return {"RepetitionTime": item.run.repetition_time, **record}


def write_parcel_outputs(context: Context, item, cleaned: np.ndarray, result: connectivity.ParcelConnectivity,
                         wanted: dict[str, Path]) -> None:
    """The cleaned parcel time series and the connectivity matrices of one run (computed by the caller)."""
    atlas, run = context.atlas, item.run
    names = list(item.parcels.names)
    sources = [str(p) for p in (*run.files, *atlas.files)]
    shared = {**_denoise_sidecar(context, item), "Atlas": atlas_record(atlas).to_sidecar()}
    if "timeseries" in wanted:
        sidecar = {"Description": "Mean time series of each parcel, cleaned (kept volumes only; n/a for parcels with "
                                  "less than half of their voxels in the brain mask)", **shared,
                   "ParcelCoverage": item.parcels.coverage_record()}
        _write(context, "table", wanted["timeseries"], pd.DataFrame(cleaned, columns=names), sidecar,
               run_parameters(context, item, "timeseries"), sources)
    for kind, matrix in result.matrices.items():
        sidecar = {"Description": f"{kind} between parcels of the cleaned time series; n/a for parcels without data",
                   "Estimator": _ESTIMATORS[kind], **shared}
        if kind in result.warnings:
            sidecar["Warning"] = result.warnings[kind]
        _write_matrix(context, wanted, f"relmat:{kind}", matrix, names, sidecar, item, sources)
        if kind == "correlation" and result.fisher_z is not None:
            _write_matrix(context, wanted, "relmat:fisherz", result.fisher_z, names,
                          {**sidecar, "Description": "Fisher z (arctanh r) of the Pearson correlations; n/a on the "
                                                     "diagonal and for parcels without data"}, item, sources)
            if result.networks is not None and "relmat:networks" in wanted:
                table = result.networks
                sidecar = {**sidecar, "Description": "Mean Fisher z over pairs of distinct parcels within and "
                                                     "between networks (n/a pairs left out)"}
                _write(context, "text", wanted["relmat:networks"],
                       relmat_text(table.to_numpy(), table.index, index_column="network"), sidecar,
                       run_parameters(context, item, "relmat:networks"), sources)


def _write_matrix(context, wanted, role, matrix, names, sidecar, item, sources) -> None:
    """A parcel x parcel matrix in the :mod:`bidsapp.outputs.relmat` layout."""
    if role in wanted:
        _write(context, "text", wanted[role], relmat_text(matrix, names), sidecar,
               run_parameters(context, item, role), sources)


def _volume(values: np.ndarray, mask: np.ndarray, affine: np.ndarray):
    import nibabel as nib

    volume = np.zeros(mask.shape, dtype=np.float32)
    volume[mask] = values
    return nib.Nifti1Image(volume, affine)


def write_seed_outputs(context: Context, item, seed: Seed, r: np.ndarray, wanted: dict[str, Path]) -> None:
    """The r and Fisher z maps of one seed in one run."""
    sidecar = {"Description": "Pearson correlation of the cleaned seed series with every cleaned voxel series "
                              "(nilearn's seed-to-voxel recipe)",
               "Seed": {"Name": seed.name, "CoordinatesMM": [seed.x, seed.y, seed.z],
                        "RadiusMM": context.analysis.seed_radius_mm,
                        "NumberOfVoxels": int(len(item.seed_voxels[seed.name]))},
               "SmoothingFWHM": context.analysis.smoothing_fwhm_mm, **_denoise_sidecar(context, item)}
    for key, values, what in (("r", r, "Pearson r"), ("z", connectivity.fisher_z(r), "Fisher z (arctanh r)")):
        role = f"seed:{seed.name}:{key}"
        if role in wanted:
            _write(context, "image", wanted[role], _volume(values, item.mask, item.affine),
                   {**sidecar, "Statistic": what}, run_parameters(context, item, role),
                   [str(p) for p in item.run.files])


def write_task(context: Context, group, voxels: dict[str, CombinedContrast],
               parcels: dict[str, CombinedContrast]) -> None:
    """Write each contrast's maps and parcel table, as combined over runs by the compute step.

    Parameters
    ----------
    context : Context
    group : bidsapp.participant.fmriprep.TaskGroup
    voxels, parcels : dict of str to CombinedContrast
        By contrast name (:func:`bidsapp.participant.fmriprep.combine_task`); the
        voxel maps' ``units`` is the brain mask they cover, the parcel maps' the
        parcels with data. Contrasts absent from ``voxels`` are not written.
    """
    parameters = task_parameters(context, group)
    paths = task_paths(context.writer, group.entities, group.runs[0].space, context.atlas, group.contrasts)
    atlas = context.atlas
    for contrast in group.contrasts:
        if contrast.name not in voxels:
            continue
        combined, parcel_combined = voxels[contrast.name], parcels[contrast.name]
        maps, parcel_maps, mask, valid = combined.maps, parcel_combined.maps, combined.units, parcel_combined.units
        assert mask is not None, "voxel fits are on the brain mask (fit_run's units), so their combination has one"
        runs = [item for item in group.runs if item.run.name in combined.runs]
        sidecar = {"Description": f"First-level contrast {contrast.name} = {contrast.expression}, runs combined by "
                                  "fixed effects", **contrast_record(contrast, group).to_sidecar(),
                   "Runs": [item.run.name for item in runs], "HRFModel": context.analysis.hrf_model,
                   "NoiseModel": context.analysis.noise_model, "DriftModel": "cosine",
                   "HighPassHz": glm_high_pass(context.strategy), "SmoothingFWHM": context.analysis.smoothing_fwhm_mm,
                   "EffectUnits": "percent signal change", "DesignColumns": {
                       item.run.name: [str(c) for c in item.design.columns] for item in runs},
                   "Denoising": {item.run.name: _denoise_sidecar(context, item) for item in runs}}
        sources = [str(p) for item in runs for p in item.run.files]
        for stat in GLM_STATS:
            path = paths[f"{contrast.name}:{stat}"]
            _write(context, "image", path, _volume(getattr(maps, stat), mask, runs[0].affine),
                   {**sidecar, "Statistic": f"{stat}: {GLM_STATS[stat]}", "DegreesOfFreedom": maps.dof},
                   parameters[path], sources)
        table = pd.DataFrame({"name": list(atlas.names)})
        if atlas.networks:
            table["network"] = list(atlas.networks)
        for stat in GLM_STATS:
            table[stat] = np.nan
            table.loc[valid, stat] = getattr(parcel_maps, stat)
        path = paths[f"{contrast.name}:parcels"]
        _write(context, "table", path, table, {**sidecar, "DegreesOfFreedom": parcel_maps.dof, "Columns": GLM_STATS,
                                               "Atlas": atlas_record(atlas).to_sidecar()}, parameters[path],
               sources + [str(p) for p in atlas.files])


def write_report(context: Context, participant: str, prepared, groups) -> None:
    """The participant's HTML report (kept as is when nothing was written and it exists)."""
    from bidsapp.reports import fmriprep as reports

    path = context.writer.layout.participant_report(participant)
    if path.is_file() and not context.written:
        return
    analysis, strategy = context.analysis, context.strategy
    runs = []
    backgrounds = {id(item): _volume(item.mean if item.mean is not None else item.mask[item.mask].astype(np.float32),
                                     item.mask, item.affine) for item in prepared}
    for item in prepared:
        paths = run_paths(context.writer, item.run.entities, item.space, context.atlas, analysis)
        runs.append(reports.RunSection(
            item.run.name, item.confounds, item.denoising.confounds, item.denoising.censored,
            strategy.scrub.fd_threshold_mm if strategy.scrub else None, item.carpet,
            paths.get("relmat:correlation"), context.atlas.networks,
            [(s.name, (s.x, s.y, s.z), paths[f"seed:{s.name}:r"]) for s in analysis.seeds],
            backgrounds[id(item)], strategy.scrub.std_dvars_threshold if strategy.scrub else None))
    tasks = []
    for group in groups:
        paths = task_paths(context.writer, group.entities, group.runs[0].space, context.atlas, group.contrasts)
        name = entities_label(group.entities)
        tasks.append(reports.TaskSection(name, {item.run.name: item.design for item in group.runs},
                                         {c.name: paths[f"{c.name}:z"] for c in group.contrasts},
                                         backgrounds[id(group.runs[0])]))
    text = reports.render(participant, f"{strategy.name}: {strategy.methods}", runs, tasks, __version__)
    context.writer.write_text(path, text)
    LOGGER.info("wrote %s", path.name)
