"""The projection's hot-path decoder: msgspec Structs derived from the pydantic contract models.

The pydantic models in :mod:`shared.events.payloads` stay the source of truth. At import (by
the module's :class:`FastDecoder`), every payload model of the catalogue is translated into a
frozen msgspec Struct with ``forbid_unknown_fields=True``: the same field names and defaults,
the same closed vocabularies (the very ``StrEnum`` classes), the same bounds
(``ge``/``le``/``min_length``/``max_length``/``pattern`` as :class:`msgspec.Meta`), nested
models as nested Structs. A declaration the
translation does not know (a new constraint, a field validator, another type) fails the import
instead of drifting silently; ``tests/unit/test_fast_decode_parity.py`` compares the two by
introspection and on a corpus of valid and invalid records, value by value.

The hot path decodes into :class:`Event` holding the payload's Struct: no pydantic object is
made per record (building one from the Struct cost about a tenth of the projection's CPU).
Consumers read events of either kind through :mod:`shared.events.views`.

Invariants:

* **Never looser than the contract.** msgspec is strict (no ``"3"`` for 3, no ``1`` for true);
  whatever it refuses is handed to the contract's own parser
  (:func:`shared.events.envelope.parse_payload`), whose verdict and dead-letter reason (naming the
  field) are final; the model it accepts is turned into the Struct of its values
  (:meth:`FastDecoder.struct_of`). A record msgspec accepts is one pydantic accepts with equal
  values: where the two parsers could differ it is avoided by construction (patterns end at
  ``\\Z`` as in pydantic's regex engine; datetimes are parsed by pydantic itself; the pydantic
  model's own "after" validators are run on the Struct, whose fields they read by name).
* **Same values.** A Struct holds what the contract's model holds, field by field: the same
  enum members, ints, floats, bools, UUIDs, tuples, dicts, nested Structs for nested models,
  and aware ``datetime`` values (a datetime field is declared ``str`` for msgspec, then
  replaced by pydantic's parse of that text). Two events are equal when their values are.
* **Same envelope rules.** The CloudEvents headers are checked by the code the contract decoder
  uses (:func:`shared.events.envelope.decode_with`), so their reasons are identical; only a
  ``ce_id`` is kept as the canonical text of the UUID the contract parses (:func:`event_id`:
  the projection names every event by that text; parsing it into a ``UUID`` and writing it
  back cost ~1 us per event). Upcasting uses the catalogue's upcasters.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

import annotated_types as at
import msgspec
from pydantic import AwareDatetime, BaseModel, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from shared.events.catalogue import CATALOGUE, EventSpec, upcast
from shared.events.envelope import (
    BatchDecoder,
    Codec,
    Envelope,
    decode_with,
    facility_of,
    key_of,
    parse_payload,
)

#: Plain types msgspec decodes exactly like pydantic (stricter where pydantic is lax).
_PLAIN: frozenset[type] = frozenset({str, int, float, bool, UUID})
#: pydantic metadata that needs no msgspec counterpart: msgspec is always strict, and its JSON
#: parser refuses NaN and infinities (pydantic's ``allow_inf_nan=False`` then also refuses).
_STRICT_ONLY = ("strict", "allow_inf_nan")
_AWARE_DATETIME = TypeAdapter(AwareDatetime)
#: annotated-types bounds and their msgspec.Meta keyword (the same name as the attribute).
_BOUNDS: tuple[tuple[type[Any], str], ...] = (
    (at.MinLen, "min_length"),
    (at.MaxLen, "max_length"),
    (at.Ge, "ge"),
    (at.Le, "le"),
    (at.Gt, "gt"),
    (at.Lt, "lt"),
)


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One event as the hot path decodes it: the contract's :class:`Envelope` attributes, with
    ``data`` the Struct of the type's payload (:data:`STRUCTS`), holding the model's values.
    Equal events have equal attributes and payload values (a retry, a replay).

    Not tracked by the garbage collector (``gc=False``, as the payload Structs): it holds only
    immutable values and its payload, none of which can refer back to it, so it can be in no
    reference cycle; the collector's passes over a batch's 20,000 events are saved."""

    #: The id as the canonical text of its UUID (lowercase 8-4-4-4-12): ``str(UUID(ce_id))``,
    #: what the contract's :class:`Envelope` holds as a ``UUID``.
    id: str
    type: str
    source: str
    time: datetime
    data: msgspec.Struct

    @property
    def facility_id(self) -> str | None:
        return facility_of(self.source)

    @property
    def key(self) -> str:
        return key_of(self.source)


class _Finisher:
    """What a decoded Struct still needs to hold the contract model's values: its datetime
    fields (and nested Structs needing it) replaced by pydantic's parse, then the model's own
    "after" validators run on it (they read fields by name; a ValueError refuses the record)."""

    __slots__ = ("after", "fields")

    def __init__(self, model: type[BaseModel]) -> None:
        #: (field name, conversion) for fields whose msgspec value is not the pydantic one.
        self.fields: list[tuple[str, Callable[[Any], Any]]] = []
        decorators = model.__pydantic_decorators__
        self.after = [d.func for d in decorators.model_validators.values()]

    def needed(self) -> bool:
        """Whether a Struct of this type needs finishing (most need nothing)."""
        return bool(self.fields or self.after)

    def __call__(self, struct: msgspec.Struct) -> Any:
        changes: dict[str, Any] = {}
        for name, convert in self.fields:
            value = getattr(struct, name)
            if value is not None:
                changes[name] = convert(value)
        if changes:
            struct = msgspec.structs.replace(struct, **changes)
        for validator in self.after:  # the model's own "after" rules (e.g. count or weight)
            validator(struct)
        return struct


def _pattern(regex: str) -> str:
    """pydantic's (Rust) ``$`` matches only at the very end; Python's also before a final
    newline. ``\\Z`` is Python's very end."""
    return regex[:-1] + r"\Z" if regex.endswith("$") and not regex.endswith(r"\$") else regex


def _meta(metadata: Iterable[Any], where: str) -> msgspec.Meta | None:
    """The msgspec Meta of pydantic constraints; unknown ones fail (no silent drift)."""
    kw: dict[str, Any] = {}
    for m in metadata:
        bound = next((name for kind, name in _BOUNDS if isinstance(m, kind)), None)
        if bound is not None:
            kw[bound] = getattr(m, bound)
        elif type(m).__name__ in ("Strict", "AllowInfNan"):
            continue
        elif type(m).__name__ == "_PydanticGeneralMetadata":
            extra = dict(vars(m))
            pattern = extra.pop("pattern", None)
            if pattern is not None:
                kw["pattern"] = _pattern(pattern)
            for name in _STRICT_ONLY:
                extra.pop(name, None)
            if extra:
                raise TypeError(f"{where}: no msgspec counterpart for {sorted(extra)}")
        else:
            raise TypeError(f"{where}: no msgspec counterpart for {m!r}")
    return msgspec.Meta(**kw) if kw else None


def _constrained(base: Any, metadata: Iterable[Any], where: str) -> Any:
    meta = _meta(metadata, where)
    return base if meta is None else Annotated[base, meta]


class _Translator:
    """pydantic payload models -> msgspec Structs (one per model, nested ones shared)."""

    def __init__(self) -> None:
        self.structs: dict[type[BaseModel], type[msgspec.Struct]] = {}
        self.finishers: dict[type[msgspec.Struct], _Finisher] = {}

    def struct(self, model: type[BaseModel]) -> type[msgspec.Struct]:
        known = self.structs.get(model)
        if known is not None:
            return known
        decorators = model.__pydantic_decorators__
        unsupported = [
            *decorators.field_validators,
            *decorators.validators,
            *decorators.root_validators,
            *(n for n, d in decorators.model_validators.items() if d.info.mode != "after"),
        ]
        if unsupported or model.model_config.get("extra") != "forbid":
            raise TypeError(f"{model.__name__}: validators {unsupported} or extra fields")
        finisher = _Finisher(model)
        fields: list[tuple[str, Any, Any]] = []
        for name, info in model.model_fields.items():
            where = f"{model.__name__}.{name}"
            tp, convert = self._field_type(info, where)
            if convert is not None:
                finisher.fields.append((name, convert))
            if info.default is PydanticUndefined:
                fields.append((name, tp, msgspec.NODEFAULT))
            else:
                fields.append((name, tp, self._default(info.default)))
        struct = msgspec.defstruct(
            f"Fast{model.__name__}",
            fields,
            kw_only=True,
            frozen=True,
            forbid_unknown_fields=True,
            gc=False,  # values only (no reference back to a Struct): no cycle possible
        )
        self.structs[model] = struct
        self.finishers[struct] = finisher
        return struct

    def struct_of(self, value: Any) -> Any:
        """The Struct of a validated pydantic model instance: its values as they are (nested
        models as their Structs). Other values are returned as they are."""
        if not isinstance(value, BaseModel):
            return value
        struct = self.struct(type(value))
        return struct(
            **{name: self.struct_of(getattr(value, name)) for name in struct.__struct_fields__}
        )

    def _default(self, default: Any) -> Any:
        if isinstance(default, BaseModel):
            instance = self.struct_of(default)  # the model's default values (e.g. datetimes)
            return msgspec.field(default_factory=lambda: instance)
        return default

    def _field_type(self, info: FieldInfo, where: str) -> tuple[Any, Callable[[Any], Any] | None]:
        return self._type(info.annotation, info.metadata, where)

    def _type(
        self, tp: Any, metadata: Iterable[Any], where: str
    ) -> tuple[Any, Callable[[Any], Any] | None]:
        """(msgspec type, conversion of its decoded value into pydantic's, or None)."""
        origin = get_origin(tp)
        if origin is Annotated:
            base, *extra = get_args(tp)
            inner = [m for x in extra for m in (x.metadata if isinstance(x, FieldInfo) else [x])]
            return self._type(base, [*metadata, *inner], where)
        if origin in (Union, types.UnionType):
            if list(metadata):
                raise TypeError(f"{where}: constraints on a union")
            args = get_args(tp)
            parts = [self._type(a, (), where) for a in args if a is not type(None)]
            if len(parts) != 1 or type(None) not in args:
                raise TypeError(f"{where}: only optional (X | None) unions are translated")
            inner_tp, convert = parts[0]
            return inner_tp | None, convert
        if tp is AwareDatetime:
            # parsed by pydantic itself: the two datetime parsers accept different spellings
            return _constrained(str, metadata, where), _parse_aware_datetime
        if isinstance(tp, type) and issubclass(tp, Enum):
            return _constrained(tp, metadata, where), None
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            struct = self.struct(tp)
            finisher = self.finishers[struct]
            return _constrained(struct, metadata, where), finisher if finisher.needed() else None
        if origin is tuple:
            item, ellipsis = get_args(tp)
            if ellipsis is not Ellipsis:
                raise TypeError(f"{where}: only tuple[X, ...] is translated")
            item_tp, convert = self._type(item, (), where)
            if convert is not None or _is_model(item):
                raise TypeError(f"{where}: tuple items needing conversion")
            return _constrained(tuple[item_tp, ...], metadata, where), None  # type: ignore[valid-type]
        if origin is dict:
            key, val = get_args(tp)
            key_tp, key_convert = self._type(key, (), where)
            val_tp, val_convert = self._type(val, (), where)
            if key_convert is not None or val_convert is not None or _is_model(val):
                raise TypeError(f"{where}: dict entries needing conversion")
            return _constrained(dict[key_tp, val_tp], metadata, where), None  # type: ignore[valid-type]
        if tp in _PLAIN:
            return _constrained(tp, metadata, where), None
        raise TypeError(f"{where}: no msgspec counterpart for {tp!r}")


def _is_model(tp: Any) -> bool:
    """Whether ``tp`` is a pydantic model (its values need converting into a Struct)."""
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _parse_aware_datetime(text: str) -> datetime:
    return _AWARE_DATETIME.validate_python(text)


class FastDecoder:
    """The hot-path decoder of the catalogue: every payload model is translated afresh into its
    Struct when one is made (the module's instance is made once, at import; a test makes its
    own to run the translation itself). Nothing changes after construction."""

    def __init__(self) -> None:
        translator = _Translator()
        #: Event type -> the Struct of its current payload version.
        self.structs: dict[str, type[msgspec.Struct]] = {
            spec.type: translator.struct(spec.model) for spec in CATALOGUE.values()
        }
        self._translator = translator
        #: Event type -> (its decoder, its finisher or None when a Struct needs nothing more).
        self._decoders: dict[str, tuple[msgspec.json.Decoder[Any], _Finisher | None]] = {}
        for t, s in self.structs.items():
            finisher = translator.finishers[s]
            self._decoders[t] = (msgspec.json.Decoder(s), finisher if finisher.needed() else None)
        #: This decoder's :class:`shared.events.envelope.Codec`.
        self.codec: Codec[Event] = Codec(payload=self.parse_payload, event_id=event_id, build=Event)

    def struct_for(self, model: type[BaseModel]) -> type[msgspec.Struct]:
        """The Struct translated from ``model`` (also nested ones, e.g. ``Interventions``)."""
        return self._translator.structs[model]

    def struct_of(self, payload: BaseModel) -> msgspec.Struct:
        """The Struct holding a contract payload's values (what decoding its JSON gives)."""
        struct: msgspec.Struct = self._translator.struct_of(payload)
        return struct

    def event_of(self, envelope: Envelope) -> Event:
        """The hot path's :class:`Event` of a contract :class:`Envelope` (the same values)."""
        return Event(
            id=str(envelope.id),
            type=envelope.type,
            source=envelope.source,
            time=envelope.time,
            data=self.struct_of(envelope.data),
        )

    def parse_payload(self, spec: EventSpec, version: int, value: bytes) -> msgspec.Struct:
        """:func:`shared.events.envelope.parse_payload` through msgspec, into the type's Struct;
        any record msgspec refuses gets the contract parser's verdict (accepted if pydantic's
        lax rules accept it, then as the Struct of the model's values; otherwise its
        :class:`DecodeError` naming the field)."""
        decoder, finish = self._decoders[spec.type]
        try:
            struct: msgspec.Struct
            if version == spec.version:
                struct = decoder.decode(value)
            else:
                raw = _ANY.decode(value)
                if not isinstance(raw, dict):
                    raise TypeError("not a JSON object")  # the contract's verdict below
                struct = msgspec.convert(upcast(spec.type, version, raw), decoder.type)
            return struct if finish is None else finish(struct)
        except _REFUSED:
            pass
        return self.struct_of(parse_payload(spec, version, value))

    def decode(
        self, headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]], value: bytes | None
    ) -> Event:
        """:func:`decode` through this decoder's Structs."""
        return decode_with(headers, value, self.codec)

    def batch(self) -> BatchDecoder[Event]:
        """:meth:`decode` for the records of one batch (repeated headers checked once; the
        same verdicts: :class:`shared.events.envelope.BatchDecoder`)."""
        return BatchDecoder(self.codec)


_ANY = msgspec.json.Decoder()
#: What makes the fast path hand a record to the contract's parser for the final verdict.
_REFUSED = (msgspec.ValidationError, msgspec.DecodeError, ValueError, LookupError, TypeError)


def event_id(text: str) -> str:
    """``str(uuid.UUID(text))``: canonical text (the common case, what the ingest services
    write) is checked by one regular expression and kept as it is; any other spelling
    ``uuid.UUID`` accepts (uppercase, 32 digits, braces, ``urn:uuid:``) is parsed and written
    canonically, and one it refuses raises its ValueError (the contract's verdict)."""
    if _CANONICAL_UUID(text) is not None:
        return text
    return str(UUID(text))


#: Whether a text is a UUID in canonical form (lowercase hex, 8-4-4-4-12, nothing around it).
_CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
).fullmatch


_DECODER = FastDecoder()
#: Event type -> the Struct of its current payload version.
STRUCTS: dict[str, type[msgspec.Struct]] = _DECODER.structs
#: The hot path's :class:`shared.events.envelope.Codec`.
FAST = _DECODER.codec
#: :meth:`FastDecoder.parse_payload` of the module's decoder.
parse_payload_fast = _DECODER.parse_payload
#: :meth:`FastDecoder.struct_for` of the module's decoder.
struct_for = _DECODER.struct_for
#: :meth:`FastDecoder.event_of` of the module's decoder.
event_of = _DECODER.event_of
#: :meth:`FastDecoder.batch` of the module's decoder.
batch_decoder = _DECODER.batch


def decode(
    headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]], value: bytes | None
) -> Event:
    """:func:`shared.events.envelope.decode` on the hot path: the same verdicts, reasons and
    values (tested on a corpus), payloads parsed by msgspec into Structs."""
    return decode_with(headers, value, FAST)


__all__ = [
    "STRUCTS",
    "Event",
    "FastDecoder",
    "batch_decoder",
    "decode",
    "event_of",
    "parse_payload_fast",
    "struct_for",
]
