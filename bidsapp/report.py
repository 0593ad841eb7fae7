"""HTML reports: self-contained pages (no external assets) a user opens in a browser.

:func:`page` assembles titled sections; :func:`figure` embeds a matplotlib
figure as an inline PNG; :func:`table` renders a DataFrame.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
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


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """A complete HTML page: ``sections`` are (heading, HTML body) pairs."""
    body = "".join(f"<h2>{html.escape(heading)}</h2>{content}" for heading, content in sections)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='note'>{html.escape(subtitle)}</p>{body}</body></html>\n")


def figure(fig, alt: str) -> str:
    """Embed a matplotlib figure as an inline PNG (and close it)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"<figure><img alt='{html.escape(alt)}' src='data:image/png;base64,{encoded}'></figure>"


def render_group_report(table: pd.DataFrame, *, inventory: Inventory, missing: list[Path], version: str,
                        analyses: Sequence[dict] = (), settings=None) -> str:
    """The group report: inputs, each group analysis (design, maps, tables, figures), per-run summaries."""
    from bidsapp.reports_group import analysis_section, design_figure

    participants = table["participant_id"].nunique()
    sections = [("Inputs", _list(str(root) for root in inventory.roots))]
    if settings is not None:
        permutations = (f"; {settings.n_perm} permutations (seed {settings.random_seed})"
                        if {"fwe", "cluster", "tfce"} & set(settings.corrections) else "")
        clusters = f", cluster-forming p {settings.height_threshold}" if "cluster" in settings.corrections else ""
        test = f"group model {settings.model['path']}" if settings.model else f"{settings.test} test"
        sections.append(("Group model", f"<p>{html.escape(test)}; corrections "
                         f"{html.escape(', '.join(settings.corrections))} at alpha {settings.alpha}"
                         f"{permutations}{clusters}.</p>"
                         + (design_figure(analyses[0]["design"]) if analyses else "<p>No group analyses: "
                            "the participant level wrote no contrasts or connectivity.</p>")))
    sections += [analysis_section(analysis) for analysis in analyses]
    if missing:
        sections.append(("Left out", "<p>Participant-level outputs missing (run the participant level for "
                                     "these):</p>" + _list(str(p) for p in missing)))
    if inventory.skipped:
        sections.append(("Runs skipped at discovery", _list(str(problem) for problem in inventory.skipped)))
    sections.append(("Runs", table_html(table)))
    return page("bidsapp group report", f"bidsapp {version} · {inventory.form} · {participants} participants, "
                f"{len(table)} runs", sections)


def _list(items) -> str:
    return "<ul>" + "".join(f"<li><code>{html.escape(item)}</code></li>" for item in items) + "</ul>"


def table_html(table: pd.DataFrame) -> str:
    """A DataFrame as an HTML table; rows with high-motion or flat-parcel counts above zero are highlighted."""
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
