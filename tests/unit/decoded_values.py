"""A comparable view of decoded values for the fast-decoder tests (parity and translation):
the hot path's Structs and the contract's pydantic models side by side, value by value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from pydantic import BaseModel

from shared.events import fast_decode
from shared.events.envelope import Envelope
from shared.events.views import event_id_text

_ATTRIBUTES = ("id", "type", "source", "time", "data")


def typed_values(value: Any) -> Any:
    """A decoded value of either representation as nested tuples: an event's attributes, a
    payload's fields by name (a Struct as the model it was translated from, ``Fast<Model>``),
    and every value with its type (tells 1 from 1.0, str from enum, and a datetime's offset)."""
    if isinstance(value, Envelope | fast_decode.Event):  # the id as its canonical text: the
        # hot path keeps that text, the contract the UUID (shared.events.fast_decode.event_id)
        attributes = {k: typed_values(getattr(value, k)) for k in _ATTRIBUTES if k != "id"}
        return ("event", {"id": (str, event_id_text(value)), **attributes})
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return (type(value).__name__, {k: typed_values(getattr(value, k)) for k in fields})
    if isinstance(value, msgspec.Struct):
        name = type(value).__name__.removeprefix("Fast")
        return (name, {k: typed_values(getattr(value, k)) for k in value.__struct_fields__})
    if isinstance(value, datetime):
        return (datetime, value, value.utcoffset())
    if isinstance(value, dict):
        return ("dict", [(typed_values(k), typed_values(v)) for k, v in value.items()])
    if isinstance(value, tuple | list):
        return (type(value), [typed_values(v) for v in value])
    return (type(value), value)
