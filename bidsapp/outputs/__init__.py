"""Outputs: the BIDS-Derivatives writer (names, sidecars, atomic writes, re-run checks) and relmat TSVs."""
