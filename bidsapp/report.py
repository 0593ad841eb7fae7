"""HTML reports: self-contained pages (no external assets) a user opens in a browser."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from bidsapp.discovery import Inventory

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { padding: 0.2em 0.6em; border: 1px solid #ddd; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.warn { background: #fff1e0; } .note { color: #666; }
"""


def render_group_report(table: pd.DataFrame, *, inventory: Inventory, missing: list[Path], version: str) -> str:
    """The group report: inputs, participants, per-run summaries (high motion highlighted)."""
    participants = table["participant_id"].nunique()
    parts = [
        f"<h1>bidsapp group report</h1><p class='note'>bidsapp {html.escape(version)} &middot; "
        f"{html.escape(inventory.form)} &middot; {participants} participants, {len(table)} runs</p>",
        "<h2>Inputs</h2><ul>" + "".join(f"<li><code>{html.escape(str(root))}</code></li>" for root in inventory.roots)
        + "</ul>",
    ]
    if missing:
        parts.append("<h2>Left out</h2><p>Participant-level outputs missing (run the participant level for "
                     "these):</p><ul>" + "".join(f"<li><code>{html.escape(str(p))}</code></li>" for p in missing)
                     + "</ul>")
    if inventory.skipped:
        parts.append("<h2>Runs skipped at discovery</h2><ul>" + "".join(
            f"<li>{html.escape(str(problem))}</li>" for problem in inventory.skipped) + "</ul>")
    parts.append("<h2>Runs</h2>" + _table(table))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>bidsapp group report</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def _table(table: pd.DataFrame) -> str:
    """An HTML table; rows with high-motion or flat-parcel counts above zero are highlighted."""
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in table.columns)
    rows = []
    for _, row in table.iterrows():
        flagged = any(row.get(column, 0) > 0 for column in ("n_high_motion", "n_flat_parcels")
                      if pd.notna(row.get(column)))
        cells = "".join(_cell(value) for value in row)
        rows.append(f"<tr{' class=warn' if flagged else ''}>{cells}</tr>")
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"<td class=num>{'n/a' if pd.isna(value) else f'{value:.3g}'}</td>"
    if isinstance(value, int):
        return f"<td class=num>{value}</td>"
    return f"<td>{html.escape('n/a' if pd.isna(value) else str(value))}</td>"
