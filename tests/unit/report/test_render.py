"""The report renders to a PDF whose pages exist and carry the figures, to self-contained HTML,
and gives the same bytes for the same inputs (poppler-utils: pdftoppm, pdftotext)."""

from __future__ import annotations

import dataclasses
import functools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.projection.report.build import Format, render
from services.projection.report.document import Table, Variant, build_document
from tests.unit.report.pdftools import pdf_pages, pdf_text, row_value
from tests.unit.report.sample import sample_input

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@functools.cache
def _internal_pdf() -> bytes:
    return render(sample_input(), Format.PDF)


def test_pdf_pages_exist_and_carry_the_key_figures(tmp_path: Path) -> None:
    pdf = _internal_pdf()
    pages = pdf_pages(pdf, tmp_path)
    assert len(pages) >= 5
    assert all(p.read_bytes().startswith(PNG_MAGIC) and p.stat().st_size > 5_000 for p in pages)
    text = pdf_text(pdf, tmp_path)
    assert row_value(text, "Visits (supervised consumptions)") == "3,100"
    assert row_value(text, "Distinct people") == "412"
    assert row_value(text, "Emergencies treated on site (all kinds)") == "10"
    assert row_value(text, "Life-threatening emergencies survived (lives probably saved)") == "6"
    assert row_value(text, "Deaths on site") == "0"
    assert "No one died in the rooms in this period." in text
    assert row_value(text, "Needles") == "210.0"  # per day, supplies table
    assert row_value(text, "Returned per needle or syringe handed out") == "44.8%"
    assert row_value(text, "Change (after - before)").startswith("-0.56")  # the CI column
    assert "Methods and definitions" in text
    assert "dcr.visits" in text


def test_internal_variant_says_so_on_every_page(tmp_path: Path) -> None:
    pdf = _internal_pdf()
    text = pdf_text(pdf, tmp_path)
    pages = text.split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) >= 5
    assert all("INTERNAL - NOT FOR PUBLICATION" in p for p in pages)


def test_public_variant_shows_suppressed_cells_and_no_hidden_value(tmp_path: Path) -> None:
    inp = sample_input(Variant.PUBLIC, hidden=frozenset({"life_threatening_survived", "deaths"}))
    text = pdf_text(render(inp, Format.PDF), tmp_path)
    assert all("PUBLIC - counts of people below 5" in p for p in text.split("\f") if p.strip())
    assert row_value(text, "Life-threatening emergencies survived (lives probably saved)") == (
        "suppressed"
    )
    assert row_value(text, "Deaths on site") == "suppressed"
    assert "No one died" not in text
    assert "Visits per day" not in text  # daily counts of people are internal only


def test_same_inputs_same_bytes_and_build_time_is_the_only_difference() -> None:
    inp = sample_input()
    assert render(inp, Format.PDF) == _internal_pdf()
    assert render(inp, Format.HTML) == render(inp, Format.HTML)
    later = dataclasses.replace(inp, build_time=inp.build_time + timedelta(hours=1))
    assert render(later, Format.PDF) != _internal_pdf()
    html, html_later = render(inp, Format.HTML).decode(), render(later, Format.HTML).decode()
    assert html.replace(
        "2026-04-02 10:30 CEST); built 2026-04-02 10:30", "X"
    ) == html_later.replace("2026-04-02 10:30 CEST); built 2026-04-02 11:30", "X")


def test_html_is_self_contained() -> None:
    html = render(sample_input(), Format.HTML).decode()
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    images = re.findall(r'src="data:image/png;base64,', html)
    assert len(images) == 3  # visits, needles, street needles
    assert html.count("INTERNAL - NOT FOR PUBLICATION") >= 9  # top, every section, footer
    assert "Lives probably saved" in html


def test_a_rate_from_a_hidden_count_is_hidden_too() -> None:
    doc = build_document(sample_input(Variant.PUBLIC, hidden=frozenset({"overdoses"})))
    rows = {
        r[0]: r[1] for s in doc.sections for b in s.blocks if isinstance(b, Table) for r in b.rows
    }
    assert rows["Overdoses per 1,000 visits"] == "suppressed"
    shown = build_document(sample_input(Variant.PUBLIC))
    rows = {
        r[0]: r[1] for s in shown.sections for b in s.blocks if isinstance(b, Table) for r in b.rows
    }
    assert rows["Overdoses per 1,000 visits"] == "2.58"


def test_alerts_show_the_day_only_in_public() -> None:
    alert = {
        "alert_id": "a1",
        "district": "Vesterbro",
        "raised_at": datetime(2026, 3, 20, 21, 47, tzinfo=UTC),
        "reason": "overdose_cluster",
        "substance": "fentanyl",
        "facility_id": "halmtorv",
    }

    def alert_rows(variant: Variant) -> list[tuple[str, ...]]:
        doc = build_document(dataclasses.replace(sample_input(variant), alerts=(alert,)))
        return [
            r
            for s in doc.sections
            for b in s.blocks
            if isinstance(b, Table) and b.header[0] == "Alert raised"
            for r in b.rows
        ]

    assert alert_rows(Variant.INTERNAL) == [
        ("2026-03-20 22:47 CET", "Vesterbro", "overdose cluster", "fentanyl")
    ]
    assert alert_rows(Variant.PUBLIC) == [
        ("2026-03-20", "Vesterbro", "overdose cluster", "fentanyl")
    ]
