"""Steps: pure functions on arrays and tables that the participant pipelines chain.

Denoising (:mod:`~bidsapp.steps.denoise` with :mod:`~bidsapp.steps.strategies`; parcel series:
:mod:`~bidsapp.steps.parcel_cleaning`), sphere seeds (:mod:`~bidsapp.steps.seeds`), connectivity
(:mod:`~bidsapp.steps.connectivity`), run summaries (:mod:`~bidsapp.steps.qc`,
:mod:`~bidsapp.steps.hcp_summaries`) and the first-level GLM (:mod:`~bidsapp.steps.glm`,
:mod:`~bidsapp.steps.parcel_glm`, task contrasts in :mod:`~bidsapp.steps.task_models`).
"""
