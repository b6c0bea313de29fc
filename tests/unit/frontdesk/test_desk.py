"""How the desk handles a tablet's queue (in-memory board and ingest fakes, no I/O): in order,
the board at once, the platform in as few batch calls as order allows, nothing after a 503."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.frontdesk.board import CheckIn, CodeMemory, Occupant
from services.frontdesk.desk import Desk
from services.frontdesk.reports import DeskReport, Kind

T0 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # any instant (this one is in a DST change night)
PATTERN = r"^[A-Z]{2}-[0-9]{4}$"


@dataclass
class Row:
    booth: int
    at: datetime
    visit_id: str | None = None
    out: bool = False


@dataclass
class FakeBoard:
    rows: dict[str, Row] = field(default_factory=dict)

    async def check_in(self, facility: str, key: str, booth: int, at: datetime) -> CheckIn:
        if key in self.rows:
            return CheckIn.ENDED if self.rows[key].out else CheckIn.DONE
        if any(r.booth == booth and not r.out for r in self.rows.values()):
            return CheckIn.OCCUPIED
        self.rows[key] = Row(booth, at)
        return CheckIn.DONE

    async def sent(self, facility: str, key: str, visit_id: str) -> None:
        self.rows[key].visit_id = visit_id

    async def undo(self, facility: str, key: str) -> None:
        if self.rows[key].visit_id is None:
            del self.rows[key]

    async def known(self, facility: str, key: str) -> tuple[bool, str | None]:
        row = self.rows.get(key)
        return (row is not None, row.visit_id if row else None)

    async def check_out(self, facility: str, key: str, at: datetime) -> None:
        self.rows[key].out = True

    async def occupants(self, facility: str) -> list[Occupant]:
        return [
            Occupant(r.booth, k, r.at, r.visit_id is not None)
            for k, r in self.rows.items()
            if not r.out
        ]


@dataclass
class FakeIngest:
    down: set[str] = field(default_factory=set)
    calls: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    async def send(
        self, service: str, facility: str, lines: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        self.calls.append((service, lines))
        if service in self.down:
            return [{"status": 503, "body": "down"}] * len(lines)
        out = []
        for line in lines:
            if line["body"].get("substances") == ["teleport"]:
                out.append({"status": 422, "body": [{"loc": ["body", "substances"]}]})
            elif line["route"] == "/visits":
                out.append({"status": 202, "body": {"visit_id": "v-" + line["idempotency_key"]}})
            else:
                out.append({"status": 202, "body": {}})
        return out


def desk(board: FakeBoard, ingest: FakeIngest) -> Desk:
    return Desk(board, CodeMemory(), ingest, lambda _: 8, PATTERN)  # type: ignore[arg-type]


def r(desk_kind: Kind, key: str, checkin: str | None = None, **fields: Any) -> DeskReport:
    return DeskReport(kind=desk_kind, key=key, occurred_at=T0, fields=fields, checkin_key=checkin)


def checkin(key: str, booth: int, code: str = "AB-0001", **extra: Any) -> DeskReport:
    fields = {"client_code": code, "booth": booth, "substances": ["heroin"], "route": "inject"}
    return r(Kind.CHECKIN, key, **{**fields, **extra})


async def test_a_shift_goes_out_in_order_in_as_few_calls_as_dependencies_allow() -> None:
    board, ingest = FakeBoard(), FakeIngest()
    queue = [
        checkin("in-aaaa-1", 1),
        checkin("in-bbbb-2", 2),
        r(Kind.INCIDENT, "incident-1", "in-bbbb-2", kind="opioid_overdose"),
        r(Kind.DISPENSED, "dispensed-1", items={"syringes": 2}),
        r(Kind.SHARPS, "sharps-01", count=3),
        r(Kind.CHECKOUT, "out-aaaa-1", "in-aaaa-1"),
    ]
    results = await desk(board, ingest).handle("halmtorv", queue)
    assert [x["status"] for x in results] == [202] * 6
    assert [(s, [line["route"] for line in lines]) for s, lines in ingest.calls] == [
        ("intake", ["/visits", "/visits"]),
        ("incident", ["/incidents"]),
        ("supply", ["/supplies/dispensed", "/sharps/returned"]),
        ("intake", ["/visits/end"]),
    ]
    assert ingest.calls[1][1][0]["body"]["visit_id"] == "v-in-bbbb-2"
    assert ingest.calls[3][1][0]["body"]["visit_id"] == "v-in-aaaa-1"
    assert all(line["body"]["facility_id"] == "halmtorv" for _, ls in ingest.calls for line in ls)


async def test_a_check_out_right_after_its_check_in_waits_for_the_visit_id() -> None:
    board, ingest = FakeBoard(), FakeIngest()
    queue = [checkin("in-aaaa-1", 1), r(Kind.CHECKOUT, "out-aaaa-1", "in-aaaa-1")]
    await desk(board, ingest).handle("halmtorv", queue)
    assert [len(lines) for _, lines in ingest.calls] == [1, 1]  # cut: the end needs the id
    assert ingest.calls[1][1][0]["body"]["visit_id"] == "v-in-aaaa-1"


async def test_while_intake_is_down_the_board_changes_and_nothing_later_is_sent() -> None:
    board, ingest = FakeBoard(), FakeIngest(down={"intake"})
    d = desk(board, ingest)
    queue = [
        checkin("in-aaaa-1", 1),
        checkin("in-bbbb-2", 2, code="AB-0002"),
        r(Kind.INCIDENT, "incident-1", "in-bbbb-2", kind="opioid_overdose"),
    ]
    results = await d.handle("halmtorv", queue)
    assert [x["status"] for x in results] == [503, 503, 503]
    assert [s for s, _ in ingest.calls] == ["intake"]  # the incident waits behind
    view = await d.board_view("halmtorv", T0 + timedelta(minutes=25), warning_minutes=20)
    assert [(b["booth"], b.get("client_code"), b.get("warning")) for b in view[:3]] == [
        (1, "AB-0001", True),
        (2, "AB-0002", True),
        (3, None, None),
    ]
    ingest.down.clear()
    results = await d.handle("halmtorv", queue)  # the same queue again, same keys
    assert [x["status"] for x in results] == [202, 202, 202]
    assert ingest.calls[-1][1][0]["body"]["visit_id"] == "v-in-bbbb-2"
    assert len(board.rows) == 2


async def test_a_refused_check_in_frees_its_booth_and_a_taken_booth_is_409() -> None:
    board, ingest = FakeBoard(), FakeIngest()
    d = desk(board, ingest)
    results = await d.handle(
        "halmtorv",
        [
            checkin("in-aaaa-1", 1, substances=["teleport"]),
            checkin("in-bbbb-2", 2),
            checkin("in-cccc-3", 2, code="AB-0003"),
            r(Kind.CHECKOUT, "out-aaaa-1", "in-aaaa-1"),
        ],
    )
    assert [x["status"] for x in results] == [422, 202, 409, 404]
    assert [o.booth for o in await board.occupants("halmtorv")] == [2]


async def test_a_long_queue_goes_in_calls_of_bounded_size() -> None:
    board, ingest = FakeBoard(), FakeIngest()
    queue = [r(Kind.SHARPS, f"sharps-{n:04d}", count=1) for n in range(120)]
    results = await desk(board, ingest).handle("halmtorv", queue)
    assert [x["status"] for x in results] == [202] * 120
    assert [len(lines) for _, lines in ingest.calls] == [50, 50, 20]
    keys = [line["idempotency_key"] for _, lines in ingest.calls for line in lines]
    assert keys == [q.key for q in queue]  # in order
