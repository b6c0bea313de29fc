"""The rebuild's progress line (stderr) and gauge."""

from __future__ import annotations

import io

from services.projection.metrics import REBUILD_PROGRESS
from services.projection.rebuild import Progress


def test_progress_prints_every_tenth_once_when_not_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(200, out)
    for done in (0, 5, 19, 20, 40, 40, 199, 200, 200):
        progress(done)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert [line.split("]")[1].split("records")[0].strip() for line in lines] == [
        "0/200",
        "20/200",
        "40/200",
        "199/200",
        "200/200",
    ]
    assert lines[-1].startswith("rebuild [" + "#" * 30 + "]") and "(100.0%)" in lines[-1]
    assert REBUILD_PROGRESS._value.get() == 1.0


def test_an_empty_log_is_complete() -> None:
    out = io.StringIO()
    Progress(0, out)(0)
    assert "0/0 records (100.0%)" in out.getvalue()
