"""HTML reports: self-contained pages (no external assets) a user opens in a browser.

:func:`page` assembles titled sections; :func:`figure` embeds a matplotlib
figure as an inline PNG, :func:`png_html` an image array; :func:`table_html`
renders a DataFrame.
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
.panels { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.matrix { display: flex; } .matrix img { image-rendering: pixelated; }
.matrix .rows { display: flex; flex-direction: column; font-size: 0.7em; text-align: right; padding-right: 0.4em; }
.matrix .rows div { display: flex; align-items: center; justify-content: flex-end; min-height: 0; }
.scale { display: flex; align-items: center; gap: 0.4em; font-size: 0.8em; margin-top: 0.4em; }
.scale .bar { display: inline-block; width: 12em; height: 0.8em; }
table.bars caption { font-size: 0.9em; text-align: left; }
td.bars { width: 9em; padding: 0.2em 0; } td.bars span { display: block; height: 0.9em; }
svg.chart { font-size: 11px; }
.columns { display: flex; align-items: flex-end; height: 15em; font-size: 0.6em; }
.columns div { flex: none; writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }
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
    return f"<figure>{_img(buffer.getvalue(), alt)}</figure>"


def png_html(rgba, alt: str, style: str = "") -> str:
    """Embed an image given as an (rows, columns, 4) array of RGBA bytes as an inline PNG."""
    from matplotlib.image import imsave

    buffer = io.BytesIO()
    imsave(buffer, rgba, format="png", pil_kwargs={"compress_level": 1})  # 4x faster than the default 6, as small
    return _img(buffer.getvalue(), alt, style)


def _img(png: bytes, alt: str, style: str = "") -> str:
    styled = f" style='{html.escape(style)}'" if style else ""
    return f"<img alt='{html.escape(alt)}'{styled} src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


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
