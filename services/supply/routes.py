"""Supply's request models and how each becomes an event. The mechanism is in shared.ingest.

Facilities report what they dispensed, the sharps returned to them and their stock (deliveries
and counts); the city's sanitation teams report needles collected in the street, per district.
Quantities are bounded by the payload types (:data:`shared.events.payloads.MAX_COUNT`,
:data:`~shared.events.payloads.MAX_WEIGHT_KG`), so absurd values are refused with 422.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from shared.events import payloads as p
from shared.events.vocabulary import SupplyItem
from shared.ingest.api import (
    DistrictReport,
    FacilityReport,
    IngestContext,
    IngestRoute,
    Scope,
    request_examples,
)


class _CountOrWeight:
    """Mixin: at least one of ``count`` and ``weight_kg`` (both allowed: a weighed bin, counted)."""

    count: p.Count | None
    weight_kg: p.WeightKg | None

    @model_validator(mode="after")
    def _count_or_weight(self) -> Self:
        if self.count is None and self.weight_kg is None:
            raise ValueError("give a count, a weight_kg, or both")
        return self


class SuppliesDispensedRequest(FacilityReport):
    model_config = request_examples(
        {
            "facility_id": "halmtorv",
            "items": {"syringes": 10, "needles": 10, "swabs": 20},
            "secondary_distribution": True,
        }
    )

    items: p.Items = Field(description="Quantity handed out per item (each 1..10000).")
    secondary_distribution: bool = Field(
        default=False, description="Taken to pass on to others who do not come to the room."
    )
    visit_id: p.VisitId | None = None


class SharpsReturnedRequest(_CountOrWeight, FacilityReport):
    model_config = request_examples(
        {"facility_id": "halmtorv", "count": 42}, {"facility_id": "halmtorv", "weight_kg": 1.5}
    )

    count: p.Count | None = Field(default=None, description="Used needles/syringes returned.")
    weight_kg: p.WeightKg | None = Field(default=None, description="Weight of returned sharps.")


class StockDeliveredRequest(FacilityReport):
    model_config = request_examples({"facility_id": "halmtorv", "items": {"syringes": 2000}})

    items: p.Items = Field(description="Quantity delivered per item (each 1..10000).")


class StockCountedRequest(FacilityReport):
    model_config = request_examples(
        {"facility_id": "halmtorv", "items": {"syringes": 850, "foil": 0}}
    )

    items: Annotated[dict[SupplyItem, p.Count], Field(min_length=1)] = Field(
        description="On-hand quantity per item counted; replaces the running figure."
    )


class StreetNeedlesRequest(_CountOrWeight, DistrictReport):
    model_config = request_examples({"district": "vesterbro", "area": "Skelbækgade", "count": 17})

    area: Annotated[str, Field(min_length=1, max_length=120)] = Field(
        description="Street, square or park swept."
    )
    count: p.Count | None = Field(default=None, description="Needles/syringes collected.")
    weight_kg: p.WeightKg | None = Field(default=None, description="Weight collected.")


def supplies_dispensed(r: SuppliesDispensedRequest, ctx: IngestContext) -> p.SuppliesDispensed:
    return p.SuppliesDispensed(
        items=r.items, secondary_distribution=r.secondary_distribution, visit_id=r.visit_id
    )


def sharps_returned(r: SharpsReturnedRequest, ctx: IngestContext) -> p.SharpsReturned:
    return p.SharpsReturned(count=r.count, weight_kg=r.weight_kg)


def stock_delivered(r: StockDeliveredRequest, ctx: IngestContext) -> p.StockDelivered:
    return p.StockDelivered(items=r.items)


def stock_counted(r: StockCountedRequest, ctx: IngestContext) -> p.StockCounted:
    return p.StockCounted(items=r.items)


def street_needles(r: StreetNeedlesRequest, ctx: IngestContext) -> p.StreetNeedlesCollected:
    return p.StreetNeedlesCollected(
        district=r.district, area=r.area, count=r.count, weight_kg=r.weight_kg
    )


ROUTES: tuple[IngestRoute[Any], ...] = (
    IngestRoute(
        "/supplies/dispensed", SuppliesDispensedRequest, supplies_dispensed, "Supplies handed out"
    ),
    IngestRoute(
        "/sharps/returned",
        SharpsReturnedRequest,
        sharps_returned,
        "Used sharps returned to the facility",
    ),
    IngestRoute(
        "/stock/deliveries",
        StockDeliveredRequest,
        stock_delivered,
        "Stock delivered to the facility",
    ),
    IngestRoute("/stock/counts", StockCountedRequest, stock_counted, "Stock counted (inventory)"),
    IngestRoute(
        "/street-needles",
        StreetNeedlesRequest,
        street_needles,
        "Needles collected in the street by a sanitation team",
        scope=Scope.SANITATION,
        description="Sanitation team tokens only; the event's source is the district.",
    ),
)
