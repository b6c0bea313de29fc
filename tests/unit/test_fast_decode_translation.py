"""The translation of pydantic declarations into msgspec Structs (shared/events/fast_decode.py),
run inside the test on small models: what it cannot translate fails naming the model and field
(the import of the hot path fails instead of drifting from the contract), what it can
translate decodes as pydantic does; and ``event_id`` parses only canonical ids with msgspec.

The catalogue's own models are compared in tests/unit/test_fast_decode_parity.py (also through
a decoder built inside the test).
"""

from __future__ import annotations

import gc
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import annotated_types as at
import msgspec
import pytest
from pydantic import (
    AllowInfNan,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticError
from pydantic._internal._fields import pydantic_general_metadata

from shared.events import fast_decode
from shared.events.payloads import IncidentReported, Interventions
from shared.events.vocabulary import Substance
from tests.unit.decoded_values import typed_values

_STRICT = ConfigDict(frozen=True, extra="forbid")
_ODD = Field(multiple_of=2)  # a constraint msgspec.Meta cannot express


class _Inner(BaseModel):
    model_config = _STRICT
    n: Annotated[int, Field(ge=0, le=20)] = 0


class _Stamped(BaseModel):
    """A nested default whose JSON form differs from its Python form (a datetime)."""

    model_config = _STRICT
    at: AwareDatetime = datetime(2026, 11, 27, 10, tzinfo=UTC)
    substance: Substance = Substance.HEROIN


class _Validated(BaseModel):
    model_config = _STRICT
    n: int

    @field_validator("n")
    @classmethod
    def _even(cls, v: int) -> int:
        return v


class _Before(BaseModel):
    model_config = _STRICT
    n: int

    @model_validator(mode="before")
    @classmethod
    def _early(cls, data: Any) -> Any:
        return data


class _Lax(BaseModel):
    model_config = ConfigDict(frozen=True)
    n: int


def _model(annotation: Any) -> type[BaseModel]:
    """A one-field model ``Toy.f`` of ``annotation``."""
    return type(
        "Toy", (BaseModel,), {"__annotations__": {"f": annotation}, "model_config": _STRICT}
    )


#: (declaration, what the error must name).
_UNTRANSLATABLE: list[tuple[Any, str]] = [
    (Annotated[int, _ODD], "Toy.f: no msgspec counterpart for MultipleOf"),
    (
        Annotated[str, Field(coerce_numbers_to_str=True)],
        "Toy.f: no msgspec counterpart for ['coerce",
    ),
    (Annotated[AwareDatetime, _ODD], "Toy.f: no msgspec counterpart for MultipleOf"),
    (Annotated[Substance, _ODD], "Toy.f: no msgspec counterpart for MultipleOf"),
    (Annotated[_Inner, _ODD], "Toy.f: no msgspec counterpart for MultipleOf"),
    (Annotated[tuple[int, ...], _ODD], "Toy.f: no msgspec counterpart for MultipleOf"),
    (Annotated[dict[str, int], _ODD], "Toy.f: no msgspec counterpart for MultipleOf"),
    (tuple[Annotated[int, _ODD], ...], "Toy.f: no msgspec counterpart for MultipleOf"),
    (dict[str, Annotated[int, _ODD]], "Toy.f: no msgspec counterpart for MultipleOf"),
    (dict[Annotated[str, _ODD], int], "Toy.f: no msgspec counterpart for MultipleOf"),
    (Annotated[int, _ODD] | None, "Toy.f: no msgspec counterpart for MultipleOf"),
    (Annotated[int | None, Field(ge=0)], "Toy.f: constraints on a union"),
    (int | str, "Toy.f: only optional (X | None) unions"),
    (int | str | None, "Toy.f: only optional (X | None) unions"),
    (tuple[int, int], "Toy.f: only tuple[X, ...] is translated"),
    (tuple[AwareDatetime, ...], "Toy.f: tuple items needing conversion"),
    (tuple[_Inner, ...], "Toy.f: tuple items needing conversion"),
    (dict[str, _Inner], "Toy.f: dict entries needing conversion"),
    (dict[str, AwareDatetime], "Toy.f: dict entries needing conversion"),
    (dict[AwareDatetime, int], "Toy.f: dict entries needing conversion"),
    (list[int], "Toy.f: no msgspec counterpart for list[int]"),
    (tuple[list[int], ...], "Toy.f: no msgspec counterpart for list[int]"),
    (bytes, "Toy.f: no msgspec counterpart for <class 'bytes'>"),
]


@pytest.mark.parametrize(
    ("annotation", "named"), _UNTRANSLATABLE, ids=[f"case{i}" for i in range(len(_UNTRANSLATABLE))]
)
def test_an_untranslatable_field_fails_naming_the_model_and_field(
    annotation: Any, named: str
) -> None:
    with pytest.raises(TypeError) as raised:
        fast_decode._Translator().struct(_model(annotation))
    assert str(raised.value).startswith(named)


@pytest.mark.parametrize(
    ("model", "named"),
    [
        (_Validated, "_Validated: validators ['_even']"),
        (_Before, "_Before: validators ['_early']"),
        (_Lax, "_Lax: validators [] or extra fields"),
    ],
    ids=["field_validator", "before_validator", "extra_allowed"],
)
def test_a_model_with_validators_or_extra_fields_fails_naming_it(
    model: type[BaseModel], named: str
) -> None:
    with pytest.raises(TypeError) as raised:
        fast_decode._Translator().struct(model)
    assert str(raised.value).startswith(named)


def test_a_nested_model_s_field_is_named_by_the_nested_model() -> None:
    class Bad(BaseModel):
        model_config = _STRICT
        n: Annotated[int, _ODD]

    with pytest.raises(TypeError, match=r"^Bad\.n: "):
        fast_decode._Translator().struct(_model(Bad | None))


class _Everything(BaseModel):
    """Every declaration the translation knows, each with a bound it must keep."""

    model_config = _STRICT
    count: Annotated[int, Field(ge=1, le=3, strict=True)]
    ratio: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
    strict_flag: Annotated[bool, Strict()]
    finite: Annotated[float, AllowInfNan(False), Field(le=1)] = 0.5
    #: strictness in pydantic's general metadata, as older declarations spell it
    general: Annotated[float, pydantic_general_metadata(allow_inf_nan=False, strict=True)] = 0.5
    code: Annotated[str, Field(min_length=2, max_length=3, pattern=r"^[a-z]+$")]
    dollar: Annotated[str, Field(pattern=r"^a\$")] = "a$"
    at: AwareDatetime
    maybe_at: AwareDatetime | None = None
    substance: Substance
    tags: Annotated[tuple[Annotated[str, at.MaxLen(2)], ...], Field(max_length=2)] = ()
    items: Annotated[dict[Substance, Annotated[int, Field(ge=0)]], Field(min_length=1)]
    inner: _Inner = _Inner()
    stamped: _Stamped = _Stamped()
    maybe_inner: _Inner | None = None
    ident: uuid.UUID | None = None

    @model_validator(mode="after")
    def _not_both(self) -> _Everything:
        if self.maybe_inner is not None and self.ident is not None:
            raise ValueError("maybe_inner or ident")
        return self


_GOOD: dict[str, Any] = {
    "count": 2,
    "ratio": 0.5,
    "strict_flag": True,
    "code": "ab",
    "at": "2026-11-27T10:00:00+01:00",
    "substance": "heroin",
    "items": {"heroin": 1},
}
_CHANGES: list[dict[str, Any]] = [
    {},
    {"count": 1},
    {"count": 3},
    {"count": 0},
    {"count": 4},
    {"ratio": 0.0},
    {"ratio": 1.0},
    {"ratio": 0.999},
    {"strict_flag": 1},
    {"finite": 1.5},
    {"finite": 1.0},
    {"general": 2},
    {"code": "a"},
    {"code": "abcd"},
    {"code": "abc"},
    {"code": "ab\n"},
    {"code": "AB"},
    {"dollar": "a"},
    {"dollar": "a$x"},
    {"at": "2026-11-27T10:00:00"},
    {"at": "2026-11-27T10:00:00Z"},
    {"maybe_at": "2026-11-27T11:00:00+00:00"},
    {"maybe_at": "x"},
    {"substance": "HEROIN"},
    {"substance": "cocaine"},
    {"tags": ["ab", "c"]},
    {"tags": ["ab", "c", "d"]},
    {"tags": ["abc"]},
    {"items": {}},
    {"items": {"heroin": -1}},
    {"items": {"nope": 1}},
    {"items": {"heroin": 0, "cocaine": 2}},
    {"inner": {"n": 20}},
    {"inner": {"n": 21}},
    {"inner": {"m": 1}},
    {"stamped": {"at": "2026-11-27T11:00:00+01:00", "substance": "cocaine"}},
    {"maybe_inner": {}},
    {"maybe_inner": {"n": 3}, "ident": str(uuid.UUID(int=1))},
    {"ident": str(uuid.UUID(int=1))},
    {"extra": 1},
]


@pytest.mark.parametrize("change", _CHANGES, ids=[f"change{i}" for i in range(len(_CHANGES))])
def test_every_known_declaration_decodes_as_pydantic_does(change: dict[str, Any]) -> None:
    translator = fast_decode._Translator()
    struct = translator.struct(_Everything)
    finish = translator.finishers[struct]
    raw = msgspec.json.encode(_GOOD | change)
    try:
        expected: Any = typed_values(_Everything.model_validate_json(raw))
    except PydanticError:
        expected = "invalid"
    try:
        fast: Any = typed_values(finish(msgspec.json.decode(raw, type=struct)))
    except (msgspec.ValidationError, ValueError):
        fast = "invalid"
    assert fast == expected


def test_a_nested_default_is_the_model_s_default_and_is_shared_by_the_structs() -> None:
    translator = fast_decode._Translator()
    struct = translator.struct(_Everything)
    value = translator.finishers[struct](
        msgspec.json.decode(msgspec.json.encode(_GOOD), type=struct)
    )
    inner, stamped = translator.struct(_Inner), translator.struct(_Stamped)
    assert value.inner == inner(n=0) and type(value.inner) is inner
    assert value.stamped == stamped(at=_Stamped().at, substance=Substance.HEROIN)
    assert type(value.stamped.at) is datetime
    assert value.at == datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert inner is msgspec.structs.fields(struct)[-4].type
    assert all(s.__struct_config__.frozen for s in translator.structs.values())


def test_a_model_instance_becomes_the_struct_of_its_values() -> None:
    translator = fast_decode._Translator()
    model = _Everything.model_validate(_GOOD | {"maybe_inner": {"n": 3}, "tags": ["a"]})
    value = translator.struct_of(model)
    assert type(value.maybe_inner) is translator.struct(_Inner)
    assert type(value) is translator.struct(_Everything)
    assert typed_values(value) == typed_values(model)
    assert translator.struct_of(3) == 3  # not a model: as it is


def test_only_payloads_with_a_datetime_or_a_model_validator_are_finished() -> None:
    """Speed: a Struct that needs nothing more is handed on as msgspec decoded it (a nested
    one needing nothing does not make its parent need finishing)."""
    fresh = fast_decode.FastDecoder()
    finished = {t for t, (_, finish) in fresh._decoders.items() if finish is not None}
    assert finished == {
        "dk.dcr.sharps.returned",  # count or weight
        "dk.dcr.street_needles.collected",  # count or weight
        "dk.dcr.alert.raised",  # window_start, window_end
        "dk.dcr.alert.resolved",  # last_seen
        "dk.dcr.alert.withdrawn",  # since
    }


def test_a_struct_needing_nothing_more_is_not_finished() -> None:
    translator = fast_decode._Translator()
    assert not translator.finishers[translator.struct(_Inner)].needed()
    assert translator.finishers[translator.struct(_Stamped)].needed()  # a datetime field
    assert translator.finishers[translator.struct(_Everything)].needed()  # a model validator


def test_the_decoder_names_the_struct_of_every_model_it_translated() -> None:
    incident_type = "dk.dcr.incident.reported"
    fresh = fast_decode.FastDecoder()
    incident = fresh.structs[incident_type]
    nested = next(f.type for f in msgspec.structs.fields(incident) if f.name == "interventions")
    assert fresh.struct_for(Interventions) is nested
    assert fast_decode.struct_for(Interventions) is not nested  # each decoder its own Structs
    assert fast_decode.struct_for(IncidentReported) is fast_decode.STRUCTS[incident_type]


@pytest.mark.parametrize(
    ("regex", "translated"),
    [("^a$", r"^a\Z"), (r"^[a-z]{2}$", r"^[a-z]{2}\Z"), (r"^a\$", r"^a\$"), ("^a", "^a")],
    ids=["dollar", "class_dollar", "escaped_dollar", "no_dollar"],
)
def test_a_pattern_s_final_dollar_becomes_the_very_end(regex: str, translated: str) -> None:
    assert fast_decode._pattern(regex) == translated


# --- event_id -------------------------------------------------------------------------------

_ID = str(uuid.UUID(int=0xABCDEF0123456789))


class _Spy:
    """Counts the calls of a callable it stands in for."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.real(*args)

    def decode(self, *args: Any) -> Any:
        return self(*args)


def test_a_canonical_id_is_kept_as_it_is_without_uuid_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    slow = _Spy(uuid.UUID)
    monkeypatch.setattr(fast_decode, "UUID", slow)
    got = fast_decode.event_id(_ID)
    assert got == _ID == str(uuid.UUID(_ID))
    assert slow.calls == 0


@pytest.mark.parametrize(
    "text",
    [
        _ID.upper(),
        uuid.UUID(_ID).hex,
        uuid.UUID(_ID).hex.upper(),
        _ID[:8].upper() + _ID[8:],  # one group in capitals
        "\\u0030" + _ID[1:],  # a JSON escape spelling a valid id: uuid.UUID refuses it
        _ID[:-1] + '"',
        "{" + _ID + "}",
        "urn:uuid:" + _ID,
        _ID + "\n",  # a final newline: no "$" that would let it through
        " " + _ID,
        _ID[:-1],
        _ID + "0",
        _ID.replace("-", "_"),
        "x",
        "",
    ],
    ids=[
        "upper",
        "hex",
        "hex_upper",
        "one_group_upper",
        "escape",
        "quote",
        "braces",
        "urn",
        "newline",
        "space",
        "short",
        "long",
        "underscores",
        "x",
        "empty",
    ],
)
def test_any_other_spelling_gets_uuid_uuid_s_verdict_written_canonically(text: str) -> None:
    """The contract parses ``ce_id`` with ``uuid.UUID``: the hot path accepts what it accepts,
    as the same UUID's canonical text, and refuses what it refuses (ValueError)."""
    try:
        expected: Any = str(uuid.UUID(text))
    except ValueError:
        expected = ValueError
    try:
        got: Any = fast_decode.event_id(text)
    except ValueError:
        got = ValueError
    assert got == expected


def test_events_and_payloads_are_not_tracked_by_the_garbage_collector() -> None:
    """They hold values only (no container of a Struct: tuples and dicts of models are refused
    above), so no cycle can go through them; untracked, the collector skips them."""
    translator = fast_decode._Translator()
    struct = translator.struct(_Everything)
    value = translator.finishers[struct](
        msgspec.json.decode(msgspec.json.encode(_GOOD), type=struct)
    )
    assert all(not s.__struct_config__.gc for s in translator.structs.values())
    assert not gc.is_tracked(value) and not gc.is_tracked(value.inner)
    event = fast_decode.Event(
        id=uuid.UUID(int=1), type="t", source="/facilities/a", time=_Stamped().at, data=value
    )
    assert not gc.is_tracked(event)
