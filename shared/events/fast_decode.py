"""The projection's hot-path decoder: msgspec Structs derived from the pydantic contract models.

The pydantic models in :mod:`shared.events.payloads` stay the source of truth. At import (by
the module's :class:`FastDecoder`), every payload model of the catalogue is translated into a
frozen msgspec Struct with ``forbid_unknown_fields=True``: the same field names and defaults,
the same closed vocabularies (the very ``StrEnum`` classes), the same bounds
(``ge``/``le``/``min_length``/``max_length``/``pattern`` as :class:`msgspec.Meta`), nested
models as nested Structs. A declaration the
translation does not know (a new constraint, a field validator, another type) fails the import
instead of drifting silently; ``tests/unit/test_fast_decode_parity.py`` compares the two by
introspection and on a corpus of valid and invalid records.

Invariants:

* **Never looser than the contract.** msgspec is strict (no ``"3"`` for 3, no ``1`` for true);
  whatever it refuses is handed to the contract's own parser
  (:func:`shared.events.envelope.parse_payload`), whose verdict and dead-letter reason (naming the
  field) are final. A record msgspec accepts is one pydantic accepts with an equal value: where
  the two parsers could differ it is avoided by construction (patterns end at ``\\Z`` as in
  pydantic's regex engine; datetimes are parsed by pydantic itself; model validators of the
  pydantic model are run on the result).
* **Same envelope rules.** The CloudEvents headers are checked by the code the contract decoder
  uses (:func:`shared.events.envelope.decode_with`), so their reasons are identical; only a
  canonical ``ce_id`` is parsed by msgspec (:func:`event_id`, the same UUID).
* **Same result.** :func:`decode` returns the contract's :class:`Envelope` holding the contract's
  payload models (built from validated fields, without a second validation), so every consumer
  of an event sees one type whichever decoder made it. Upcasting uses the catalogue's upcasters.
"""

from __future__ import annotations

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

from shared.events import payloads as p
from shared.events.catalogue import CATALOGUE, EventSpec, upcast
from shared.events.envelope import Codec, Envelope, decode_with, parse_payload

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

_setattr = object.__setattr__


def _instance(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """A pydantic model instance of fields already validated: what ``model_construct`` makes
    (fields set, no extra, no private attributes), without its per-field default handling
    (every field is given). Every field counts as set, also a default one: only
    ``model_dump(exclude_unset=True)`` could tell, and nothing on the hot path calls it."""
    obj = model.__new__(model)
    _setattr(obj, "__dict__", values)
    _setattr(obj, "__pydantic_fields_set__", set(values))
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", None)
    return obj


class _Converter:
    """Turns one Struct type's instances into its pydantic model (fields already validated)."""

    __slots__ = ("after", "fields", "model")

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        #: (field name, conversion) for fields whose msgspec value is not the pydantic one.
        self.fields: list[tuple[str, Callable[[Any], Any]]] = []
        decorators = model.__pydantic_decorators__
        self.after = [d.func for d in decorators.model_validators.values()]

    def __call__(self, struct: msgspec.Struct) -> Any:
        values = msgspec.structs.asdict(struct)
        for name, convert in self.fields:
            value = values[name]
            if value is not None:
                values[name] = convert(value)
        obj = _instance(self.model, values)
        for validator in self.after:  # the model's own "after" rules (e.g. count or weight)
            validator(obj)
        return obj


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
        self.converters: dict[type[msgspec.Struct], _Converter] = {}

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
        converter = _Converter(model)
        fields: list[tuple[str, Any, Any]] = []
        for name, info in model.model_fields.items():
            where = f"{model.__name__}.{name}"
            tp, convert = self._field_type(info, where)
            if convert is not None:
                converter.fields.append((name, convert))
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
        )
        self.structs[model] = struct
        self.converters[struct] = converter
        return struct

    def _default(self, default: Any) -> Any:
        if isinstance(default, BaseModel):
            struct = self.struct(type(default))
            instance = msgspec.convert(default.model_dump(mode="json"), struct)
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
            return _constrained(struct, metadata, where), self.converters[struct]
        if origin is tuple:
            item, ellipsis = get_args(tp)
            if ellipsis is not Ellipsis:
                raise TypeError(f"{where}: only tuple[X, ...] is translated")
            item_tp, convert = self._type(item, (), where)
            if convert is not None:
                raise TypeError(f"{where}: tuple items needing conversion")
            return _constrained(tuple[item_tp, ...], metadata, where), None  # type: ignore[valid-type]
        if origin is dict:
            key, val = get_args(tp)
            key_tp, key_convert = self._type(key, (), where)
            val_tp, val_convert = self._type(val, (), where)
            if key_convert is not None or val_convert is not None:
                raise TypeError(f"{where}: dict entries needing conversion")
            return _constrained(dict[key_tp, val_tp], metadata, where), None  # type: ignore[valid-type]
        if tp in _PLAIN:
            return _constrained(tp, metadata, where), None
        raise TypeError(f"{where}: no msgspec counterpart for {tp!r}")


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
        self._decoders: dict[str, tuple[msgspec.json.Decoder[Any], _Converter]] = {
            t: (msgspec.json.Decoder(s), translator.converters[s]) for t, s in self.structs.items()
        }
        #: This decoder's :class:`shared.events.envelope.Codec`.
        self.codec = Codec(payload=self.parse_payload, event_id=event_id, build=_envelope)

    def struct_for(self, model: type[BaseModel]) -> type[msgspec.Struct]:
        """The Struct translated from ``model`` (also nested ones, e.g. ``Interventions``)."""
        return self._translator.structs[model]

    def parse_payload(self, spec: EventSpec, version: int, value: bytes) -> p.Payload:
        """:func:`shared.events.envelope.parse_payload` through msgspec; any record msgspec
        refuses gets the contract parser's verdict (accepted if pydantic's lax rules accept it,
        otherwise its :class:`DecodeError` naming the field)."""
        decoder, convert = self._decoders[spec.type]
        try:
            if version == spec.version:
                payload: p.Payload = convert(decoder.decode(value))
                return payload
            raw = _ANY.decode(value)
            if isinstance(raw, dict):
                struct = msgspec.convert(upcast(spec.type, version, raw), decoder.type)
                upcast_payload: p.Payload = convert(struct)
                return upcast_payload
        except _REFUSED:
            pass
        return parse_payload(spec, version, value)

    def decode(
        self, headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]], value: bytes | None
    ) -> Envelope:
        """:func:`decode` through this decoder's Structs."""
        return decode_with(headers, value, self.codec)


_ANY = msgspec.json.Decoder()
#: What makes the fast path hand a record to the contract's parser for the final verdict.
_REFUSED = (msgspec.ValidationError, msgspec.DecodeError, ValueError, LookupError, TypeError)


def _envelope(**fields: Any) -> Envelope:
    envelope: Envelope = _instance(Envelope, fields)
    return envelope


_UUID = msgspec.json.Decoder(UUID)


def event_id(text: str) -> UUID:
    """``uuid.UUID(text)``: msgspec parses the canonical and the 32-digit forms (the same
    value); any other spelling is left to ``uuid.UUID`` (which accepts or raises ValueError).
    Text with a backslash or quote never reaches msgspec (a JSON escape would be unescaped)."""
    if len(text) in (32, 36) and "\\" not in text and '"' not in text:
        try:
            return _UUID.decode(f'"{text}"'.encode())
        except msgspec.DecodeError:
            pass
    return UUID(text)


_DECODER = FastDecoder()
#: Event type -> the Struct of its current payload version.
STRUCTS: dict[str, type[msgspec.Struct]] = _DECODER.structs
#: The hot path's :class:`shared.events.envelope.Codec`.
FAST = _DECODER.codec
#: :meth:`FastDecoder.parse_payload` of the module's decoder.
parse_payload_fast = _DECODER.parse_payload
#: :meth:`FastDecoder.struct_for` of the module's decoder.
struct_for = _DECODER.struct_for


def decode(
    headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]], value: bytes | None
) -> Envelope:
    """:func:`shared.events.envelope.decode` on the hot path: the same verdicts, reasons and
    events (tested on a corpus), payloads parsed by msgspec."""
    return decode_with(headers, value, FAST)


__all__ = ["STRUCTS", "FastDecoder", "decode", "parse_payload_fast", "struct_for"]
