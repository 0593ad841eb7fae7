"""First-level GLM on arrays, shared by the voxel and the parcel pipelines.

The steps are nilearn's, called on plain arrays so any data that fits a
``(time, units)`` matrix can use them, one module each:

* :mod:`~bidsapp.steps.glm.events`: a run's events from a BIDS ``events.tsv``
  or an HCP EV directory, checked against the run's length;
* :mod:`~bidsapp.steps.glm.design`: the design matrix, with the same frame
  times and HRF convolution as :class:`nilearn.glm.first_level.FirstLevelModel`;
* :mod:`~bidsapp.steps.glm.contrasts`: the :class:`~bidsapp.steps.glm.contrasts.Contrast`
  type, contrast vectors, each task's default contrasts and the five statistics
  written per contrast;
* :mod:`~bidsapp.steps.glm.fit`: percent signal change, and the AR(1)
  prewhitened (Worsley et al. 2002) or OLS fit with the estimator of
  :func:`nilearn.glm.first_level.run_glm` and
  :func:`nilearn.glm.contrasts.compute_contrast`, vectorised: one stacked
  pseudo-inverse for all the AR coefficient bins instead of one nilearn model
  per bin;
* :mod:`~bidsapp.steps.glm.fixed_effects`: runs combined by fixed effects
  exactly as ``FirstLevelModel`` combines several runs, over the units every
  run has.

Statistics follow nilearn's conventions: ``t = effect / sqrt(variance)``; ``p``
is the one-sided upper-tail p-value of ``t`` (``Contrast.p_value``), and ``z``
the standard normal quantile with the same upper-tail probability
(``Contrast.z_score``). A two-sided p-value is ``2 * min(p, 1 - p)``.

The data are fitted as given unless scaled to percent signal change
(``FirstLevelModel``'s default ``signal_scaling=0``, i.e.
:func:`nilearn.glm.first_level.mean_scaling`); ``t``, ``z`` and ``p`` do not
depend on that scaling.
"""
