"""Participant level for HCP-style parcellated data: rest connectivity, task GLMs and a report.

Methods. Each resting run's parcel time series were linearly detrended and
z-scored (and band-passed when ``--high-pass``/``--low-pass`` were given;
:mod:`bidsapp.steps.parcel_cleaning`). Pearson correlation, partial correlation or
covariance matrices were computed per run and on the concatenation of the
cleaned runs (so each run weighs by its length, as the HCP course concatenates
its runs), with Fisher z and within/between-network means of the 12
Cole-Anticevic networks (:mod:`bidsapp.steps.connectivity`). Each task run, in
percent signal change, was modelled with all the task's conditions convolved
with the HRF, cosine drifts (0.01 Hz unless ``--high-pass``) and a constant,
fitted per parcel with AR(1) prewhitening (or OLS), and the two runs were
combined by fixed effects (:mod:`bidsapp.steps.parcel_glm`). The HCP course's
selective average was computed for each contrast too.

Outputs, under ``sub-<label>/[ses-<label>/]func/``, each with a JSON sidecar
(inputs, strategy, parameters), are named by :mod:`bidsapp.outputs.layout` (the
README's "Outputs" lists them): per resting run and for the combined runs, the
connectivity matrices, their Fisher z and the network means; per task, one
contrast table per contrast (one row per parcel: name, hemisphere, network,
effect, variance, t, z, p, ``p`` one-sided upper tail as nilearn's; degrees of
freedom in the sidecar) and its selective average; and the participant report.

Relationship matrices are square TSVs: first column ``node`` (``network`` for
network means) with the row names, then one column per parcel
(:mod:`bidsapp.outputs.relmat`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bidsapp.inputs.discovery import run_name
from bidsapp.inputs.parcel_labels import node_coordinates, parcel_table
from bidsapp.inputs.readers import read_parcel_timeseries
from bidsapp.outputs.relmat import relmat_bytes
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.participant import parcels_sidecars as sidecars
from bidsapp.participant.parcels_plan import RestPlan, TaskPlan, dummy_volumes, plan_participant
from bidsapp.steps.connectivity import (
    STAT_LABELS,
    covariance,
    fisher_z_matrix,
    from_covariance,
    network_means,
    pooled_covariance,
)
from bidsapp.steps.parcel_cleaning import clean_parcels, parcel_strategy
from bidsapp.steps.parcel_glm import TaskRun, fit_task, selective_average_contrasts, statmap_table

if TYPE_CHECKING:  # the job type's module imports this pipeline when it runs a job
    from bidsapp.participant.level import ParticipantJob

LOGGER = logging.getLogger(__name__)
_KINDS = {label: kind for kind, label in STAT_LABELS.items()}


def planned_outputs(job: ParticipantJob, writer: DerivativesWriter) -> list[Path]:
    """Every file :func:`process_participant` writes for ``job`` (each table has a JSON sidecar)."""
    parcel_strategy(job.analysis.denoise_strategy)
    rest, tasks, _ = plan_participant(job, writer)
    return _data_paths(rest, tasks) + ([writer.layout.participant_report(job.participant)] if job.reports else [])


def _data_paths(rest: list[RestPlan], tasks: list[TaskPlan]) -> list[Path]:
    """Every data file of the planned rest and task outputs."""
    paths = [output.path for plan in rest for output in plan.outputs.values()]
    for plan in tasks:
        paths += [output.path for name in plan.statmaps for output in (plan.statmaps[name], plan.averages[name])]
    return paths


def process_participant(job: ParticipantJob, writer: DerivativesWriter) -> list[Path]:
    """Analyse one participant's parcellated runs and write the outputs that are not complete yet.

    Returns every data file planned (written now or complete before), for the subject level.

    Parameters
    ----------
    job : bidsapp.participant.level.ParticipantJob
    writer : DerivativesWriter

    Raises
    ------
    UsageError
        A confound-based ``--denoise-strategy``, or a ``--contrast`` naming no task's conditions.
    MissingInputError
        Events beyond the end of their run; parcel labels that do not name the data's parcels.
    """
    parcel_strategy(job.analysis.denoise_strategy)
    assert job.parcel_names is not None, "discovery reads the parcel names of parcellated inputs"
    parcels = parcel_table(job.parcel_names, job.runs[0].data, job.participant)
    rest, tasks, warnings = plan_participant(job, writer)
    written: dict[Path, pd.DataFrame] = {}
    wrote = False
    for rest_plan in rest:
        wrote |= _rest(rest_plan, job, writer, parcels, written)
    for task_plan in tasks:
        wrote |= _task(task_plan, job, writer, parcels, written)
    report = writer.layout.participant_report(job.participant)
    if job.reports and (wrote or not report.is_file()):
        from bidsapp.reports.parcels import render_participant_report

        writer.write_text(report, render_participant_report(job, parcels, rest, tasks, warnings, written))
        LOGGER.info("sub-%s: wrote %s", job.participant, report.name)
    return _data_paths(rest, tasks)


def _rest(plan: RestPlan, job: ParticipantJob, writer: DerivativesWriter, parcels: pd.DataFrame,
          written: dict[Path, pd.DataFrame]) -> bool:
    """Connectivity of one group of resting runs; False when every output was complete.

    The combined runs' correlation matrix and network means are kept in ``written`` for the report.
    """
    todo = {key: out for key, out in plan.outputs.items() if not writer.is_complete(out.path, out.parameters)}
    if not todo:
        LOGGER.info("%s: connectivity complete, skipped", run_name(plan.entities))
        return False
    analysis = job.analysis
    dummy = dummy_volumes(analysis.dummy_scans)
    coordinates = node_coordinates(job.runs[0].data, job.participant, len(parcels))
    for key, table in rest_connectivity(plan, list(todo), job, parcels).items():
        scope, stat, desc = key
        output = todo[key]
        runs = plan.runs if scope == "combined" else [run for run in plan.runs if run.name == scope]
        sidecar = sidecars.relmat(stat, desc, runs, dummy, analysis, coordinates)
        text = relmat_bytes(table.to_numpy(), table.index.tolist(), index_column=str(table.index.name))
        if desc == "networks" or (scope, stat, desc) == ("combined", "pearsoncorrelation", None):
            written[output.path] = table
        writer.write_text(output.path, text, sidecar, parameters=output.parameters,
                          sources=output.parameters["inputs"])
    LOGGER.info("%s: wrote %d connectivity matrices", run_name(plan.entities), len(todo))
    return True


def rest_connectivity(plan: RestPlan, keys: list[tuple[str, str, str | None]], job: ParticipantJob,
                      parcels: pd.DataFrame) -> dict[tuple[str, str, str | None], pd.DataFrame]:
    """The connectivity matrices of one group of resting runs, per output key of ``plan``.

    Each run is cleaned (:func:`~bidsapp.steps.parcel_cleaning.clean_parcels`) and
    its covariance computed once; the combined runs' covariance is pooled from them.

    Parameters
    ----------
    plan : RestPlan
    keys : list of (scope, stat, desc)
        The outputs to compute (keys of ``plan.outputs``).
    job : bidsapp.participant.level.ParticipantJob
    parcels : DataFrame
        Columns name and network, one row per parcel.

    Returns
    -------
    dict of (scope, stat, desc) to DataFrame
        Parcel x parcel matrices (index named ``node``; Fisher z for ``desc``
        ``fisherz``), or network x network mean Fisher z (index named
        ``network``) for ``desc`` ``networks``.
    """
    analysis = job.analysis
    dummy = dummy_volumes(analysis.dummy_scans)
    cleaned = {run.name: clean_parcels(read_parcel_timeseries(run)[dummy:], run.repetition_time,
                                       high_pass_hz=analysis.high_pass_hz, low_pass_hz=analysis.low_pass_hz)
               for run in plan.runs}
    covariances = {name: covariance(data) for name, data in cleaned.items()}
    covariances["combined"] = pooled_covariance(list(cleaned.values()), list(covariances.values()))
    volumes = {name: len(data) for name, data in cleaned.items()}
    volumes["combined"] = sum(volumes.values())
    names = parcels["name"].tolist()
    tables = {}
    for key in keys:
        scope, stat, desc = key
        matrix = from_covariance(covariances[scope], _KINDS[stat], volumes[scope])
        if np.isnan(matrix).all():
            LOGGER.warning("%s: %s not estimable from %d volumes of %d parcels (all n/a)", plan.outputs[key].path.name,
                           _KINDS[stat], volumes[scope], len(names))
        if desc == "networks":
            tables[key] = network_means(fisher_z_matrix(matrix), parcels["network"])
            continue
        values = fisher_z_matrix(matrix) if desc == "fisherz" else matrix
        tables[key] = pd.DataFrame(values, index=pd.Index(names, name="node"), columns=names)
    return tables


def _task(plan: TaskPlan, job: ParticipantJob, writer: DerivativesWriter, parcels: pd.DataFrame,
          written: dict[Path, pd.DataFrame]) -> bool:
    """Statistics maps of one task; False when every output was complete. The maps are kept in ``written``."""
    outputs = [*plan.statmaps.values(), *plan.averages.values()]
    if all(writer.is_complete(out.path, out.parameters) for out in outputs):
        LOGGER.info("%s: GLM complete, skipped", run_name(plan.entities))
        return False
    analysis = job.analysis
    dummy = dummy_volumes(analysis.dummy_scans)
    runs = [TaskRun(run.name, read_parcel_timeseries(run), events, run.repetition_time, dummy)
            for run, events in zip(plan.runs, plan.events, strict=True)]
    fit = fit_task(runs, plan.contrasts, hrf_model=analysis.hrf_model, noise_model=analysis.noise_model,
                   high_pass_hz=analysis.high_pass_hz)
    averages = selective_average_contrasts(runs, plan.contrasts, plan.conditions)
    for contrast in plan.contrasts:
        maps = fit.contrasts[contrast.name].maps
        output = plan.statmaps[contrast.name]
        sidecar = sidecars.statmap(contrast, plan, fit, maps.dof, analysis, dummy)
        written[output.path] = statmap_table(maps, parcels)
        writer.write_table(output.path, written[output.path], sidecar, parameters=output.parameters,
                           sources=output.parameters["inputs"])
        output = plan.averages[contrast.name]
        table = parcels[["name", "hemisphere", "network"]].assign(effect=averages[contrast.name])
        writer.write_table(output.path, table, sidecars.selective_average(contrast, plan),
                           parameters=output.parameters, sources=output.parameters["inputs"])
    LOGGER.info("%s: wrote %d contrasts", run_name(plan.entities), len(plan.contrasts))
    return True
