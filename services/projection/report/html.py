"""The report as one self-contained HTML page (inline CSS, charts as PNG data URIs; no scripts,
no external references). The variant banner is repeated at the top of every section, so a
printed or cut-out page still says what it is."""

from __future__ import annotations

import base64
from collections.abc import Callable
from html import escape

from services.projection.report.document import Chart, Document, KeyFigure, Paragraph, Table

_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;max-width:60rem;margin:2rem auto;color:#222;
line-height:1.4;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:2px solid #1f5f8b;
padding-bottom:.2rem;margin-top:2rem}.subtitle{color:#555;margin-top:0}
.banner{background:#fbe9d7;border:1px solid #d9822b;padding:.3rem .6rem;font-weight:bold;
font-size:.85rem}.banner.public{background:#e3eef6;border-color:#1f5f8b}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(13rem,1fr));gap:.6rem}
.card{border:1px solid #ccd;border-radius:.3rem;padding:.5rem .7rem}
.card .v{font-size:1.6rem;font-weight:bold;color:#1f5f8b}.card .l{font-weight:bold}
.card .n{font-size:.8rem;color:#555}table{border-collapse:collapse;margin:.6rem 0;min-width:50%}
th,td{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.note{font-size:.85rem;color:#555}
img{max-width:100%}footer{margin-top:2rem;font-size:.8rem;color:#555}
@media print{section{page-break-before:always}}
"""

ChartRenderer = Callable[[Chart], bytes]


def render_html(doc: Document, chart_png: ChartRenderer) -> str:
    cls = "banner public" if doc.banner.startswith("PUBLIC") else "banner"
    banner = f'<div class="{cls}">{escape(doc.banner)}</div>'
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(doc.title)}</title><style>{_CSS}</style></head><body>",
        banner,
        f"<h1>{escape(doc.title)}</h1>",
        f'<p class="subtitle">{escape(doc.subtitle)}</p>',
    ]
    for section in doc.sections:
        out.append(f"<section><h2>{escape(section.title)}</h2>{banner}")
        cards = [b for b in section.blocks if isinstance(b, KeyFigure)]
        if cards:
            out.append('<div class="cards">')
            out += [
                f'<div class="card"><div class="l">{escape(k.label)}</div>'
                f'<div class="v">{escape(k.value)}</div><div class="n">{escape(k.note)}</div></div>'
                for k in cards
            ]
            out.append("</div>")
        for block in section.blocks:
            if isinstance(block, Paragraph):
                out.append(f"<p>{escape(block.text)}</p>")
            elif isinstance(block, Table):
                out.append(_table(block))
            elif isinstance(block, Chart):
                data = base64.b64encode(chart_png(block)).decode("ascii")
                out.append(
                    f'<figure><img alt="{escape(block.title)}" '
                    f'src="data:image/png;base64,{data}"></figure>'
                )
        out.append("</section>")
    out.append(f"<footer>{banner}<p>{escape(doc.footer)}</p></footer></body></html>")
    return "\n".join(out) + "\n"


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header)
    rows = []
    for row in t.rows:
        cells = "".join(
            f'<td class="num">{escape(v)}</td>' if i else f"<td>{escape(v)}</td>"
            for i, v in enumerate(row)
        )
        rows.append(f"<tr>{cells}</tr>")
    note = f'<p class="note">{escape(t.note)}</p>' if t.note else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}"
