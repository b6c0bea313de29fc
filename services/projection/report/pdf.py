"""The report as PDF (fpdf2, pure Python; DejaVu Sans embedded from matplotlib's fonts).

Every page carries the variant banner in its header and the event-log position in its footer.
Deterministic: the PDF creation date is the report's build time and nothing else varies, so the
same document gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace

from services.projection.report.document import Chart, Document, KeyFigure, Paragraph, Table

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
BLUE = (31, 95, 139)
ORANGE = (217, 130, 43)
ChartRenderer = Callable[[Chart], bytes]


class _Pdf(FPDF):
    def __init__(self, doc: Document) -> None:
        super().__init__(format="A4")
        self.doc = doc
        self.add_font("dv", "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font("dv", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_margins(15, 22, 15)
        self.set_auto_page_break(True, margin=18)
        self.set_creation_date(doc.build_time)
        self.set_title(doc.title)
        self.set_creator("dcr report")

    def header(self) -> None:
        public = self.doc.banner.startswith("PUBLIC")
        self.set_fill_color(*(BLUE if public else ORANGE))
        self.set_text_color(255, 255, 255)
        self.set_font("dv", "B", 8.5)
        self.set_xy(15, 8)
        self.cell(0, 7, self.doc.banner, fill=True, align="C")
        self.set_text_color(0, 0, 0)
        self.set_y(22)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("dv", "", 7)
        self.set_text_color(90, 90, 90)
        self.multi_cell(150, 3.5, self.doc.footer)
        self.set_xy(-35, -14)
        self.cell(20, 3.5, f"page {self.page_no()}/{{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def render_pdf(doc: Document, chart_png: ChartRenderer) -> bytes:
    pdf = _Pdf(doc)
    pdf.add_page()
    pdf.set_font("dv", "B", 18)
    pdf.set_text_color(*BLUE)
    pdf.multi_cell(0, 8, doc.title, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(80, 80, 80)
    pdf.set_font("dv", "", 10)
    pdf.multi_cell(0, 5, doc.subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(3)
    for section in doc.sections:
        if section.new_page:
            pdf.add_page()
        pdf.set_font("dv", "B", 13)
        pdf.set_text_color(*BLUE)
        pdf.cell(0, 8, section.title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(*BLUE)
        pdf.line(15, pdf.get_y(), 195, pdf.get_y())
        pdf.set_text_color(0, 0, 0)
        pdf.ln(2)
        cards = [b for b in section.blocks if isinstance(b, KeyFigure)]
        if cards:
            _cards(pdf, cards)
        for block in section.blocks:
            if isinstance(block, Paragraph):
                pdf.set_font("dv", "", 9.5)
                pdf.multi_cell(0, 4.8, block.text, align="L", new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1.5)
            elif isinstance(block, Table):
                _table(pdf, block)
            elif isinstance(block, Chart):
                if pdf.get_y() + 80 > pdf.h - 18:
                    pdf.add_page()
                pdf.image(io.BytesIO(chart_png(block)), x=15, w=180)
                pdf.ln(2)
    return bytes(pdf.output())


def _cards(pdf: FPDF, cards: list[KeyFigure]) -> None:
    width, height, gap = 88.0, 25.0, 4.0
    top = pdf.get_y()
    for i, k in enumerate(cards):
        x = 15 + (i % 2) * (width + gap)
        y = top + (i // 2) * (height + gap)
        pdf.set_draw_color(200, 200, 210)
        pdf.rect(x, y, width, height)
        pdf.set_xy(x + 3, y + 2)
        pdf.set_font("dv", "B", 9)
        pdf.cell(width - 6, 4.5, k.label)
        pdf.set_xy(x + 3, y + 7)
        pdf.set_font("dv", "B", 17)
        pdf.set_text_color(*BLUE)
        pdf.cell(width - 6, 8, k.value)
        pdf.set_text_color(90, 90, 90)
        pdf.set_xy(x + 3, y + 16)
        pdf.set_font("dv", "", 7.5)
        pdf.multi_cell(width - 6, 3.4, k.note)
        pdf.set_text_color(0, 0, 0)
    rows = (len(cards) + 1) // 2
    pdf.set_xy(15, top + rows * (height + gap))


def _table(pdf: FPDF, t: Table) -> None:
    """A table kept on one page when it fits on one (a header without its rows helps nobody)."""
    needed = 5.5 * (len(t.rows) + 1) + (5 if t.note else 0)
    if pdf.get_y() + needed > pdf.h - 18 and needed < pdf.h - 40:
        pdf.add_page()
    pdf.set_font("dv", "", 9)
    first = 80 if len(t.header) > 2 else 120
    rest = (180 - first) / max(len(t.header) - 1, 1)
    widths = (first, *([rest] * (len(t.header) - 1)))
    headings = FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=BLUE)
    with pdf.table(
        col_widths=widths,
        width=180,
        text_align=("LEFT", *(["RIGHT"] * (len(t.header) - 1))),
        headings_style=headings,
        line_height=5,
        borders_layout="HORIZONTAL_LINES",
        first_row_as_headings=True,
    ) as table:
        table.row(t.header)
        for r in t.rows:
            table.row(r)
    if t.note:
        pdf.set_font("dv", "", 8)
        pdf.set_text_color(90, 90, 90)
        pdf.multi_cell(0, 4, t.note, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(3)
