"""Group-level statistics on arrays: designs, OLS t/F maps, FDR/Bonferroni, and one permutation engine.

Modules, one concern each:

- :mod:`bidsapp.stats.design`: group designs (design matrix, contrasts, exchangeability blocks)
  built from a participants table.
- :mod:`bidsapp.stats.parametric`: OLS fits and t/F contrasts with z and p values.
- :mod:`bidsapp.stats.correction`: uncorrected (fpr), Benjamini-Hochberg FDR and Bonferroni thresholds.
- :mod:`bidsapp.stats.permutation`: the permutation engine (sign flipping, Freedman-Lane, exchangeability
  blocks) with max-statistic FWE for voxels, clusters and TFCE, parcels and edges.
- :mod:`bidsapp.stats.residuals`: the engine's Freedman-Lane model (design split by the contrast, residuals).
- :mod:`bidsapp.stats.resampling`: the engine's sign flips and within-block permutations, random or all.
- :mod:`bidsapp.stats.pvalues`: the engine's p-value rule (the observed counted once) and smallest p.
- :mod:`bidsapp.stats.spatial`: the voxel graph, supra-threshold clusters and TFCE used by the engine.
"""
