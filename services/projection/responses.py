"""The internal read API's answers (port 8004), typed: OpenAPI documents every field.

Times are ISO 8601 with their UTC offset (``2026-11-27T10:00:00+00:00``), days ``YYYY-MM-DD``.
The day figures are built from :mod:`.schema` (one field per shown ``district_daily`` column)
and the breakdowns of :mod:`.figures`, so a new column appears here without a second list.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, create_model

from services.projection import schema
from services.projection.figures import BREAKDOWNS
from services.projection.runner import Freshness

#: A time as the API always wrote it: ``datetime.isoformat()`` (offset ``+00:00``, never ``Z``).
IsoTime = Annotated[datetime, PlainSerializer(lambda t: t.isoformat(), return_type=str)]


class _Answer(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class Fresh(_Answer):
    """How current the read models are (every figure answer carries it)."""

    data_complete_until: IsoTime | None = Field(
        description="Every event the platform received before this instant is included "
        "(now when nothing waits); null when Kafka cannot be asked",
        examples=["2026-11-27T10:00:00.120000+00:00"],
    )
    lag_events: int | None = Field(
        description="Records in the event topics not applied yet; null when Kafka cannot be asked",
        examples=[0],
    )
    last_applied_record_time: IsoTime | None = Field(
        description="Kafka time of the newest record applied", examples=[None]
    )

    @staticmethod
    def of(f: Freshness) -> dict[str, Any]:
        """The freshness fields, to merge into an answer."""
        return {
            "data_complete_until": f.data_complete_until,
            "lag_events": f.lag_events,
            "last_applied_record_time": f.last_applied_record_time,
        }


class Facility(_Answer):
    id: str = Field(description="Facility id (deploy/city.yaml)", examples=["halmtorv"])
    name: str = Field(description="Display name", examples=["H17 Halmtorvet"])
    status: str = Field(description="open, planned or closed", examples=["open"])
    booths: int = Field(description="Consumption booths", examples=[12])


class District(_Answer):
    id: str = Field(description="District id", examples=["vesterbro"])
    name: str = Field(description="Display name", examples=["Vesterbro"])
    facilities: list[Facility] = Field(description="The district's rooms")


class Directory(_Answer):
    districts: list[District] = Field(description="Every district of the city")


def _figure_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {
        "day": (date, Field(description="Calendar day in the city's time zone")),
    }
    for c in schema.DISTRICT_DAILY:
        if not c.shown:
            continue
        kind = int if c.unit is schema.Unit.COUNT else float
        typ: Any = kind | None if c.unit is schema.Unit.MINUTES else kind
        fields[c.name] = (typ, Field(description=c.description, examples=[c.example]))
    for name, (dimension, vocabulary) in BREAKDOWNS.items():
        keys = ", ".join(k.value for k in vocabulary)
        fields[name] = (
            dict[str, int],
            Field(
                description=f"Counts by {dimension}: every key present, zeros included ({keys})",
                examples=[{k.value: 0 for k in vocabulary}],
            ),
        )
    return fields


if TYPE_CHECKING:

    class DayFigures(_Answer):
        """One day's figures (the fields are those of :mod:`.schema`)."""

else:
    DayFigures = create_model(
        "DayFigures",
        __base__=_Answer,
        __doc__="One day's figures of a district or the city",
        **_figure_fields(),
    )


class DistrictDays(Fresh):
    district: str = Field(description="District id", examples=["vesterbro"])
    from_: date = Field(alias="from", description="First day")
    to: date = Field(description="Last day")
    days: list[DayFigures] = Field(description="One entry per day of the range, oldest first")


class CityDays(Fresh):
    from_: date = Field(alias="from", description="First day")
    to: date = Field(description="Last day")
    days: list[DayFigures] = Field(
        description="The districts summed per day (unique_clients and the median: city-wide)"
    )


class FacilityLive(Fresh):
    facility: str = Field(description="Facility id", examples=["halmtorv"])
    name: str = Field(description="Display name", examples=["H17 Halmtorvet"])
    district: str = Field(description="Its district", examples=["vesterbro"])
    status: str = Field(description="open, planned or closed", examples=["open"])
    booths_total: int = Field(description="Consumption booths", examples=[12])
    booths_in_use: int = Field(description="Visits started and not ended (recent)", examples=[5])
    booths_free: int = Field(description="Booths minus those in use, never below 0", examples=[7])
    open_now: bool = Field(description="Inside its opening hours now", examples=[True])
    visits_today: int = Field(description="Visits started today", examples=[41])
    refusals_today: int = Field(description="Clients turned away today", examples=[3])
    last_event_time: IsoTime | None = Field(
        description="Time of the room's newest event (null: none yet)"
    )


class StockItem(_Answer):
    item: str = Field(description="Supply item", examples=["naloxone"])
    on_hand: int = Field(description="Latest count plus movements after it", examples=[14])
    counted_at: IsoTime | None = Field(description="Time of the latest count (null: never)")
    average_daily_use_7d: float = Field(
        description="Dispensed per day over the last 7 days", examples=[2.43]
    )
    days_of_cover: float | None = Field(
        description="on_hand / average daily use (null: nothing used)", examples=[5.8]
    )


class FacilityStock(Fresh):
    facility: str = Field(description="Facility id", examples=["halmtorv"])
    items: list[StockItem] = Field(description="Every item counted or moved, by name")


class Alert(_Answer):
    alert_id: str = Field(description="Alert id")
    district: str = Field(description="District", examples=["vesterbro"])
    raised_at: IsoTime = Field(description="When the evaluator raised it")
    reason: str = Field(description="overdose_cluster or adulterant", examples=["adulterant"])
    substance: str | None = Field(description="The adulterant found (adulterant alerts)")
    facility_id: str | None = Field(description="Room of the drug check (adulterant alerts)")
    overdoses_in_window: int | None = Field(description="Overdoses in the window (clusters)")
    window_start: IsoTime | None = Field(description="Start of the cluster's window")
    window_end: IsoTime | None = Field(description="End of the cluster's window")
    state: str = Field(description="open, acknowledged or resolved", examples=["open"])
    late: bool = Field(description="Raised from events that arrived late")
    acknowledged_at: IsoTime | None = Field(description="When on-call acknowledged it")
    seconds_to_acknowledge: float | None = Field(description="Raised -> acknowledged, seconds")
    resolved_at: IsoTime | None = Field(description="When it was resolved")


class Alerts(Fresh):
    alerts: list[Alert] = Field(description="Newest first, at most 'limit'")


# --- per-room and period figures (period_api) ---------------------------------------------------

#: A cell of a room or period table: an amount (whole numbers as integers, weights in kg).
Amount = int | float
Cells = dict[str, Amount]
_CELLS = (
    "Every cell of the table (services.projection.schema.ROOM_TABLE): the measures "
    + ", ".join(m.name for m in schema.ROOM_TABLE)
    + "; a keyed measure also has a cell '<measure>.<key>' per key, the measure being their total"
)


class PeriodTotals(Fresh):
    scope: str = Field(description="city, district:<id> or room:<id>", examples=["city"])
    period: str = Field(description="week, month, quarter, year, since-opening or custom")
    label: str = Field(description="Human label of the period", examples=["November 2026"])
    from_: date = Field(alias="from", description="First day")
    to: date = Field(description="Last day")
    days: int = Field(description="Days in the period", examples=[30])
    figures: Cells = Field(description=_CELLS + "; people are distinct over the whole period")


class RoomDay(BaseModel):
    """One day of a room: ``day`` and every cell of the room table."""

    model_config = ConfigDict(extra="allow")

    day: date = Field(description="Calendar day in the city's time zone")
    __pydantic_extra__: dict[str, Amount] = Field(init=False)


class RoomDays(Fresh):
    facility: str = Field(description="Facility id", examples=["halmtorv"])
    district: str = Field(description="Its district", examples=["vesterbro"])
    from_: date = Field(alias="from", description="First day")
    to: date = Field(description="Last day")
    days: list[RoomDay] = Field(description="One entry per day, oldest first; " + _CELLS)


class StreetCollection(_Answer):
    day: date = Field(description="Calendar day of the collections")
    district: str = Field(description="District", examples=["nordvest"])
    area: str = Field(description="Area within the district", examples=["utterslev"])
    reports: int = Field(description="Collection reports", examples=[3])
    needles: int = Field(description="Needles collected", examples=[57])
    kg: float = Field(description="Weight collected (kg)", examples=[0.4])


class StreetCollections(Fresh):
    from_: date = Field(alias="from", description="First day")
    to: date = Field(description="Last day")
    collections: list[StreetCollection] = Field(description="Per day, district and area")


# --- the public API (port 8005) -----------------------------------------------------------------

#: A published cell: a number, null when hidden; a breakdown maps each key to such a cell.
PublicCell = int | float | None
PublicTable = dict[str, PublicCell | dict[str, PublicCell] | list[str]]


class PublicLatest(_Answer):
    day: date | None = Field(description="Most recent released day (null: none yet)")
    week: date | None = Field(description="Monday of the most recent released ISO week")
    month: date | None = Field(description="First day of the most recent released month")


class PublicRelease(_Answer):
    period: str = Field(description="day, week or month", examples=["week"])
    from_: date = Field(alias="from", description="First day")
    to: date = Field(description="Last day")
    released_at: IsoTime = Field(description="When the figures were decided (then frozen)")
    suppression_threshold: int = Field(description="Person counts below it are hidden")
    withheld: bool = Field(
        description="True when no safe table existed: every table is null (docs/public-figures.md)"
    )
    tables: dict[str, PublicTable | None] = Field(
        description="'city' and each district id: the figures with hidden cells as null and a "
        "'suppressed' list naming them; a week or month has no unique_clients nor median"
    )
