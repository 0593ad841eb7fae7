"""The permutation engine: max-statistic FWE for voxels, clusters, TFCE, parcels and edges.

One engine for every design (Winkler et al., 2014). The contrast splits the design into the tested
regressors and nuisance regressors (``Z = X @ null(C)``); the data are residualised on ``Z`` and the
residuals resampled (Freedman & Lane, 1983; :mod:`bidsapp.stats.residuals`):

- sign flipping when the tested regressors ``X @ C.T`` are constant (one-sample designs, with or without
  covariates; nilearn's rule): independent and symmetric errors;
- otherwise permutation of the rows, within exchangeability ``blocks`` when given (paired and
  repeated-measures designs: permutation within participant, which is sign flipping for two conditions).

Each resample's statistic is computed with one float32 matrix product per block of resamples and voxels:
the design rows of ``b`` resamples, ``(b * (r + k), n)``, times the normalised residuals ``(n, chunk)``,
followed by fused max reductions; only the maxima are kept (memory is bounded by the block sizes, chosen
from ``memory_mb``). Nuisance columns that resampling leaves unchanged (the intercept, per-participant
columns within their own blocks) drop out of the product.

FWE p values (:mod:`bidsapp.stats.pvalues`): ``(1 + #{null max >= observed}) / (n_perm + 1)`` for random
resamples (the observed counted once, as nilearn does), ``#{resamples with max >= observed} / n_resamples``
when every sign flip (``2**n <= n_perm``) or every permutation within blocks is enumerated, the identity
included. Resamples that give back the observed map (the identity; for a two-sided t or an F, every sign
flipped) take the observed maximum in float64 instead of a float32 recomputation that rounding can put below
it, so no p value is below the smallest attainable one. Enumerated sign flips of a two-sided t or an F are
computed for half the flips, the other half being their mirror images. Ties within float32 rounding
(``64 * eps`` relative) count as exceedances. Cluster p values use the same rule (nilearn reports
``#{null >= observed} / n_perm`` for clusters). Resamples are drawn up front from
``numpy.random.default_rng(random_state)`` so results do not depend on ``n_jobs``.

References
----------
Freedman, D., & Lane, D. (1983). A nonstochastic interpretation of reported significance levels. Journal
of Business & Economic Statistics, 1(4), 292-298.
Winkler, A. M., Ridgway, G. R., Webster, M. A., Smith, S. M., & Nichols, T. E. (2014). Permutation
inference for the general linear model. NeuroImage, 92, 381-397.
Smith, S. M., & Nichols, T. E. (2009). Threshold-free cluster enhancement. NeuroImage, 44(1), 83-98.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
from joblib import Parallel, delayed
from scipy import stats
from threadpoolctl import threadpool_limits

from bidsapp.errors import UsageError
from bidsapp.stats.parametric import Alternative
from bidsapp.stats.pvalues import fwe_p, p_rule, reproducing, smallest_p
from bidsapp.stats.resampling import Scheme, check_resolution, draw_resamples
from bidsapp.stats.residuals import ResidualModel, build_model, statistic
from bidsapp.stats.spatial import ClusterMaps, Connectivity, VoxelGraph, cluster_maps, cluster_maxima, tfce, voxel_graph


@dataclass(frozen=True, eq=False)
class PermutationResult:
    """Observed statistics and FWE-corrected p values; arrays have shape (n_features,), NaN where not tested.

    Attributes
    ----------
    stat_type : {"t", "F"}
    stat : numpy.ndarray
        Observed t or F (float64; equal to :func:`bidsapp.stats.parametric.compute_contrast`).
    df : tuple of int
    p_fwe, null_max : numpy.ndarray
        Voxel-level max-statistic FWE p values; the maximum (``|t|`` if two-sided) of each resample.
    n_perm, scheme, exhaustive, two_sided, alternative, random_state :
        What was resampled and how (``alternative``: the tail tested, ``two-sided`` for F): ``n_perm``
        resamples used (all of them when ``exhaustive``);
        ``random_state`` is the seed used, drawn when none was given.
    smallest_p : float
        The smallest attainable FWE p value (:func:`bidsapp.stats.pvalues.smallest_p`).
    height_threshold, cluster_threshold : float or None
        Cluster-forming threshold as a p value and on the statistic's scale.
    clusters : ClusterMaps or None
        Observed clusters (label, size in voxels, mass) with ``p_fwe_size``, ``p_fwe_mass``,
        ``null_max_size``, ``null_max_mass``.
    tfce : numpy.ndarray or None
        Observed TFCE scores with ``p_fwe_tfce`` and ``null_max_tfce``.
    """

    stat_type: Literal["t", "F"]
    stat: np.ndarray
    df: tuple[int, int]
    p_fwe: np.ndarray
    null_max: np.ndarray
    n_perm: int
    scheme: Scheme
    exhaustive: bool
    two_sided: bool
    random_state: int | None
    smallest_p: float
    alternative: Alternative = "two-sided"
    height_threshold: float | None = None
    cluster_threshold: float | None = None
    connectivity: int | None = None
    clusters: ClusterMaps | None = None
    p_fwe_size: np.ndarray | None = None
    p_fwe_mass: np.ndarray | None = None
    null_max_size: np.ndarray | None = None
    null_max_mass: np.ndarray | None = None
    tfce: np.ndarray | None = None
    p_fwe_tfce: np.ndarray | None = None
    null_max_tfce: np.ndarray | None = None

    @property
    def p_rule(self) -> str:
        """How the p values were counted, in words (with the number of resamples)."""
        return p_rule(self.scheme, self.n_perm, self.exhaustive, self.random_state)

    def metadata(self) -> dict:
        """The parameters a sidecar should record."""
        return {"statistic": self.stat_type, "degrees_of_freedom": list(self.df), "resampling": self.scheme,
                "n_permutations": self.n_perm, "exhaustive": self.exhaustive, "p_value": self.p_rule,
                "smallest_p": self.smallest_p, "two_sided": self.two_sided, "alternative": self.alternative,
                "random_seed": self.random_state, "height_threshold": self.height_threshold,
                "cluster_forming_threshold": self.cluster_threshold, "connectivity": self.connectivity,
                "tfce": None if self.tfce is None else {"E": 0.5, "H": 2.0, "dh": "auto"}}


def permutation_test(data: np.ndarray, design: np.ndarray, contrast: np.ndarray, *, n_perm: int = 10000,
                     two_sided: bool = True, alternative: Alternative | None = None, alpha: float = 0.05,
                     blocks: np.ndarray | None = None,
                     mask: np.ndarray | None = None, connectivity: Connectivity = 6,
                     height_threshold: float | None = None, with_tfce: bool = False,
                     random_state: int | None = None, resamples: np.ndarray | None = None, n_jobs: int = 2,
                     memory_mb: float = 512, dtype: type = np.float32) -> PermutationResult:
    """Permutation inference for one contrast of a mass-univariate OLS model.

    Parameters
    ----------
    data : array, shape (n_rows, n_features)
        Masked maps (features in ``mask``'s C order), parcel values or edges; non-finite features are
        left out (NaN results).
    design : array, shape (n_rows, n_columns)
    contrast : array, shape (n_columns,) or (n_rows_c, n_columns)
        A vector for a t test, a matrix for an F test.
    n_perm : int, default 10000
        Number of random resamples; every sign flip (or permutation within blocks) is used instead when
        there are at most ``n_perm``.
    two_sided : bool, default True
        Max of ``|t|`` (else positive effects only). F tests are one-sided.
    alternative : {"two-sided", "greater", "less"}, optional
        Overrides ``two_sided`` for a t contrast: ``greater`` counts positive effects only, ``less``
        negative ones (the contrast is negated for the resampling, the statistics given back with their
        own sign). Ignored for F tests.
    alpha : float, default 0.05
        Only to refuse an ``n_perm`` whose smallest p value cannot reach it.
    blocks : array, shape (n_rows,), optional
        Exchangeability blocks: rows are permuted only within their block.
    mask : 3-D bool array, optional
        Needed for cluster and TFCE inference; ``mask.sum() == n_features``.
    connectivity : {6, 18, 26}, default 6
        Voxel neighbourhood for clusters and TFCE (6 as nilearn).
    height_threshold : float, optional
        Cluster-forming threshold as an uncorrected p value (two-sided if ``two_sided``); enables
        cluster-extent and cluster-mass FWE.
    with_tfce : bool, default False
        TFCE FWE (E=0.5, H=2, 100 steps).
    random_state : int, optional
        Seed; drawn from the OS and recorded in the result when None.
    resamples : array, shape (n_perm, n_rows), optional
        Explicit resamples instead of random ones: signs (+1/-1) for sign flipping, row indices applied
        to the design rows for permutation.
    n_jobs : int, default 2
        Worker threads (BLAS runs single-threaded inside each).
    memory_mb : float, default 512
        Budget for the per-worker buffers (not counting ``data``).
    dtype : numpy dtype, default float32
        Precision of the resampled statistics (the observed ones are float64).

    Raises
    ------
    UsageError
        ``n_perm`` too small for ``alpha``; cluster or TFCE inference without a mask.
    NoDataError
        Too few rows for the design or for any p value below ``alpha``.
    """
    data = np.asarray(data)
    design = np.asarray(design, dtype=float)
    sign = -1.0 if alternative == "less" and np.ndim(contrast) == 1 else 1.0
    if alternative is not None:
        two_sided = alternative == "two-sided"
    contrast = sign * np.asarray(contrast, dtype=float)
    spatial = height_threshold is not None or with_tfce
    if spatial and mask is None:
        raise UsageError("--correction cluster and tfce need voxel maps and their mask; parcel and edge "
                         "statistics support fwe (max-T), fdr and bonferroni")
    if mask is not None and int(np.sum(mask)) != data.shape[1]:
        raise ValueError(f"the mask has {int(np.sum(mask))} voxels but the data {data.shape[1]} features")
    if random_state is None:
        random_state = int(np.random.SeedSequence().entropy % 2**32)  # type: ignore[operator]  # drawn: an int
    valid = np.isfinite(data).all(axis=0)
    model, stat, scheme = build_model(data if valid.all() else data[:, valid], design, contrast, blocks, two_sided,
                                      dtype)
    valid[valid] = np.isfinite(stat)
    stat = stat[np.isfinite(stat)]
    resamples, exhaustive = draw_resamples(scheme, data.shape[0], n_perm, blocks, random_state, resamples)
    symmetric = model.two_sided or model.stat_type == "F"  # negating every direction keeps the score
    same = reproducing(resamples, model.exact_basis, scheme, symmetric)
    least = smallest_p(int(same.sum()), len(resamples), exhaustive)
    check_resolution(least, len(resamples), exhaustive, alpha, scheme)
    graph = None
    if spatial:
        mask_valid = np.asarray(mask, dtype=bool).copy()
        mask_valid[mask_valid] = valid
        graph = voxel_graph(mask_valid, connectivity)
    cluster_threshold = None
    if height_threshold is not None:
        tail = height_threshold / 2 if model.two_sided else height_threshold
        cluster_threshold = float(stats.t.isf(tail, model.dof) if model.stat_type == "t"
                                  else stats.f.isf(tail, model.n_tested, model.dof))
    observed, scores = _observed(stat, model, graph, cluster_threshold, with_tfce)
    mirrored = exhaustive and scheme == "signflip" and symmetric
    nulls = _nulls(model, resamples, same, mirrored, scores, graph, cluster_threshold, with_tfce, n_jobs, memory_mb)
    for key, suffix in (("stat", ""), ("size", "_size"), ("mass", "_mass"), ("tfce", "_tfce")):
        if key in nulls:
            precision = np.float64 if key == "size" else dtype
            observed[f"p_fwe{suffix}"] = fwe_p(scores[key], nulls[key], exhaustive, precision)
            observed[f"null_max{suffix}"] = nulls[key]
    for name, values in observed.items():  # back to every feature: NaN (label 0) where not tested
        if name in ("stat", "tfce"):
            values = sign * values  # the tested direction of a "less" contrast back to its own sign
        if not name.startswith("null_"):
            observed[name] = np.zeros(valid.size, np.int32) if name == "cluster_label" else np.full(valid.size, np.nan)
            observed[name][valid] = values
    if cluster_threshold is not None:
        observed["clusters"] = ClusterMaps(label=observed.pop("cluster_label"), size=observed.pop("cluster_size"),
                                           mass=observed.pop("cluster_mass"))
    return PermutationResult(stat_type=model.stat_type, df=(model.n_tested, model.dof), n_perm=len(resamples),
                             scheme=scheme, exhaustive=exhaustive, two_sided=model.two_sided,
                             alternative=_tail(model, alternative),
                             random_state=random_state, smallest_p=least, height_threshold=height_threshold,
                             cluster_threshold=cluster_threshold, connectivity=connectivity if spatial else None,
                             **observed)


def _tail(model: ResidualModel, alternative: Alternative | None) -> Alternative:
    """The tail a t test counted (``two-sided`` for F, whose statistic has one)."""
    if model.stat_type == "F" or model.two_sided:
        return "two-sided"
    return alternative if alternative is not None else "greater"


def _observed(stat: np.ndarray, model: ResidualModel, graph: VoxelGraph | None, cluster_threshold: float | None,
              with_tfce: bool) -> tuple[dict, dict[str, np.ndarray]]:
    """Observed maps over the tested features, and the scores compared with each null maximum."""
    maps = {"stat": stat}
    scores = {"stat": np.abs(stat) if model.two_sided else stat}
    if cluster_threshold is not None and graph is not None:
        clusters = cluster_maps(stat, graph, cluster_threshold, model.two_sided)
        maps.update(cluster_label=clusters.label, cluster_size=clusters.size, cluster_mass=clusters.mass)
        scores.update(size=clusters.size, mass=clusters.mass)
    if with_tfce and graph is not None:
        maps["tfce"] = tfce(stat, graph, two_sided=model.two_sided)
        scores["tfce"] = np.abs(maps["tfce"])
    return maps, scores


def _nulls(model: ResidualModel, resamples: np.ndarray, same: np.ndarray, mirrored: bool, scores: dict[str, np.ndarray],
           graph: VoxelGraph | None, cluster_threshold: float | None, with_tfce: bool, n_jobs: int,
           memory_mb: float) -> dict[str, np.ndarray]:
    """Null maxima of every resample, in order.

    Resamples that give back the observed map (``same``) take the observed maxima of ``scores`` (float64).
    With ``mirrored`` (every sign flip enumerated, the statistic's score symmetric), only the first half is
    computed: flip ``2**n - 1 - c`` is the negation of flip ``c`` and has the same maxima.
    """
    todo = ~same
    if mirrored:
        todo[len(todo) // 2:] = False
    computed = (_run(model, resamples[todo], graph, cluster_threshold, with_tfce, n_jobs, memory_mb)
                if todo.any() else {})
    nulls = {}
    for key, score in scores.items():
        values = np.full(len(resamples), np.max(score, initial=0.0 if key != "stat" else -np.inf))
        if key in computed:
            values[todo] = computed[key]
        if mirrored:
            values[len(values) // 2:] = values[:len(values) // 2][::-1]
        nulls[key] = values
    return nulls


def _run(model: ResidualModel, resamples: np.ndarray, graph: VoxelGraph | None, cluster_threshold: float | None,
         with_tfce: bool, n_jobs: int, memory_mb: float) -> dict[str, np.ndarray]:
    """Null maxima of every resample, in order.

    Max-T and cluster inference run in ``n_jobs`` threads (the matrix products release the GIL); TFCE,
    whose union-find loops hold it, runs in ``n_jobs`` joblib (loky) processes over contiguous ranges, the
    data memory-mapped rather than copied.
    """
    map_bytes = 4 * model.n_features if graph is not None else 0
    block = int(np.clip((memory_mb * 2**20 / max(n_jobs, 1) / 2) // max(map_bytes, 1), 1, 64))
    task = partial(_null_range, model=model, graph=graph, cluster_threshold=cluster_threshold,
                   with_tfce=with_tfce, block=block)
    if n_jobs <= 1:
        parts = [task(resamples)]
    elif with_tfce:
        parts = Parallel(n_jobs=n_jobs)(delayed(task)(part) for part in np.array_split(resamples, n_jobs))
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            parts = Parallel(n_jobs=n_jobs, prefer="threads")(
                delayed(task)(resamples[start:start + block]) for start in range(0, len(resamples), block))
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _null_range(resamples: np.ndarray, *, model: ResidualModel, graph: VoxelGraph | None,
                cluster_threshold: float | None, with_tfce: bool, block: int) -> dict[str, np.ndarray]:
    """Null maxima for consecutive resamples, ``block`` at a time, with single-threaded BLAS."""
    with threadpool_limits(limits=1, user_api="blas"):
        parts = [_null_block(model, resamples[start:start + block], graph, cluster_threshold, with_tfce)
                 for start in range(0, len(resamples), block)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _null_block(model: ResidualModel, resamples: np.ndarray, graph: VoxelGraph | None, cluster_threshold: float | None,
                with_tfce: bool) -> dict[str, np.ndarray]:
    """Maxima of the statistic (and cluster measures, TFCE) for a block of resamples.

    With one tested and no resampling-variant nuisance direction, t is an odd increasing function of the
    projection ``a`` of the residuals on the resampled regressor, so the maxima (and cluster thresholds)
    are taken on ``a`` and only the extremes are converted.
    """
    n_block, width = len(resamples), model.chunks.shape[2]
    if resamples.dtype == np.int8:
        rows = resamples[:, :, None] * model.basis[None]
    else:
        rows = model.basis[resamples]
    n_columns = model.basis.shape[1]
    weights = np.ascontiguousarray(rows.transpose(0, 2, 1)).reshape(n_block * n_columns, -1)
    fast = n_columns == 1 and model.stat_type == "t"
    maps = np.empty((n_block, model.n_features), model.chunks.dtype) if graph is not None else None
    top = np.full(n_block, -np.inf)
    bottom = np.full(n_block, np.inf)
    product = np.empty((n_block * n_columns, width), model.chunks.dtype)
    for index, chunk in enumerate(model.chunks):
        used = min(width, model.n_features - index * width)
        values = np.matmul(weights, chunk, out=product)[:, :used]
        if not fast:
            projections = values.reshape(n_block, n_columns, used).transpose(1, 0, 2)
            values = statistic(projections[:model.n_tested], projections[model.n_tested:], model.dof,
                                model.stat_type == "t")
        np.maximum(top, values.max(axis=1), out=top)
        if model.two_sided:
            np.minimum(bottom, values.min(axis=1), out=bottom)
        if maps is not None:
            maps[:, index * width:index * width + used] = values
    extreme = np.maximum(top, -bottom) if model.two_sided else top
    to_stat = partial(_t_from_projection, dof=model.dof) if fast else None
    nulls = {"stat": extreme if to_stat is None else to_stat(extreme)}
    if graph is None or maps is None:  # no cluster or TFCE inference: they need the voxel graph
        return nulls
    if cluster_threshold is not None:
        threshold = cluster_threshold / np.sqrt(model.dof + cluster_threshold**2) if fast else cluster_threshold
        nulls["size"], nulls["mass"] = cluster_maxima(maps, graph, threshold, model.two_sided, transform=to_stat)
    if with_tfce:
        nulls["tfce"] = np.array([np.abs(tfce(row if to_stat is None else to_stat(row), graph,
                                              two_sided=model.two_sided)).max() for row in maps])
    return nulls


def _t_from_projection(projection: np.ndarray, dof: int) -> np.ndarray:
    """t from the projection of unit-norm residuals on the unit tested regressor (no nuisance)."""
    projection = np.asarray(projection, dtype=float)
    with np.errstate(divide="ignore"):
        return projection * np.sqrt(dof / np.maximum(1 - projection**2, 0))
