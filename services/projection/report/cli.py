"""``dcr report``: write the evidence report (HTML or PDF) for a scope and period.

    dcr report --scope district:vesterbro --period month --anchor 2026-10-01 \\
        --variant public --format pdf --out vesterbro-october.pdf

Reads the projection's read models (``DCR_DATABASE_*``), the city file (``DCR_CITY_FILE``) and the
suppression threshold (``DCR_PROJECTION_SUPPRESSION_THRESHOLD``). The build time printed in the
report is now, or ``SOURCE_DATE_EPOCH`` when set (then the same read models give the same bytes).
Exit codes: 0 written, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from services.projection.bootstrap import ProjectionConfig
from services.projection.periods import PeriodError, PeriodKind
from services.projection.report.build import Format, filename, gather, parse_request, render
from services.projection.report.document import Variant


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcr", description="dcr-platform commands")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="write the evidence report for a scope and period")
    r.add_argument("--scope", default="city", help="city, district:<id> or room:<id>")
    r.add_argument("--period", default="month", choices=[k.value for k in PeriodKind])
    r.add_argument("--anchor", type=date.fromisoformat, help="a day in the period (default today)")
    r.add_argument("--from", dest="start", type=date.fromisoformat, help="custom: first day")
    r.add_argument("--to", dest="end", type=date.fromisoformat, help="custom: last day")
    r.add_argument("--variant", default="public", choices=[v.value for v in Variant])
    r.add_argument("--format", default="pdf", choices=[f.value for f in Format])
    r.add_argument("--out", type=Path, help="output file (default: a descriptive name here)")
    return parser


def build_time() -> datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)


async def _report(args: argparse.Namespace) -> int:
    config = ProjectionConfig()
    city, settings = config.platform.city, config.settings
    when = build_time()
    try:
        req = parse_request(
            city,
            when.astimezone(city.zone).date(),
            scope=args.scope,
            period=args.period,
            variant=args.variant,
            anchor=args.anchor,
            start=args.start,
            end=args.end,
        )
    except PeriodError as exc:
        print(f"dcr report: --{exc.field}: {exc}", file=sys.stderr)
        return 2
    fmt = Format(args.format)
    conn = await config.platform.connect()
    try:
        inp = await gather(
            conn,
            city,
            req,
            group=settings.group_id,
            threshold=settings.suppression_threshold,
            build_time=when,
        )
    finally:
        await conn.close()
    out: Path = args.out or Path(filename(req, fmt))
    body = render(inp, fmt)
    await asyncio.to_thread(out.write_bytes, body)
    print(f"wrote {out} ({req.variant} {req.scope.key} {req.period.label})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_report(args))


if __name__ == "__main__":
    sys.exit(main())
