"""The CloudEvents 1.0 envelope and its Kafka binary-mode codec.

Binary mode: CloudEvents attributes travel as ``ce_*`` headers, the value is the payload as JSON
with ``content-type: application/json``. Extension ``ce_schemaversion`` carries the payload's
schema version. The Kafka key is the facility id (or the district for street collections) so one
facility's events stay ordered in one partition.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    SerializeAsAny,
    ValidationError,
    field_validator,
)

from shared.events import payloads as p
from shared.events.catalogue import CATALOGUE, EventSpec, spec_for, upcast

SPECVERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"
_SOURCE = re.compile(r"^/(facilities|districts)/([a-z0-9-]{1,64})$")


class DecodeError(ValueError):
    """A Kafka record that is not a valid event. ``reason`` is safe to log and to put in headers
    (it never contains payload values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Envelope(BaseModel):
    """One event. Invariant: ``type`` is in the catalogue and ``data`` is that type's model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID
    type: str
    source: str
    time: AwareDatetime
    data: SerializeAsAny[p.Payload]

    @field_validator("source")
    @classmethod
    def _source_names_facility_or_district(cls, v: str) -> str:
        if _SOURCE.match(v) is None:
            raise ValueError("source must be /facilities/<id> or /districts/<id>")
        return v

    @classmethod
    def wrap(cls, data: p.Payload, *, id: UUID, source: str, time: datetime) -> Envelope:
        return cls(
            id=id,
            type=spec_for(type(data)).type,
            source=source,
            time=time,
            data=data,
        )

    @property
    def topic(self) -> str:
        return CATALOGUE[self.type].topic

    @property
    def schema_version(self) -> int:
        return CATALOGUE[self.type].version

    @property
    def facility_id(self) -> str | None:
        return facility_of(self.source)

    @property
    def key(self) -> str:
        return key_of(self.source)


def facility_source(facility_id: str) -> str:
    return f"/facilities/{facility_id}"


def district_source(district_id: str) -> str:
    return f"/districts/{district_id}"


def facility_of(source: str) -> str | None:
    """The facility an event of this source happened at; None for district-level (street)
    events."""
    kind, ident = parse_source(source)
    return ident if kind == "facilities" else None


def key_of(source: str) -> str:
    """The partition key of an event of this source: facility id, or district id for
    district-level events."""
    return parse_source(source)[1]


def parse_source(source: str) -> tuple[str, str]:
    """(``facilities`` or ``districts``, id) of a CloudEvents source; DecodeError otherwise."""
    m = _SOURCE.match(source)
    if m is None:
        raise DecodeError("ce_source is not /facilities/<id> or /districts/<id>")
    return m.group(1), m.group(2)


def to_headers(env: Envelope) -> dict[str, str]:
    return {
        "ce_specversion": SPECVERSION,
        "ce_id": str(env.id),
        "ce_type": env.type,
        "ce_source": env.source,
        "ce_time": env.time.isoformat(),
        "ce_schemaversion": str(env.schema_version),
        "content-type": CONTENT_TYPE,
    }


def to_value(env: Envelope) -> bytes:
    return env.data.model_dump_json().encode()


_BAD_ATTRIBUTES = "invalid ce_id, ce_source or ce_time header"
_REQUIRED = ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time")


def decode(
    headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]], value: bytes | None
) -> Envelope:
    """Decode a Kafka record into an Envelope, upcasting old schema versions.

    Raises :class:`DecodeError` with a reason naming what is wrong (never the payload values).
    """
    return decode_with(headers, value, CONTRACT)


#: What a :class:`Codec` builds of a record: the contract's :class:`Envelope`, or the hot path's
#: event (:class:`shared.events.fast_decode.Event`: the same values, the payload as a Struct).
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Codec(Generic[E]):
    """The parts of :func:`decode_with` a hot-path decoder may replace by faster equivalents
    (:mod:`shared.events.fast_decode`); each must give the contract's verdict and values or
    raise."""

    #: A record's value written at a schema version -> that type's current payload (its
    #: values those of the contract's model); raises :class:`DecodeError` naming the field
    #: (the contract's: :func:`parse_payload`).
    payload: Callable[[EventSpec, int, bytes], object]
    #: The ``ce_id`` header -> the event's id (the contract's: ``uuid.UUID``; the hot path's:
    #: the same UUID's canonical text); raises ValueError for a header ``uuid.UUID`` refuses.
    event_id: Callable[[str], UUID | str]
    #: The event of fields already validated (no second validation), by keyword: id, type,
    #: source, time, data.
    build: Callable[..., E]


_REQUIRED_SET = frozenset(_REQUIRED)


def decode_with(
    headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
    value: bytes | None,
    codec: Codec[E],
) -> E:
    """:func:`decode` with another :class:`Codec` (the projection's hot path): the CloudEvents
    attributes are checked here, by the one code both decoders share, in the same order, so
    their verdicts and reasons cannot differ there."""
    return _decoded_at(headers, value, codec)[0]


def _decoded_at(
    headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
    value: bytes | None,
    codec: Codec[E],
) -> tuple[E, int]:
    """:func:`decode_with`'s event and the schema version its value was read at."""
    h = {k: v.decode("utf-8", "replace") for k, v in _pairs(headers)}
    spec, version = _checked_headers(h)
    if value is None:
        raise DecodeError("record has no value")
    data = codec.payload(spec, version, value)
    try:
        event_id = codec.event_id(h["ce_id"])
        time = datetime.fromisoformat(h["ce_time"])
    except ValueError:
        raise DecodeError(_BAD_ATTRIBUTES) from None
    if time.utcoffset() is None or _SOURCE.match(h["ce_source"]) is None:
        raise DecodeError(_BAD_ATTRIBUTES)
    # Every field was checked above; ``build`` skips validating them a second time
    # (decoding is the projection's hottest path).
    event = codec.build(id=event_id, type=spec.type, source=h["ce_source"], time=time, data=data)
    return event, version


def _pairs(
    headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
) -> Iterable[tuple[str, bytes]]:
    """A record's headers as (name, value) pairs (a mapping's items, or the pairs as given)."""
    return headers.items() if hasattr(headers, "items") else headers


def _checked_headers(h: Mapping[str, str]) -> tuple[EventSpec, int]:
    """The first rules of :func:`decode_with`, in its order, on the decoded headers: all
    required present, the spec version, the content type, a known type, an integer schema
    version. Returns (the type's spec, the record's schema version); raises DecodeError."""
    if not h.keys() >= _REQUIRED_SET:
        missing = [name for name in _REQUIRED if name not in h]
        raise DecodeError(f"missing CloudEvents header(s): {', '.join(missing)}")
    if h["ce_specversion"] != SPECVERSION:
        raise DecodeError(f"unsupported ce_specversion {h['ce_specversion']!r}")
    if h.get("content-type", CONTENT_TYPE).split(";")[0].strip() != CONTENT_TYPE:
        raise DecodeError("content-type is not application/json")
    spec = CATALOGUE.get(h["ce_type"])
    if spec is None:
        raise DecodeError(f"unknown ce_type {h['ce_type'][:100]!r}")
    return spec, _schema_version(h)


def _schema_version(h: Mapping[str, str]) -> int:
    """The decoded headers' ``ce_schemaversion`` (1 when absent). ASCII digits only: ``int``
    also reads other scripts' digits (U+FF11, a full-width one), which no producer writes; such a
    record was once accepted here and then failed the projection's claim, which read the
    header's bytes, and with it its whole batch, on every retry. Raises DecodeError."""
    text = h.get("ce_schemaversion", "1")
    if not (text.isascii() and text.isdigit()):
        raise DecodeError("ce_schemaversion is not an integer")
    return int(text)


def schema_version(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> int:
    """The schema version :func:`decode_with` reads a record's headers at (a mapping: the last
    ``ce_schemaversion`` wins; 1 when absent). Call it for a record that decoded; raises
    DecodeError otherwise."""
    return _schema_version({k: v.decode("utf-8", "replace") for k, v in _pairs(headers)})


#: Per-record header values (never repeated across records), kept out of :class:`BatchDecoder`'s
#: key; every other header of a producer's records repeats (type, source, versions).
_PER_RECORD = ("ce_id", "ce_time")
#: A stand-in for the per-record headers when the repeated ones are checked alone.
_PRESENT = {name: "" for name in _PER_RECORD}
#: The header layout every producer writes (:func:`to_headers`: seven headers, ``ce_id``
#: second, ``ce_time`` fifth), which :class:`BatchDecoder` splits by position (a list from
#: Kafka, a tuple from a RawRecord).
_LAYOUT_LENGTH = 7


class BatchDecoder(Generic[E]):
    """:func:`decode_with` for the records of one batch, with the header checks that depend
    only on values repeating across records (spec version, content type, type, schema version,
    source) done once per distinct set of those headers (a batch has few).

    Equivalence: a record takes the short path only when ``ce_id`` and ``ce_time`` are each
    given and its other headers passed :func:`_checked_headers` and the source rule; then
    :func:`decode_with` would check exactly the value's presence, the payload, the id and the
    time, in that order with the same reasons, which is what the short path does. Every other
    record goes through :func:`decode_with` itself, whose verdict is final
    (tests/unit/test_fast_decode_parity.py runs both on every header variant). Headers in the
    producers' layout are split by position (the five others form the key, in order, as the
    loop over any other layout does); a key that names ``ce_id`` or ``ce_time`` again (a
    repeated per-record header, which the loop would have taken out) never passes, so such a
    record gets :func:`decode_with`'s verdict. Make one per batch: the memo grows with the
    distinct header sets it sees."""

    __slots__ = ("_codec", "_memo")

    def __init__(self, codec: Codec[E]) -> None:
        self._codec = codec
        #: repeated headers -> (spec, schema version, source) when they pass, else None.
        self._memo: dict[tuple[Any, ...], tuple[EventSpec, int, str] | None] = {}

    def __call__(
        self, headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]], value: bytes | None
    ) -> E:
        return self.versioned(headers, value)[0]

    def versioned(
        self, headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]], value: bytes | None
    ) -> tuple[E, int]:
        """The event and the schema version its record was read at (:func:`schema_version`:
        for a record in the producers' layout, from the memo, no second look at its headers)."""
        pairs = headers.items() if hasattr(headers, "items") else headers  # _pairs, inlined
        ce_id = ce_time = None
        key: tuple[Any, ...]
        if (
            isinstance(pairs, list | tuple)
            and len(pairs) == _LAYOUT_LENGTH
            and pairs[1][0] == "ce_id"
            and pairs[4][0] == "ce_time"
        ):  # the producers' layout (to_headers): no loop over the headers
            ce_id, ce_time = pairs[1][1], pairs[4][1]
            key = (pairs[0], pairs[2], pairs[3], pairs[5], pairs[6])
        else:
            repeated: list[tuple[str, bytes]] = []
            for pair in pairs:
                name = pair[0]
                if name == "ce_id":
                    ce_id = pair[1]
                elif name == "ce_time":
                    ce_time = pair[1]
                else:
                    repeated.append(pair)
            key = tuple(repeated)
        try:
            checked = self._memo[key]
        except KeyError:
            checked = self._memo[key] = _checked_repeated(key)
        except TypeError:  # an unhashable header (not a (str, bytes) pair): the full rules
            checked = None
        if checked is None or ce_id is None or ce_time is None or value is None:
            return _decoded_at(headers, value, self._codec)  # decode_with's verdict
        spec, version, source = checked
        codec = self._codec
        data = codec.payload(spec, version, value)
        try:
            event_id = codec.event_id(ce_id.decode("utf-8", "replace"))
            time = datetime.fromisoformat(ce_time.decode("utf-8", "replace"))
        except ValueError:
            raise DecodeError(_BAD_ATTRIBUTES) from None
        if time.utcoffset() is None:
            raise DecodeError(_BAD_ATTRIBUTES)
        event = codec.build(id=event_id, type=spec.type, source=source, time=time, data=data)
        return event, version


def _checked_repeated(
    repeated: tuple[tuple[str, bytes], ...],
) -> tuple[EventSpec, int, str] | None:
    """(spec, schema version, source) of headers without ``ce_id``/``ce_time`` that pass every
    rule of :func:`decode_with` that reads them; None if any fails (the record then goes
    through :func:`decode_with` for its reason)."""
    if any(pair[0] in _PRESENT for pair in repeated):
        return None  # a per-record header named again (positional key): the full rules
    h = {k: v.decode("utf-8", "replace") for k, v in repeated} | _PRESENT
    try:
        spec, version = _checked_headers(h)
    except DecodeError:
        return None
    if _SOURCE.match(h["ce_source"]) is None:
        return None
    return spec, version, h["ce_source"]


def parse_payload(spec: EventSpec, version: int, value: bytes) -> p.Payload:
    """The contract's verdict on a payload: the validated model, upcast to the current version;
    current-version records are parsed by pydantic-core directly. Raises :class:`DecodeError`
    naming the invalid field(s), never their values."""
    try:
        if version == spec.version:
            return spec.model.model_validate_json(value)
        raw: Any = json.loads(value)
        if not isinstance(raw, dict):
            raise DecodeError("value is not a JSON object")
        return spec.model.model_validate(upcast(spec.type, version, raw))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DecodeError("value is not valid JSON") from None
    except LookupError as exc:
        raise DecodeError(str(exc)) from None
    except ValidationError as exc:
        errors = exc.errors()
        if errors and errors[0]["type"] == "json_invalid":
            raise DecodeError("value is not valid JSON") from None
        if errors and errors[0]["type"] == "model_type" and not errors[0]["loc"]:
            raise DecodeError("value is not a JSON object") from None
        fields = sorted({".".join(str(x) for x in e["loc"]) or "<root>" for e in errors})
        raise DecodeError(f"payload invalid for {spec.type}: {', '.join(fields)}") from None


#: The contract's decoder: pydantic-core parses the payload.
CONTRACT: Codec[Envelope] = Codec(
    payload=parse_payload, event_id=UUID, build=Envelope.model_construct
)


def to_record_json(env: Envelope) -> str:
    """The envelope as its Kafka record (headers + value) in JSON, for storage and replay."""
    return json.dumps({"headers": to_headers(env), "value": to_value(env).decode()})


def from_record_json(text: str) -> Envelope:
    doc = json.loads(text)
    return decode({k: v.encode() for k, v in doc["headers"].items()}, doc["value"].encode())
