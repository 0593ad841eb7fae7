"""Group level: find the participant outputs to analyse, fit each design, infer, tabulate, report.

:mod:`~bidsapp.group.level` orchestrates; :mod:`~bidsapp.group.inputs` finds the analyses;
:mod:`~bidsapp.group.analyses` runs one on voxel maps or parcel/edge tables; :mod:`~bidsapp.group.inference`
applies the corrections; :mod:`~bidsapp.group.cluster_tables` writes atlas-labelled cluster and peak tables.
"""
