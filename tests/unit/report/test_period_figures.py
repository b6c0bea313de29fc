"""Period tables of rooms, districts and the city, and the public release of them."""

from __future__ import annotations

from decimal import Decimal

from services.projection.period_figures import hidden_cells, scope_tables
from tests.unit.projection.factory import CITY


def _rooms() -> dict[str, dict[str, Decimal]]:
    return {
        "halmtorv": {
            "visits": Decimal(900),
            "people": Decimal(120),
            "referrals.housing": Decimal(3),  # small: hidden in public
            "referrals.addiction_treatment": Decimal(20),
            "referrals.medical_care": Decimal(11),
            "supplies_dispensed.needles": Decimal(2),  # things: never hidden
            "deaths": Decimal(0),
        },
        "maendenes-hjem": {
            "visits": Decimal(400),
            "people": Decimal(80),
            "referrals.housing": Decimal(9),
            "referrals.addiction_treatment": Decimal(6),
        },
    }


def test_districts_and_city_add_up_exactly() -> None:
    t = scope_tables(CITY, _rooms())
    assert t["district:vesterbro"]["people"] == 200  # pseudonyms are per room: exact sum
    assert t["district:vesterbro"]["referrals"] == 49  # keyed total = sum of its keys
    assert t["city"]["visits"] == 1300
    assert t["room:amager"]["visits"] == 0


def test_public_release_hides_small_counts_and_their_complements() -> None:
    t = scope_tables(CITY, _rooms())
    hidden = hidden_cells(CITY, t, threshold=5)
    assert ("room:halmtorv", "referrals.housing") in hidden
    # else referrals - (the other kinds) would give it back
    assert sum(1 for c in hidden if c[0] == "room:halmtorv" and c[1].startswith("referrals")) >= 2  # type: ignore[index]
    # else vesterbro's housing - maendenes-hjem's housing would give it back
    assert ("room:maendenes-hjem", "referrals.housing") in hidden or (
        "district:vesterbro",
        "referrals.housing",
    ) in hidden
    assert ("room:halmtorv", "supplies_dispensed.needles") not in hidden
    assert ("room:halmtorv", "visits") not in hidden
    assert ("room:halmtorv", "deaths") not in hidden  # zero is shown


def test_no_hidden_cell_is_the_only_unknown_of_a_relation() -> None:
    t = scope_tables(CITY, _rooms())
    hidden = hidden_cells(CITY, t, threshold=5)
    vesterbro_rooms = ["room:halmtorv", "room:maendenes-hjem"]
    for name in ("referrals.housing", "visits", "people"):
        cells = [("district:vesterbro", name), *((r, name) for r in vesterbro_rooms)]
        assert sum(c in hidden for c in cells) != 1
