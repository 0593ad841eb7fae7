"""HTML reports.

Drawing primitives (:mod:`~bidsapp.reports.html`), participant pages
(:mod:`~bidsapp.reports.fmriprep`, :mod:`~bidsapp.reports.parcels`) and the group page
(:mod:`~bidsapp.reports.group`).
"""
