"""HTML fragments: tables, notes, figures as base64 PNG, and the whole document."""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import io
import math
from importlib import resources
from typing import Any, Iterable, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# Through importlib.resources, not a path next to __file__: on a cluster the package is
# imported from the wheel (a zip on the driver's and executors' sys.path), where no such
# directory exists.
TEMPLATES = resources.files("marketlab.report").joinpath("templates")


def esc(text: Any) -> str:
    """HTML-escape ``str(text)``."""
    return _html.escape(str(text), quote=True)


def na(reason: str, what: str | None = None) -> str:
    """A visible note for something that could not be shown."""
    label = f"{esc(what)}: " if what else ""
    return f'<p class="na">{label}not available: {esc(reason)}</p>'


def note(text: str) -> str:
    """A small explanatory paragraph (escaped)."""
    return f'<p class="note">{esc(text)}</p>'


def heading(text: str) -> str:
    return f"<h3>{esc(text)}</h3>"


def fmt_number(v: Any, digits: int = 4) -> str:
    """Numbers for tables: thousands separators for large values, ``digits`` significant otherwise."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return ""
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if f == int(f) and abs(f) < 1e15:
            return f"{int(f):,}"
        if abs(f) >= 1000:
            return f"{f:,.0f}"
        return f"{f:.{digits}g}"
    if isinstance(v, (pd.Timestamp, _dt.datetime)):
        v = pd.Timestamp(v)
        return v.strftime("%Y-%m-%d %H:%M") if (v.hour or v.minute) else v.strftime("%Y-%m-%d")
    return str(v)


def table(df: pd.DataFrame, max_rows: int = 40, caption: str | None = None, digits: int = 4,
          classes: str = "data") -> str:
    """``df`` as an escaped HTML table (numbers right-aligned); rows beyond ``max_rows`` noted."""
    shown = df.head(max_rows)
    head = "".join(f"<th>{esc(c)}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for v in row:
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            cells.append(f'<td class="{"num" if num else "txt"}">{esc(fmt_number(v, digits))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    more = ""
    if len(df) > max_rows:
        more = f'<p class="note">showing {max_rows} of {len(df):,} rows</p>'
    return (f'<div class="tablewrap"><table class="{classes}">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>{more}")


def kv_table(items: Mapping[str, Any] | Iterable[tuple[str, Any]], caption: str | None = None) -> str:
    """Two-column key/value table."""
    pairs = list(items.items() if isinstance(items, Mapping) else items)
    df = pd.DataFrame(pairs, columns=["name", "value"]) if pairs else pd.DataFrame(columns=["name", "value"])
    return table(df, max_rows=max(len(df), 1), caption=caption, classes="data kv")


def figure(fig: plt.Figure, alt: str, dpi: int = 96) -> str:
    """Render ``fig`` as an inline base64 PNG ``<img>`` (the figure is closed)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white", metadata={"Software": None})
    finally:
        plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}"><figcaption>{esc(alt)}</figcaption></figure>'


def row(*blocks: str) -> str:
    """Blocks side by side (wrap on narrow screens)."""
    return '<div class="row">' + "".join(f'<div class="cell">{b}</div>' for b in blocks) + "</div>"


def render_document(title: str, subtitle: str, sections: list, meta: list[tuple[str, Any]]) -> str:
    """The whole HTML document (jinja2 template ``templates/report.html.j2``)."""
    css = TEMPLATES.joinpath("report.css").read_text(encoding="utf-8")
    try:
        import jinja2
    except ImportError:  # pragma: no cover - jinja2 comes with mlflow
        return _render_plain(title, subtitle, sections, meta, css)
    env = jinja2.Environment(autoescape=True)
    tpl = env.from_string(TEMPLATES.joinpath("report.html.j2").read_text(encoding="utf-8"))
    return tpl.render(title=title, subtitle=subtitle, sections=sections, css=css,
                      meta=[(k, fmt_number(v)) for k, v in meta], markup=jinja2.utils.markupsafe.Markup)


def _render_plain(title, subtitle, sections, meta, css) -> str:  # pragma: no cover
    toc = "".join(f'<li><a href="#{esc(s.key)}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(f'<section id="{esc(s.key)}"><h2>{esc(s.title)}</h2>{"".join(s.blocks)}</section>' for s in sections)
    m = kv_table(meta)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<style>{css}</style></head><body><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
            f"<nav><ol>{toc}</ol></nav>{m}<main>{body}</main></body></html>")
