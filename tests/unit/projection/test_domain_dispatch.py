"""The projection compares payload types exactly (``type(data) is X``: the hot path avoids
``isinstance`` through pydantic's ABC metaclass). That equals ``isinstance`` only while no
payload model of the catalogue has a subclass: a subclass would fall through every rule."""

from __future__ import annotations

import gc

from pydantic import BaseModel

from shared.events.catalogue import CATALOGUE


def _subclasses(cls: type[BaseModel]) -> list[type[BaseModel]]:
    return list(cls.__subclasses__())


def test_every_catalogue_payload_model_is_a_leaf_class() -> None:
    with_subclasses = {
        spec.type: [s.__name__ for s in _subclasses(spec.model)]
        for spec in CATALOGUE.values()
        if _subclasses(spec.model)
    }
    assert with_subclasses == {}


def test_the_check_sees_a_subclass() -> None:
    model = next(iter(CATALOGUE.values())).model

    class Derived(model):  # type: ignore[valid-type, misc]
        pass

    try:
        assert _subclasses(model) == [Derived]
    finally:  # gone again for any test that runs later in this process
        del Derived
        gc.collect()
    assert _subclasses(model) == []
