"""Log retention (services.projection.log_retention): files whose newest line is older than the
schedule are deleted, active logs are rotated once a day, nothing younger is lost. ``now`` is
injected; file times are set relative to it, so the test holds on any day."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.projection.log_retention import enforce_log_retention

NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # any instant (a DST night in Copenhagen)


def write(path: Path, text: str, age: timedelta) -> Path:
    path.write_text(text)
    t = (NOW - age).timestamp()
    os.utime(path, (t, t))
    return path


def test_old_files_go_active_logs_rotate_once_a_day_and_recent_lines_stay(tmp_path: Path) -> None:
    write(tmp_path / "intake.log.20260220", "old lines\n", timedelta(days=31))
    write(tmp_path / "gone-service.log", "old lines\n", timedelta(days=30, seconds=1))
    write(tmp_path / "server.log.2026-03-10-11", "kafka's own roll\n", timedelta(days=19))
    write(tmp_path / "intake.log", "today's lines\n", timedelta(minutes=5))
    write(tmp_path / "empty.log", "", timedelta(days=2))

    report = enforce_log_retention(tmp_path, NOW, keep_days=30)

    assert sorted(report.deleted) == ["gone-service.log", "intake.log.20260220"]
    assert report.rotated == ["intake.log"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "empty.log",
        "intake.log",
        "intake.log.20260329",
        "server.log.2026-03-10-11",
    ]
    assert (tmp_path / "intake.log").read_text() == ""  # truncated in place (the writer appends)
    copy = tmp_path / "intake.log.20260329"
    assert copy.read_text() == "today's lines\n"
    assert copy.stat().st_mtime == (NOW - timedelta(minutes=5)).timestamp()  # its newest line

    write(tmp_path / "intake.log", "later today\n", timedelta(minutes=-30))
    again = enforce_log_retention(tmp_path, NOW + timedelta(hours=1), keep_days=30)
    assert again.rotated == [] and again.deleted == []  # once a day
    assert (tmp_path / "intake.log").read_text() == "later today\n"

    # the rotated copy lives exactly as long as its newest line allows
    assert (
        "intake.log.20260329"
        not in enforce_log_retention(tmp_path, NOW + timedelta(29), 30).deleted
    )
    later = enforce_log_retention(tmp_path, NOW + timedelta(days=30, minutes=6), 30)
    assert "intake.log.20260329" in later.deleted


def test_no_log_directory_is_nothing_to_do(tmp_path: Path) -> None:
    report = enforce_log_retention(tmp_path / "absent", NOW, keep_days=30)
    assert report.rotated == [] and report.deleted == []
