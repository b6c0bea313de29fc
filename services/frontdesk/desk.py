"""How the desk handles a tablet's reports: in order, each through the board and then to its
ingest API, one result per report.

Invariants:
- a report is final once it has a 2xx or 4xx result (the tablet then drops it from its queue);
  a 503 means "keep it and resend it later with the same key";
- after the first 503 the remaining reports are not attempted (503), so the platform receives a
  room's reports in the order they happened; consecutive reports for the same ingest service go
  in one ``/v1/batch`` call (a queue that waited offline is sent in a few calls);
- the board changes at once (the room's own state, shared by its tablets), the platform when it
  is reachable; resending a report changes neither twice (keys);
- a report about a visit (check-out, incident, referral...) carries the intake's ``visit_id`` of
  its check-in; a check-out whose check-in has not reached the platform yet waits (503).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.frontdesk.board import Board, CheckIn, CodeMemory
from services.frontdesk.platform import IngestClient, unavailable
from services.frontdesk.reports import TARGETS, DeskReport, Kind, Refused, check, ingest_line

#: Lines per ``/v1/batch`` call: well under the ingest APIs' 64 KiB body limit.
MAX_LINES_PER_CALL = 50


@dataclass
class Desk:
    board: Board
    codes: CodeMemory
    ingest: IngestClient
    booths: Callable[[str], int]
    code_pattern: str

    async def handle(self, facility: str, reports: list[DeskReport]) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(reports)
        to_send: list[int] = []
        for i, report in enumerate(reports):
            try:
                check(report, self.booths(facility), self.code_pattern)
                await self._on_board(facility, report)
                to_send.append(i)
            except Refused as refused:
                results[i] = refused.result()
        await self._forward(facility, reports, to_send, results)
        return [r if r is not None else unavailable("not attempted") for r in results]

    async def _on_board(self, facility: str, report: DeskReport) -> None:
        """The room's own state changes at once, whether or not the platform is reachable."""
        if report.kind is Kind.CHECKIN:
            booth = int(report.fields["booth"])
            placed = await self.board.check_in(facility, report.key, booth, report.occurred_at)
            if placed is CheckIn.OCCUPIED:
                raise Refused(409, "booth", "this booth is occupied")
            if placed is CheckIn.DONE:
                self.codes.keep(facility, report.key, str(report.fields["client_code"]))
        elif report.kind is Kind.CHECKOUT:
            assert report.checkin_key is not None
            await self._visit_of(facility, report)  # 404 for an unknown check-in
            await self.board.check_out(facility, report.checkin_key, report.occurred_at)
            self.codes.forget(facility, report.checkin_key)

    async def _forward(
        self,
        facility: str,
        reports: list[DeskReport],
        to_send: list[int],
        results: list[dict[str, Any] | None],
    ) -> None:
        """Send ``reports[to_send]`` in order, consecutive ones for the same ingest service in one
        ``/v1/batch`` call, cut before a report whose check-in is still in the call being built
        (its ``visit_id`` comes from that call's answer). Stop at the first 503."""
        group: list[int] = []
        visits: dict[int, str | None] = {}

        def service(i: int) -> str:
            return TARGETS[reports[i].kind][0]

        async def send_group() -> bool:
            """Send the group; whether every answer in it was final (no 503)."""
            if not group:
                return True
            lines = [ingest_line(reports[i], facility, visits[i]) for i in group]
            answers = await self.ingest.send(service(group[0]), facility, lines)
            for i, answer in zip(group, answers, strict=True):
                results[i] = answer
                if reports[i].kind is Kind.CHECKIN:
                    await self._check_in_answered(facility, reports[i], answer)
            group.clear()
            return all(a["status"] != 503 for a in answers)

        for i in to_send:
            report = reports[i]
            cut = group and (
                service(group[0]) != service(i)
                or report.checkin_key in {reports[j].key for j in group}
                or len(group) >= MAX_LINES_PER_CALL
            )
            if cut and not await send_group():
                return
            try:
                visits[i] = await self._visit_of(facility, report)
            except Refused as refused:
                results[i] = refused.result()
                continue
            if report.kind is Kind.CHECKOUT and visits[i] is None:
                if await send_group():
                    results[i] = unavailable("the check-in has not reached the platform yet")
                return
            group.append(i)
        await send_group()

    async def _check_in_answered(
        self, facility: str, report: DeskReport, answer: dict[str, Any]
    ) -> None:
        if answer["status"] == 202:
            await self.board.sent(facility, report.key, str(answer["body"]["visit_id"]))
        elif answer["status"] != 503:  # the platform refused it: it never happened
            await self.board.undo(facility, report.key)
            self.codes.forget(facility, report.key)

    async def _visit_of(self, facility: str, report: DeskReport) -> str | None:
        if report.checkin_key is None:
            return None
        exists, visit_id = await self.board.known(facility, report.checkin_key)
        if not exists:
            raise Refused(404, "checkin_key", "no such check-in at this room")
        return visit_id

    async def board_view(
        self, facility: str, now: datetime, warning_minutes: int
    ) -> list[dict[str, Any]]:
        """Every booth of the room, free or with its occupant (code, minutes, warning)."""
        occupied = {o.booth: o for o in await self.board.occupants(facility)}
        view: list[dict[str, Any]] = []
        for booth in range(1, self.booths(facility) + 1):
            o = occupied.get(booth)
            if o is None:
                view.append({"booth": booth, "free": True})
                continue
            minutes = max(int((now - o.checked_in_at).total_seconds() // 60), 0)
            view.append(
                {
                    "booth": booth,
                    "free": False,
                    "checkin_key": o.checkin_key,
                    "client_code": self.codes.get(facility, o.checkin_key),
                    "checked_in_at": o.checked_in_at.isoformat(),
                    "minutes": minutes,
                    "warning": minutes >= warning_minutes,
                    "sent": o.sent,
                }
            )
        return view
