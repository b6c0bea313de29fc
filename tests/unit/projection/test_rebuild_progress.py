"""The rebuild's progress (stderr: a rich bar, in a log a line every tenth) and gauge."""

from __future__ import annotations

import io
import re

from services.projection.metrics import REBUILD_PROGRESS
from services.projection.rebuild import Progress


def _logged(text: str) -> list[str]:
    return re.findall(r"rebuild (\d+/\d+) records \(", text)


def test_progress_logs_every_tenth_once_when_not_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(200, out)
    for done in (0, 5, 19, 20, 40, 40, 199, 200, 200):
        progress(done)
    progress.finish()
    text = out.getvalue()
    assert _logged(text) == ["0/200", "20/200", "40/200", "199/200", "200/200"]
    assert "(100.0%)" in text
    assert "200/200" in text.splitlines()[-1]  # rich prints the final bar once when it stops
    assert REBUILD_PROGRESS._value.get() == 1.0


def test_an_empty_log_is_complete() -> None:
    out = io.StringIO()
    progress = Progress(0, out)
    progress(0)
    progress.finish()
    assert _logged(out.getvalue()) == ["0/0"] and "(100.0%)" in out.getvalue()
    assert REBUILD_PROGRESS._value.get() == 1.0
