"""Properties of the event envelope codec (hypothesis, deterministic): a record missing any one
required CloudEvents header is refused with a reason naming that header, and the projection's
decode_batch never raises, whatever headers and bytes a record carries: it decodes or rejects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.projection import domain
from shared.events import payloads as p
from shared.events.envelope import DecodeError, Envelope, decode, facility_source, to_headers
from shared.events.envelope import to_value as value_of
from tests.unit.projection import factory as f

#: Written from the CloudEvents 1.0 spec (REQUIRED attributes in binary mode), not imported.
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time")
DETERMINISTIC = settings(
    derandomize=True,
    database=None,
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _event() -> Envelope:
    return Envelope.wrap(
        p.VisitRefused(reason=p.RefusalReason.CAPACITY),
        id=uuid.UUID(int=7),
        source=facility_source("halmtorv"),
        time=datetime(2026, 11, 27, 10, tzinfo=UTC),
    )


def test_every_required_header_is_required_by_name() -> None:
    env = _event()
    for name in REQUIRED_HEADERS:
        headers = {k: v.encode() for k, v in to_headers(env).items() if k != name}
        try:
            decode(headers, value_of(env))
        except DecodeError as exc:
            assert name in exc.reason, (name, exc.reason)
            assert exc.reason.startswith("missing CloudEvents header")
        else:
            raise AssertionError(f"a record without {name} was accepted")


@DETERMINISTIC
@given(missing=st.sets(st.sampled_from(REQUIRED_HEADERS), min_size=1))
def test_a_record_missing_required_headers_is_dead_lettered_naming_each(missing: set[str]) -> None:
    env = f.refused(datetime(2026, 11, 27, 10, tzinfo=UTC))
    rec = f.record(env, headers=tuple((k, v) for k, v in f.record(env).headers if k not in missing))
    decoded, rejected = domain.decode_batch([rec], f.CITY)
    assert decoded == [] and [r.record for r in rejected] == [rec]
    reason = rejected[0].reason
    assert all(name in reason for name in missing)
    assert all(name not in reason for name in set(REQUIRED_HEADERS) - missing)


_HEADER_NAMES = st.sampled_from([*REQUIRED_HEADERS, "ce_schemaversion", "content-type", "x"])
_HEADER_VALUES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"1.0",
            b"dk.dcr.visit.refused",
            b"dk.dcr.alert.raised",
            b"/facilities/halmtorv",
            b"/districts/vesterbro",
            b"/facilities/atlantis",
            b"2026-11-27T10:00:00+00:00",
            b"2026-11-27T10:00:00",
            str(uuid.UUID(int=1)).encode(),
            b"application/json",
            b"1",
            b"2",
            b"\xff\xfe",
        ]
    ),
)
_VALUES = st.one_of(
    st.none(),
    st.binary(max_size=60),
    st.sampled_from(
        [b'{"reason": "capacity"}', b"{}", b"[]", b"null", b'{"reason": 1}', b'"x"', b"{"]
    ),
)


@DETERMINISTIC
@given(
    headers=st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=8),
    value=_VALUES,
)
def test_decode_batch_never_raises(headers: list[tuple[str, bytes]], value: bytes | None) -> None:
    rec = domain.RawRecord("dcr.visits", 0, 0, 0, None, value, tuple(headers))
    decoded, rejected = domain.decode_batch([rec], f.CITY)
    assert len(decoded) + len(rejected) == 1
    for r in rejected:
        assert r.record is rec and r.reason
        if value is not None and len(value) > 3:
            assert value.decode("utf-8", "replace") not in r.reason  # no payload in reasons
