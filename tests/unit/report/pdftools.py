"""poppler-utils for report tests: PDF -> text (layout kept) and PDF -> PNG pages."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # deploy/scripts install poppler-utils for make test (apt_ensure)
        pytest.fail(f"{name} not found: install poppler-utils (make test does)")
    return path


def pdf_text(pdf: bytes, tmp: Path) -> str:
    src = tmp / "report.pdf"
    src.write_bytes(pdf)
    out = subprocess.run(
        [_tool("pdftotext"), "-layout", str(src), "-"], check=True, capture_output=True
    )
    return out.stdout.decode("utf-8")


def pdf_pages(pdf: bytes, tmp: Path, dpi: int = 60) -> list[Path]:
    src = tmp / "pages.pdf"
    src.write_bytes(pdf)
    subprocess.run(
        [_tool("pdftoppm"), "-r", str(dpi), "-png", str(src), str(tmp / "page")], check=True
    )
    return sorted(tmp.glob("page-*.png"))


def row_value(text: str, label: str) -> str:
    """The last column of the table row (or text line) that starts with ``label``."""
    pattern = re.compile(re.escape(label) + r"\s{2,}")
    for line in text.splitlines():
        stripped = line.strip()
        if pattern.match(stripped):
            return re.split(r"\s{2,}", stripped)[-1]
    raise AssertionError(f"no row {label!r} in the report text")
