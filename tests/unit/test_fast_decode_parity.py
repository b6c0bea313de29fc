"""The hot-path decoder (shared/events/fast_decode.py, msgspec) and the contract decoder
(shared/events/envelope.py, pydantic) give the same verdict on every record: valid with an equal
event (the same values field by field, of the same Python types: the hot path's payload Struct
against the contract's pydantic model, nested ones too), or invalid with the same dead-letter
reason. Every valid record, also one only pydantic's lax rules accept, reaches the projection
as the type's Struct.

The corpus: a hand-written valid payload of every event type at every schema version (v1 of the
upcast visit events too), the unit-test factory's and the benchmark's event streams, and
hypothesis-made variants of them (deterministic): boundary values, unknown and missing fields,
wrong types, out-of-vocabulary strings, lax spellings pydantic accepts (``"3"``, ``1`` for true,
timestamps as numbers), strings that differ only by a final newline, bad JSON, wrong or missing
headers and content types. A second test compares the translated Structs with the pydantic
models field by field (vocabularies, bounds, defaults, unknown fields refused).

The module's decoder is built once, at import. The deterministic tests also run a decoder built
inside the test (``fast_decode.FastDecoder()``), so that a mistake in the translation itself is
seen: mutation testing activates a mutant only in the test's process, after the import.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, get_args, get_origin

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from bench.env import bench_city
from bench.workload import EventLog, encode
from shared.events import envelope, fast_decode, vocabulary
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import (
    DecodeError,
    Envelope,
    decode,
    facility_source,
    schema_version,
    to_headers,
)
from tests.unit.decoded_values import typed_values
from tests.unit.projection import factory as f

CORPUS = settings(
    derandomize=True,
    database=None,
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PSEUDONYM = "ab" * 32
T = "2026-11-27T10:00:00+00:00"
VISIT = "v-1_A"

#: One valid current-version payload per event type, written out (not built by either decoder).
VALID: dict[str, dict[str, Any]] = {
    "dk.dcr.visit.started": {
        "visit_id": VISIT,
        "client_pseudonym": PSEUDONYM,
        "pseudonym_key": "k1",
        "booth": 3,
        "substances": ["heroin", "cocaine"],
        "route": "inject",
        "assisted_injection": True,
        "first_visit": False,
    },
    "dk.dcr.visit.ended": {"visit_id": VISIT},
    "dk.dcr.visit.refused": {
        "reason": "capacity",
        "client_pseudonym": PSEUDONYM,
        "pseudonym_key": "k1",
    },
    "dk.dcr.referral.made": {"referral_to": "housing", "visit_id": VISIT},
    "dk.dcr.service.given": {"service": "wound_care"},
    "dk.dcr.supplies.dispensed": {
        "items": {"syringes": 10, "swabs": 2},
        "secondary_distribution": True,
        "visit_id": VISIT,
    },
    "dk.dcr.sharps.returned": {"count": 12, "weight_kg": 0.25},
    "dk.dcr.stock.delivered": {"items": {"needles": 500}},
    "dk.dcr.stock.counted": {"items": {"needles": 0, "foil": 30}},
    "dk.dcr.street_needles.collected": {
        "district": "vesterbro",
        "area": "Halmtorvet",
        "count": 4,
    },
    "dk.dcr.incident.reported": {
        "incident_id": "i-1",
        "kind": "opioid_overdose",
        "severity": "severe",
        "life_threatening": True,
        "interventions": {"naloxone_doses": 2, "oxygen": True},
        "outcome": "recovered_on_site",
        "suspected_substance": "fentanyl",
        "visit_id": VISIT,
    },
    "dk.dcr.drugcheck.result": {"expected": "heroin", "found": ["heroin", "fentanyl"]},
    "dk.dcr.alert.raised": {
        "alert_id": "a-1",
        "district": "vesterbro",
        "reason": "overdose_cluster",
        "episode": "vesterbro/overdose_cluster/1",
        "substance": "fentanyl",
        "overdoses_in_window": 3,
        "window_start": "2026-11-27T09:00:00+01:00",
        "window_end": "2026-11-27T10:00:00Z",
        "facility_id": "halmtorv",
        "late": False,
    },
    "dk.dcr.alert.acknowledged": {
        "alert_id": "a-1",
        "district": "vesterbro",
        "acknowledged_by": "ops-team",
        "seconds_to_acknowledge": 12.5,
    },
    "dk.dcr.alert.resolved": {
        "alert_id": "a-1",
        "district": "vesterbro",
        "reason": "adulterant_found",
        "episode": "e",
        "last_seen": "2026-11-27T10:00:00.123456+00:00",
        "quiet_period_s": 3600,
    },
    "dk.dcr.alert.withdrawn": {
        "alert_id": "a-1",
        "district": "vesterbro",
        "reason": "overdose_cluster",
        "episode": "e",
        "since": T,
        "overdoses_remaining": 1,
        "threshold": 3,
    },
    "dk.dcr.report.voided": {"target_id": str(uuid.UUID(int=5)), "reason": "duplicate"},
}
#: Version-1 records of the upcast types (before pseudonym key ids).
VALID_V1: dict[str, dict[str, Any]] = {
    "dk.dcr.visit.started": {
        k: v for k, v in VALID["dk.dcr.visit.started"].items() if k != "pseudonym_key"
    },
    "dk.dcr.visit.refused": {"reason": "closed", "client_pseudonym": PSEUDONYM},
}

_VOCABULARY = sorted(
    {
        m.value
        for e in vars(vocabulary).values()
        if isinstance(e, type) and issubclass(e, Enum)
        for m in e
    }
)
#: Values where two parsers may part: bounds, lax spellings, types, newlines, odd strings.
TRICKY: list[Any] = [
    None, True, False, 0, 1, -1, 2, 10, 11, 20, 21, 200, 201, 10_000, 10_001, 2**63, 2**70,
    0.0, -0.0, 1.0, 3.0, 3.5, -0.5, 1e-7, 999.9999, 1000.0, 1000.0001, 1e308,
    "", "0", "1", "3", "3.0", "true", "false", "yes", "on", "null", "x", "a" * 64, "a" * 65,
    "a" * 120, "a" * 121, "a" * 200, "a" * 201, "ABC", "a b", "v-1\n", "k1\n", "k" * 16,
    "k" * 17, "ab" * 32 + "\n", "AB" * 32, "ab" * 32, "ab" * 31, "\ud800", "é", "vesterbro\n",
    "2026-11-27T10:00:00Z", "2026-11-27T10:00:00", "2026-11-27t10:00:00z", "2026-11-27 10:00:00Z",
    "2026-11-27T10:00:00.1234567+01:00", "2026-11-27T10:00:60Z", "2026-11-27", "20261127T100000Z",
    "2026-11-27T10:00:00+0100", "2026-11-27T10:00Z", 1_764_237_600, 1_764_237_600.5,
    str(uuid.UUID(int=9)), str(uuid.UUID(int=9)).upper(), uuid.UUID(int=9).hex,
    "{" + str(uuid.UUID(int=9)) + "}", "urn:uuid:" + str(uuid.UUID(int=9)), "not-a-uuid",
    [], ["heroin"], ["heroin"] * 10, ["heroin"] * 11, ["HEROIN"], ["heroin", "heroin"], [1],
    {}, {"syringes": 1}, {"syringes": 0}, {"syringes": 10_001}, {"syringes": True},
    {"syringes": "1"}, {"nope": 1}, {"naloxone_doses": 21}, {"naloxone_doses": 20},
    {"oxygen": "yes"}, {"extra": 1}, *_VOCABULARY, "HEROIN", "Heroin", "heroin ",
]  # fmt: skip
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_VALUES = st.sampled_from(TRICKY) | _JSON


def _fields(event_type: str) -> list[str]:
    return list(CATALOGUE[event_type].model.model_fields)


def headers(event_type: str, version: int | None = None, **changes: str | None) -> dict[str, bytes]:
    out = {
        "ce_specversion": "1.0",
        "ce_id": str(uuid.UUID(int=77)),
        "ce_type": event_type,
        "ce_source": "/districts/vesterbro"
        if "alert" in event_type or "street" in event_type
        else facility_source("halmtorv"),
        "ce_time": T,
        "ce_schemaversion": str(CATALOGUE[event_type].version if version is None else version),
        "content-type": "application/json",
    }
    for name, value in changes.items():
        if value is None:
            out.pop(name.replace("_", "-") if name == "content_type" else name, None)
        else:
            out[name.replace("_", "-") if name == "content_type" else name] = value
    return {k: v.encode("utf-8", "surrogateescape") for k, v in out.items()}  # \udcff: byte ff


def verdict(decoder: Any, hdrs: Any, value: bytes | None) -> tuple[str, Any]:
    try:
        env: Envelope | fast_decode.Event = decoder(hdrs, value)
    except DecodeError as exc:
        return "invalid", exc.reason
    if isinstance(env, fast_decode.Event):  # the hot path hands on Structs only
        assert isinstance(env.data, msgspec.Struct), type(env.data)
        assert type(env.data).__name__ == f"Fast{CATALOGUE[env.type].model.__name__}"
    return "valid", typed_values(env)


def assert_same_verdict(hdrs: Any, value: bytes | None, fast_decoder: Any = None) -> str:
    """The verdict of both decoders (the module's hot path unless ``fast_decoder`` is given)."""
    fast_decode_ = fast_decode.decode if fast_decoder is None else fast_decoder
    contract = verdict(decode, hdrs, value)
    fast = verdict(fast_decode_, hdrs, value)
    assert fast == contract, (hdrs, value)
    # the projection's per-batch decoder: a new one (a miss) and one seeing many (mostly hits)
    assert verdict(fast_decode.batch_decoder(), hdrs, value) == contract, (hdrs, value)
    assert verdict(_BATCH, hdrs, value) == contract, (hdrs, value)
    if isinstance(hdrs, dict):  # as Kafka hands them over: a list (the producers' layout split
        listed = list(hdrs.items())  # by position when it is one)
        assert verdict(fast_decode.batch_decoder(), listed, value) == contract, (listed, value)
        assert verdict(_BATCH, listed, value) == contract, (listed, value)
    if contract[0] == "valid" and fast_decoder is None:  # equal as Structs, equal values
        assert fast_decode.decode(hdrs, value) == fast_decode.event_of(decode(hdrs, value))
    if contract[0] == "valid":  # read at the version the headers name (the claim stores it)
        for given in (hdrs, list(hdrs.items()) if isinstance(hdrs, dict) else hdrs):
            for batch in (_BATCH, fast_decode.batch_decoder()):
                assert batch.versioned(given, value)[1] == schema_version(given), given
    return contract[0]


#: One batch decoder for the whole module: its memo of repeated headers is hit by later records.
_BATCH = fast_decode.batch_decoder()


@pytest.fixture(params=["imported", "fresh"])
def fast(request: pytest.FixtureRequest) -> Any:
    """The module's decoder (built at import) or one built now, by this test."""
    return fast_decode.decode if request.param == "imported" else fast_decode.FastDecoder().decode


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _no_fallback(*_: Any) -> Any:
    raise AssertionError("the fast path handed a valid record to pydantic")


# --- the written examples and the existing fixtures -------------------------------------------


def test_the_written_examples_cover_every_event_type_and_version() -> None:
    assert set(VALID) == set(CATALOGUE)
    upcast = {t for t, spec in CATALOGUE.items() if spec.version > 1}
    assert set(VALID_V1) == upcast


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_a_valid_example_is_decoded_by_msgspec_alone_to_the_contract_s_event(
    event_type: str, fast: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hdrs, value = headers(event_type), _dumps(VALID[event_type])
    expected = decode(hdrs, value)
    monkeypatch.setattr(fast_decode, "parse_payload", _no_fallback)
    assert verdict(fast, hdrs, value) == ("valid", typed_values(expected))


@pytest.mark.parametrize("event_type", sorted(VALID_V1))
def test_a_version_1_record_is_upcast_by_msgspec_alone(
    event_type: str, fast: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hdrs, value = headers(event_type, version=1), _dumps(VALID_V1[event_type])
    expected = decode(hdrs, value)
    assert expected.data.pseudonym_key == "k0"  # type: ignore[attr-defined]
    monkeypatch.setattr(fast_decode, "parse_payload", _no_fallback)
    assert verdict(fast, hdrs, value) == ("valid", typed_values(expected))


def test_the_factory_and_benchmark_streams_decode_alike() -> None:
    base = datetime(2026, 11, 27, 10, tzinfo=UTC)
    stream = f.random_stream(seed=3, n=400, base=base)
    records = [(dict(f.record(env).headers), f.record(env).value) for env in stream]
    end = base + timedelta(days=1)
    for _, _, value, hdrs in (encode(e) for e in EventLog(bench_city(12), n=1_500, end=end)):
        records.append((dict(hdrs), value))
    verdicts = [assert_same_verdict(h, v) for h, v in records]
    assert verdicts.count("valid") == len(records)
    assert len({dict(h)["ce_type"] for h, _ in records}) >= 12


def test_the_contract_s_own_encoding_of_an_event_round_trips(fast: Any) -> None:
    env = f.incident(datetime(2026, 11, 27, 10, tzinfo=UTC))
    hdrs = {k: v.encode() for k, v in to_headers(env).items()}
    decoded = fast(hdrs, env.data.model_dump_json().encode())
    assert typed_values(decoded) == typed_values(env)
    assert fast_decode.decode(hdrs, env.data.model_dump_json().encode()) == fast_decode.event_of(
        env
    )


def _one_field_changes(event_type: str) -> list[dict[str, Any]]:
    """Every field of the written example at every tricky value, each field left out, every
    optional field left out at once, and an unknown field added."""
    valid = VALID[event_type]
    model_fields = CATALOGUE[event_type].model.model_fields
    required = [n for n, info in model_fields.items() if info.is_required()]
    out = [valid | {name: value} for name in model_fields for value in TRICKY]
    out += [{k: v for k, v in valid.items() if k != name} for name in valid]
    out += [{k: v for k, v in valid.items() if k in required}, valid | {"extra": 1}]
    return out


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_a_freshly_built_decoder_gives_the_contract_s_verdict_on_every_one_field_change(
    event_type: str,
) -> None:
    fresh = fast_decode.FastDecoder().decode
    hdrs = headers(event_type)
    verdicts = [assert_same_verdict(hdrs, _dumps(p), fresh) for p in _one_field_changes(event_type)]
    assert "valid" in verdicts and "invalid" in verdicts
    if event_type in VALID_V1:
        v1 = headers(event_type, version=1)
        for name, value in [(n, v) for n in VALID_V1[event_type] for v in TRICKY]:
            assert_same_verdict(v1, _dumps(VALID_V1[event_type] | {name: value}), fresh)


# --- hypothesis-made variants -------------------------------------------------------------------

_TYPES = st.sampled_from(sorted(CATALOGUE))


@st.composite
def changed_payloads(draw: st.DrawFn) -> tuple[str, int, dict[str, Any]]:
    """A valid example (either version) with a few fields changed, removed or added."""
    event_type = draw(_TYPES)
    version = CATALOGUE[event_type].version
    payload = dict(VALID[event_type])
    if event_type in VALID_V1 and draw(st.booleans()):
        version, payload = 1, dict(VALID_V1[event_type])
    names = [*_fields(event_type), "extra", "clientCode", ""]
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(names))
        if draw(st.integers(0, 5)) == 0:
            payload.pop(name, None)
        else:
            payload[name] = draw(_VALUES)
    return event_type, version, payload


@CORPUS
@given(changed=changed_payloads())
def test_changed_payloads_get_the_same_verdict(changed: tuple[str, int, dict[str, Any]]) -> None:
    event_type, version, payload = changed
    assert_same_verdict(headers(event_type, version=version), _dumps(payload))


@CORPUS
@given(event_type=_TYPES, name=st.sampled_from(["a", "b"]), data=st.data())
def test_one_field_at_every_tricky_value(event_type: str, name: str, data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(_fields(event_type)))
    value = data.draw(st.sampled_from(TRICKY))
    payload = VALID[event_type] | {field: value}
    assert_same_verdict(headers(event_type), _dumps(payload))


_TEXT_EDITS = st.sampled_from(
    [
        lambda s: s[:-1],
        lambda s: s + "}",
        lambda s: s.replace("}", ', "extra": 1}', 1),
        lambda s: s.replace('"', "'", 2),
        lambda s: s.replace(": ", ': NaN, "z": ', 1),
        lambda s: s.replace("{", '{"visit_id": "v", ', 1),
        lambda s: s.replace("{", '{"reason": "other", ', 1),
        lambda s: " \n" + s + "\t",
        lambda s: "[" + s + "]",
        lambda s: "\ufeff" + s,
        lambda s: s.replace("true", "True"),
        lambda s: s.replace("1", "1.0"),
        lambda s: s.replace("0", "-0"),
        lambda s: s.replace("3", "3e0"),
        lambda s: "null",
        lambda s: '"text"',
        lambda s: "",
    ]
)


@CORPUS
@given(event_type=_TYPES, edit=_TEXT_EDITS)
def test_edited_json_text_gets_the_same_verdict(event_type: str, edit: Any) -> None:
    text = edit(json.dumps(VALID[event_type]))
    assert_same_verdict(headers(event_type), text.encode("utf-8", "surrogatepass"))


@CORPUS
@given(event_type=_TYPES, raw=st.binary(max_size=60))
def test_arbitrary_bytes_get_the_same_verdict(event_type: str, raw: bytes) -> None:
    assert_same_verdict(headers(event_type), raw)


_ID = str(uuid.UUID(int=0xABCDEF0123456789))
#: ce_id spellings uuid.UUID accepts or refuses, and JSON escapes that would spell a valid id.
_ID_SPELLINGS = [
    "x",
    "",
    _ID.upper(),
    uuid.UUID(_ID).hex,
    "{" + _ID + "}",
    "urn:uuid:" + _ID,
    " " + _ID,
    _ID + "\n",
    '"' + _ID[1:],
    "\\u0030" + _ID[1:],
    "\\u0030" + uuid.UUID(_ID).hex[1:],
    _ID[:8] + _ID[9:] + "-",
    _ID.replace("-", "_"),
    None,
]
_ID_LIKE = st.from_regex(r"[0-9a-fA-F\\u\-{}]{30,40}", fullmatch=True)

_HEADER_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "ce_specversion": st.sampled_from(["0.3", "1.0", "", None]),
        "ce_id": st.sampled_from(_ID_SPELLINGS) | st.text(max_size=40) | _ID_LIKE,
        "ce_type": st.sampled_from([*sorted(CATALOGUE), "dk.dcr.nope", None]),
        "ce_source": st.sampled_from(["/facilities/x", "/districts/a", "/rooms/a", "", None]),
        "ce_time": st.sampled_from(["2026-11-27T10:00:00", "2026-11-27T10:00:00Z", "x", None]),
        "ce_schemaversion": st.sampled_from(["0", "1", "2", "3", "x", "", "\uff11", " 2", None]),
        "ce_subject": st.sampled_from(["visit", "\udcff", ""]),  # an extra attribute
        "x-trace": st.sampled_from(["1", ""]),
        "content_type": st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "text/plain", "", None]
        ),
    },
)


@CORPUS
@given(event_type=_TYPES, changes=_HEADER_CHANGES, version_1=st.booleans())
def test_changed_headers_get_the_same_verdict(
    event_type: str, changes: dict[str, str | None], version_1: bool
) -> None:
    payload = VALID_V1.get(event_type, VALID[event_type]) if version_1 else VALID[event_type]
    assert_same_verdict(headers(event_type, **changes), _dumps(payload))


_SPELLINGS = st.sampled_from(
    [b"1.0", b"0.3", b"application/json", b"text/plain", b"dk.dcr.visit.ended", b"dk.dcr.nope",
     b"/facilities/halmtorv", b"/rooms/a", b"1", b"x", b"\xff", b"\xef\xbc\x91",
     str(uuid.UUID(int=3)).encode(), T.encode(), b"2026-11-27T10:00:00", b""]
)  # fmt: skip
_NAMES = st.sampled_from(
    ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_schemaversion",
     "content-type", "ce_subject"]
)  # fmt: skip


@CORPUS
@given(
    extra=st.lists(st.tuples(_NAMES, _SPELLINGS), max_size=4),
    order=st.randoms(use_true_random=False),
    drop=st.sets(_NAMES, max_size=2),
)
def test_repeated_reordered_and_dropped_headers_get_the_same_verdict(
    extra: list[tuple[str, bytes]], order: Any, drop: set[str]
) -> None:
    """A header list (not a mapping) with duplicates (the last one counts), in any order."""
    pairs = [(k, v) for k, v in headers("dk.dcr.visit.ended").items() if k not in drop]
    pairs += extra
    order.shuffle(pairs)
    assert_same_verdict(pairs, _dumps(VALID["dk.dcr.visit.ended"]))


@CORPUS
@given(position=st.sampled_from([0, 2, 3, 5, 6]), name=_NAMES, value=_SPELLINGS)
def test_the_producers_layout_with_one_header_replaced_gets_the_same_verdict(
    position: int, name: str, value: bytes
) -> None:
    """Seven headers with ``ce_id`` second and ``ce_time`` fifth (:func:`to_headers`) are split
    by position on the hot path: any other one replaced by any header, ``ce_id`` or ``ce_time``
    named again included (the last one counts), gets the contract's verdict."""
    pairs = list(headers("dk.dcr.visit.ended").items())
    pairs[position] = (name, value)
    assert_same_verdict(pairs, _dumps(VALID["dk.dcr.visit.ended"]))


def test_a_per_record_header_named_again_in_the_producers_layout_counts_last() -> None:
    pairs = list(headers("dk.dcr.visit.ended").items())
    assert [k for k, _ in pairs].index("ce_time") == 4 and len(pairs) == 7
    pairs[6] = ("ce_time", b"not a time")  # content-type (optional) replaced: the last ce_time
    assert assert_same_verdict(pairs, _dumps(VALID["dk.dcr.visit.ended"])) == "invalid"


def test_headers_as_lists_or_other_values_get_the_same_verdict() -> None:
    valid = [[k, v] for k, v in headers("dk.dcr.visit.ended").items()]  # unhashable pairs
    assert assert_same_verdict(valid, _dumps(VALID["dk.dcr.visit.ended"])) == "valid"
    with_bytearray = [(k, bytearray(v)) for k, v in headers("dk.dcr.visit.ended").items()]
    assert assert_same_verdict(with_bytearray, _dumps(VALID["dk.dcr.visit.ended"])) == "valid"


def test_a_record_without_a_value_gets_the_same_verdict(fast: Any) -> None:
    assert assert_same_verdict(headers("dk.dcr.visit.ended"), None, fast) == "invalid"


def test_lax_spellings_the_contract_accepts_are_accepted_on_the_hot_path_too(fast: Any) -> None:
    lax = VALID["dk.dcr.visit.started"] | {"assisted_injection": "yes", "first_visit": 1}
    assert assert_same_verdict(headers("dk.dcr.visit.started"), _dumps(lax), fast) == "valid"


def test_a_pseudonym_with_a_final_newline_is_refused_by_both(fast: Any) -> None:
    bad = VALID["dk.dcr.visit.started"] | {"client_pseudonym": PSEUDONYM + "\n"}
    assert assert_same_verdict(headers("dk.dcr.visit.started"), _dumps(bad), fast) == "invalid"


# --- the Structs against the models, by introspection ----------------------------------------


def _meta_of(tp: Any) -> tuple[Any, dict[str, Any]]:
    """(base type, merged msgspec.Meta constraints) of a msgspec annotation."""
    if get_origin(tp) is Annotated:
        base, *metas = get_args(tp)
        merged: dict[str, Any] = {}
        for m in metas:
            if isinstance(m, msgspec.Meta):
                merged |= {
                    k: getattr(m, k)
                    for k in ("ge", "le", "gt", "lt", "min_length", "max_length", "pattern")
                    if getattr(m, k) is not None
                }
        return base, merged
    return tp, {}


def _pydantic_constraints(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        for k in ("ge", "le", "gt", "lt", "min_length", "max_length", "pattern"):
            if getattr(m, k, None) is not None:
                out[k] = getattr(m, k)
        if hasattr(m, "metadata"):  # an inner Field(...)
            out |= _pydantic_constraints(m.metadata)
    return out


def _unwrap_pydantic(tp: Any, metadata: list[Any]) -> tuple[Any, dict[str, Any], bool]:
    """(base type, constraints, optional) of a pydantic field annotation."""
    optional = False
    args = get_args(tp)
    if type(None) in args:
        optional = True
        (tp,) = [a for a in args if a is not type(None)]
    if get_origin(tp) is Annotated:
        tp, *extra = get_args(tp)
        metadata = [*metadata, *extra]
    return tp, _pydantic_constraints(metadata), optional


@pytest.mark.parametrize("built", ["imported", "fresh"])
def test_every_struct_has_the_model_s_fields_defaults_vocabularies_and_bounds(built: str) -> None:
    structs = fast_decode.STRUCTS if built == "imported" else fast_decode.FastDecoder().structs
    assert set(structs) == set(CATALOGUE)
    checked = 0
    for spec in CATALOGUE.values():
        struct = structs[spec.type]
        assert struct.__struct_config__.forbid_unknown_fields
        assert struct.__struct_fields__ == tuple(spec.model.model_fields)
        hints = msgspec.structs.fields(struct)
        for field_info, (name, info) in zip(hints, spec.model.model_fields.items(), strict=True):
            base, constraints, optional = _unwrap_pydantic(info.annotation, info.metadata)
            tp = field_info.type
            if optional:
                (tp,) = [a for a in get_args(tp) if a is not type(None)]
            fast_base, fast_constraints = _meta_of(tp)
            pattern = constraints.pop("pattern", None)
            fast_pattern = fast_constraints.pop("pattern", None)
            assert fast_constraints == constraints, (spec.type, name)
            assert (pattern is None) == (fast_pattern is None), (spec.type, name)
            if pattern is not None:
                assert fast_pattern == pattern[:-1] + r"\Z", (spec.type, name)
            if isinstance(base, type) and issubclass(base, Enum):
                assert fast_base is base, (spec.type, name)  # the very vocabulary
            for sub_p, sub_f in zip(get_args(base), get_args(fast_base), strict=False):
                sub_p_base, sub_p_constraints, _ = _unwrap_pydantic(sub_p, [])
                sub_f_base, sub_f_constraints = _meta_of(sub_f)
                assert sub_f_constraints == sub_p_constraints, (spec.type, name)
                if isinstance(sub_p_base, type) and issubclass(sub_p_base, Enum):
                    assert sub_f_base is sub_p_base, (spec.type, name)
            if info.is_required():
                assert field_info.required, (spec.type, name)
            elif not isinstance(info.default, BaseModel):
                assert field_info.default == info.default, (spec.type, name)
            checked += 1
    assert checked == sum(len(s.model.model_fields) for s in CATALOGUE.values())


def test_a_declaration_without_a_msgspec_counterpart_fails_the_translation() -> None:
    from pydantic import ConfigDict, Field, field_validator

    class WithValidator(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        n: int

        @field_validator("n")
        @classmethod
        def _even(cls, v: int) -> int:
            return v

    class MultipleOf(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        n: Annotated[int, Field(multiple_of=2)]

    for model in (WithValidator, MultipleOf):
        with pytest.raises(TypeError):
            fast_decode._Translator().struct(model)


class _CountedIterations(list[tuple[str, bytes]]):
    """Headers as Kafka hands them over (a list), counting how often they are iterated."""

    iterations = 0

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        type(self).iterations += 1
        return super().__iter__()


@pytest.mark.parametrize("layout", ["producers", "reversed", "mapping"])
def test_a_batch_checks_its_repeated_headers_once_and_valid_records_take_the_short_path(
    layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Work budget of the per-batch decoder (speed only: its verdicts are compared above): the
    headers a batch repeats are checked once per distinct set, and a record whose repeated
    headers pass is never handed to the full rules (``decode_with``'s body, ``_decoded_at``),
    whatever the order of its headers; in the producers' layout they are split by position,
    never iterated."""
    calls: Counter[str] = Counter()

    def counted(name: str, real: Any) -> Any:
        def call(*args: Any) -> Any:
            calls[name] += 1
            return real(*args)

        return call

    records: list[tuple[Any, bytes]] = []
    for n in range(12):
        event_type = "dk.dcr.visit.ended" if n % 3 else "dk.dcr.service.given"
        named = headers(event_type, ce_id=str(uuid.UUID(int=n)), ce_time=f"2026-11-27T10:{n:02}Z")
        pairs = _CountedIterations(named.items())
        if layout == "reversed":
            pairs.reverse()
        records.append((named if layout == "mapping" else pairs, _dumps(VALID[event_type])))
    contract = [verdict(decode, h, v) for h, v in records]
    assert all(v[0] == "valid" for v in contract)
    monkeypatch.setattr(envelope, "_decoded_at", counted("full", envelope._decoded_at))
    monkeypatch.setattr(envelope, "_checked_repeated", counted("once", envelope._checked_repeated))
    monkeypatch.setattr(_CountedIterations, "iterations", 0)
    batch = fast_decode.batch_decoder()
    assert [verdict(batch, h, v) for h, v in records] == contract
    assert calls == {"once": 2}
    if layout != "mapping":  # a list: iterated unless split by position
        assert (_CountedIterations.iterations == 0) is (layout == "producers")


@pytest.mark.parametrize("name", ["ce_id", "ce_time"])
def test_bytes_that_are_not_utf_8_in_a_per_record_header_get_the_same_verdict(name: str) -> None:
    hdrs = headers("dk.dcr.visit.ended")
    hdrs[name] = hdrs[name][:-1] + b"\xff"
    assert assert_same_verdict(hdrs, _dumps(VALID["dk.dcr.visit.ended"])) == "invalid"


@given(st.uuids() | st.sampled_from([uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]))
def test_an_event_id_is_named_by_its_canonical_text(u: uuid.UUID) -> None:
    """The projection's deduplication keys and stored ids: exactly ``str(u)``, however the
    header spells it."""
    assert fast_decode.event_id(str(u)) == fast_decode.event_id(u.hex.upper()) == str(u)
