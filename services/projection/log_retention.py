"""Retention of the local log files (``.state/logs``: the services, Kafka, Prometheus,
Alertmanager, the mail sink, the simulator), run by the retention job (docs/retention.md).

Rule, per run (``now`` injected):

* a file is deleted when it was last written more than ``keep_days`` ago: every line in it is
  older than the schedule allows (this covers the rotated copies below, Kafka's own rolled files
  and the logs of services no longer running);
* an active log (``*.log``, appended to by a running process) that is not empty is rotated once
  per UTC day: copied to ``<name>.<YYYYMMDD>`` (keeping the original's modification time, i.e.
  the time of its newest line) and truncated in place. Copy-then-truncate, because the writer
  keeps its file open in append mode (a line written between the copy and the truncation is
  lost; nothing else is). The copy is created exclusively, so two projection instances running
  the job at once rotate a file only once.

Hence no line is kept longer than ``keep_days`` plus one day (the rotation granularity), as long
as the job runs (hourly in the projection, and on ``make retention``). Logs never hold client
codes, pseudonyms or visit ids (tests/integration/ingest/test_privacy.py); the schedule limits
what little they do hold (request lines, reasons, counts).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path


@dataclass
class LogRetentionReport:
    rotated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def enforce_log_retention(log_dir: Path, now: datetime, keep_days: int) -> LogRetentionReport:
    """Apply the rule above to the regular files directly in ``log_dir`` (absent: nothing)."""
    report = LogRetentionReport()
    if not log_dir.is_dir():
        return report
    cut = (now - timedelta(days=keep_days)).timestamp()
    stamp = now.strftime("%Y%m%d")
    for path in sorted(log_dir.iterdir()):
        if not path.is_file() or path.is_symlink():
            continue
        stat = path.stat()
        if stat.st_mtime < cut:
            path.unlink(missing_ok=True)
            report.deleted.append(path.name)
        elif path.suffix == ".log" and stat.st_size > 0 and _rotate(path, stamp, stat):
            report.rotated.append(path.name)
    return report


def _rotate(path: Path, stamp: str, stat: os.stat_result) -> bool:
    copy = path.with_name(f"{path.name}.{stamp}")
    try:
        with path.open("rb") as src, copy.open("xb") as dst:
            shutil.copyfileobj(src, dst)
    except FileExistsError:  # rotated today already (by this or another instance)
        return False
    os.utime(copy, (stat.st_atime, stat.st_mtime))
    with path.open("r+b") as active:
        active.truncate(0)
    return True
