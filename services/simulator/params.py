"""Parameters of the facility model, with realistic defaults for Copenhagen's rooms.

Every field can be overridden from a YAML file (``--params``) and from the command line
(``--set dotted.name=value`` for any field, plus a few dedicated flags). Rates are per visit
unless named otherwise; times of day are local (the city's time zone).

Invariants (checked at load): probabilities are in [0, 1]; ranges are ordered (min <= max);
hospital transfers are a subset of ambulance calls (``hospital_share <= ambulance_share``); the
intraday curve has 24 non-negative weights that are not all zero; every route has a substance mix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.city import Weekday
from shared.events.vocabulary import (
    OnSiteService,
    ReferralKind,
    Route,
    Substance,
    SupplyItem,
)

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
HourOfDay = Annotated[float, Field(ge=0.0, lt=24.0)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubstanceChoice(_Model):
    """One possible answer to "what are you using today", with its relative weight."""

    substances: Annotated[tuple[Substance, ...], Field(min_length=1, max_length=10)]
    weight: Positive


class SupplyBundle(_Model):
    """Items handed out together with ``probability``; each quantity uniform in [lo, hi]."""

    probability: Share
    items: Annotated[dict[SupplyItem, tuple[int, int]], Field(min_length=1)]

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        for item, (lo, hi) in self.items.items():
            if not 1 <= lo <= hi <= 10_000:
                raise ValueError(f"{item}: need 1 <= lo <= hi <= 10000, got [{lo}, {hi}]")
        return self


_INJECT_KIT = {
    SupplyItem.SYRINGES: (1, 1),
    SupplyItem.NEEDLES: (1, 2),
    SupplyItem.SWABS: (2, 2),
    SupplyItem.FILTERS: (1, 1),
    SupplyItem.COOKERS: (1, 1),
    SupplyItem.WATER: (1, 1),
}


def _default_in_booth() -> dict[Route, tuple[SupplyBundle, ...]]:
    return {
        Route.INJECT: (SupplyBundle(probability=1.0, items=_INJECT_KIT),),
        Route.SMOKE: (
            SupplyBundle(probability=0.7, items={SupplyItem.FOIL: (2, 5)}),
            SupplyBundle(probability=0.3, items={SupplyItem.PIPES: (1, 1)}),
        ),
    }


def _default_take_away() -> dict[Route, tuple[SupplyBundle, ...]]:
    return {
        Route.INJECT: (
            SupplyBundle(
                probability=0.25,
                items={
                    SupplyItem.NEEDLES: (5, 20),
                    SupplyItem.SYRINGES: (5, 20),
                    SupplyItem.SWABS: (10, 20),
                    SupplyItem.WATER: (5, 10),
                },
            ),
        ),
        Route.SMOKE: (SupplyBundle(probability=0.15, items={SupplyItem.FOIL: (5, 10)}),),
    }


def _default_extra_take_away() -> tuple[SupplyBundle, ...]:
    return (
        SupplyBundle(probability=0.01, items={SupplyItem.NALOXONE_KITS: (1, 1)}),
        SupplyBundle(probability=0.03, items={SupplyItem.CONDOMS: (2, 5)}),
    )


def _default_substance_mix() -> dict[Route, tuple[SubstanceChoice, ...]]:
    s = Substance
    return {
        Route.INJECT: (
            SubstanceChoice(substances=(s.HEROIN,), weight=0.42),
            SubstanceChoice(substances=(s.COCAINE,), weight=0.30),
            SubstanceChoice(substances=(s.HEROIN, s.COCAINE), weight=0.18),
            SubstanceChoice(substances=(s.AMPHETAMINE,), weight=0.04),
            SubstanceChoice(substances=(s.METHADONE,), weight=0.03),
            SubstanceChoice(substances=(s.MORPHINE,), weight=0.03),
        ),
        Route.SMOKE: (
            SubstanceChoice(substances=(s.CRACK,), weight=0.55),
            SubstanceChoice(substances=(s.HEROIN,), weight=0.25),
            SubstanceChoice(substances=(s.COCAINE,), weight=0.10),
            SubstanceChoice(substances=(s.HEROIN, s.CRACK), weight=0.10),
        ),
        Route.SNORT: (
            SubstanceChoice(substances=(s.COCAINE,), weight=0.7),
            SubstanceChoice(substances=(s.AMPHETAMINE,), weight=0.3),
        ),
        Route.ORAL: (
            SubstanceChoice(substances=(s.METHADONE,), weight=0.5),
            SubstanceChoice(substances=(s.BENZODIAZEPINES,), weight=0.5),
        ),
    }


#: Relative arrival intensity per local hour 0..23: quiet at night, peaks late afternoon.
DEFAULT_HOURLY_WEIGHTS: tuple[float, ...] = (
    0.25, 0.20, 0.15, 0.12, 0.12, 0.20, 0.40, 0.70, 0.90, 1.00, 1.10, 1.20,
    1.30, 1.40, 1.50, 1.60, 1.60, 1.50, 1.40, 1.30, 1.10, 0.90, 0.60, 0.40,
)  # fmt: skip


class SimParams(_Model):
    """Everything the facility model draws from. Defaults describe a realistic city."""

    # --- volume -------------------------------------------------------------------------------
    visits_per_booth_per_day: Positive = Field(
        default=20.0, description="Base expected arrivals per booth and day (before multipliers)."
    )
    visits_per_day: dict[str, Positive] = Field(
        default={}, description="Per-facility base arrivals per day, instead of booths x rate."
    )
    visits_per_day_min: NonNegative = Field(
        default=100.0, description="Lower clamp of a day's expected arrivals (after multipliers)."
    )
    visits_per_day_max: Positive = Field(
        default=400.0, description="Upper clamp of a day's expected arrivals (after multipliers)."
    )
    booths: dict[str, Annotated[int, Field(ge=1, le=200)]] = Field(
        default={}, description="Per-facility booth count, instead of city.yaml's."
    )
    hourly_weights: tuple[NonNegative, ...] = Field(
        default=DEFAULT_HOURLY_WEIGHTS, description="Intraday arrival curve (24 local hours)."
    )
    day_noise_sigma: NonNegative = Field(
        default=0.1, description="Sigma of the lognormal day-to-day factor on expected arrivals."
    )
    weekend_multiplier: Positive = 1.0
    payday_multiplier: Positive = Field(
        default=1.3,
        description="Arrival multiplier from the last banking day (Mon-Fri; public holidays "
        "ignored) of a month through day `payday_surge_through_day` of the next month.",
    )
    payday_surge_through_day: Annotated[int, Field(ge=0, le=10)] = 2

    # --- the visit ----------------------------------------------------------------------------
    visit_median_min: Positive = 25.0
    visit_sigma: NonNegative = Field(default=0.5, description="Lognormal sigma of visit length.")
    visit_min_min: Positive = 5.0
    visit_max_min: Positive = 120.0
    last_admission_min: NonNegative = Field(
        default=15.0, description="No admissions this close to closing (refused: closed)."
    )
    queue_per_booth: NonNegative = Field(
        default=1.0, description="Queue capacity per booth; arrivals beyond it are refused."
    )
    queue_patience_min: NonNegative = Field(
        default=20.0, description="Clients wait this long for a booth, then leave (refused)."
    )
    refusal_intoxicated_share: Share = 0.01
    refusal_behaviour_share: Share = 0.005
    first_visit_share: Share = 0.02
    client_population_factor: Positive = Field(
        default=1.5, description="Known clients per facility, times its base daily arrivals."
    )
    route_weights: dict[Route, NonNegative] = {
        Route.INJECT: 0.55,
        Route.SMOKE: 0.40,
        Route.SNORT: 0.03,
        Route.ORAL: 0.02,
    }
    substance_mix: dict[Route, tuple[SubstanceChoice, ...]] = Field(
        default_factory=_default_substance_mix
    )
    assisted_injection_share: Share = 0.03

    # --- incidents ----------------------------------------------------------------------------
    overdoses_per_1000: Annotated[float, Field(ge=0.0, le=1000.0)] = Field(
        default=8.0, description="Overdoses per 1,000 visits (observed range about 1-27)."
    )
    opioid_overdose_share: Share = Field(
        default=0.85,
        description="Share of overdoses that are opioid overdoses when the visit involves both "
        "an opioid and a stimulant (otherwise the substances decide).",
    )
    naloxone_share: Share = Field(
        default=0.28, description="Opioid overdoses treated with naloxone (~1/4 of overdoses)."
    )
    life_threatening_share: Share = 0.05
    ambulance_share: Share = 0.04
    hospital_share: Share = Field(default=0.02, description="Subset of the ambulance calls.")
    left_share: Share = Field(default=0.05, description="Left against advice after treatment.")
    death_share: Share = Field(default=0.0, description="Of life-threatening overdoses.")
    other_incidents_per_1000: NonNegative = Field(
        default=2.0, description="Seizures, other medical incidents, violence per 1,000 visits."
    )

    # --- referrals, on-site services, drug checks ----------------------------------------------
    referrals_per_100: Annotated[float, Field(ge=0.0, le=100.0)] = 2.5
    referral_weights: dict[ReferralKind, NonNegative] = {
        ReferralKind.ADDICTION_TREATMENT: 0.30,
        ReferralKind.OPIOID_SUBSTITUTION: 0.15,
        ReferralKind.HOUSING: 0.15,
        ReferralKind.MEDICAL_CARE: 0.20,
        ReferralKind.MENTAL_HEALTH: 0.08,
        ReferralKind.SOCIAL_SERVICES: 0.10,
        ReferralKind.OTHER: 0.02,
    }
    service_shares: dict[OnSiteService, Share] = Field(
        default={
            OnSiteService.WOUND_CARE: 0.04,
            OnSiteService.INFECTION_TESTING: 0.01,
            OnSiteService.COUNSELLING: 0.03,
            OnSiteService.OTHER: 0.01,
        },
        description="Per-visit probability of each on-site service (drug checking comes from "
        "drug_check_share).",
    )
    drug_check_share: Share = 0.02
    adulterant_share: Share = Field(default=0.05, description="Drug checks finding an adulterant.")
    adulterant_weights: dict[Substance, NonNegative] = {
        Substance.FENTANYL: 0.6,
        Substance.BENZODIAZEPINES: 0.3,
        Substance.OTHER: 0.1,
    }

    # --- supplies and stock -------------------------------------------------------------------
    in_booth_supplies: dict[Route, tuple[SupplyBundle, ...]] = Field(
        default_factory=_default_in_booth
    )
    take_away_supplies: dict[Route, tuple[SupplyBundle, ...]] = Field(
        default_factory=_default_take_away
    )
    extra_take_away: tuple[SupplyBundle, ...] = Field(default_factory=_default_extra_take_away)
    sharps_return_share: Share = Field(
        default=0.6, description="Share of take-away needles that come back as returned sharps."
    )
    sharps_every_h: Annotated[int, Field(ge=1, le=24)] = Field(
        default=4, description="Sharps bins are emptied every N local hours and at closing."
    )
    sharps_grams: Positive = 3.0
    stock_par_per_visit: dict[SupplyItem, NonNegative] = Field(
        default={
            SupplyItem.SYRINGES: 12,
            SupplyItem.NEEDLES: 15,
            SupplyItem.SWABS: 20,
            SupplyItem.FILTERS: 6,
            SupplyItem.COOKERS: 6,
            SupplyItem.WATER: 10,
            SupplyItem.FOIL: 15,
            SupplyItem.PIPES: 3,
            SupplyItem.NALOXONE_KITS: 0.2,
            SupplyItem.CONDOMS: 1,
        },
        description="Par stock per item, times the facility's base daily arrivals (max 10000).",
    )
    reorder_fraction: Share = Field(
        default=0.6, description="An item is re-delivered up to par when below this share."
    )
    delivery_weekdays: tuple[Weekday, ...] = ("mon", "wed", "fri")
    delivery_hour: HourOfDay = 10.0
    stock_count_hour: HourOfDay = 8.0

    # --- street needle sweeps (sanitation teams, per district) ---------------------------------
    street_sweeps_per_day: Annotated[int, Field(ge=0, le=24)] = 1
    street_sweep_hour: HourOfDay = 6.0
    street_needles_mean: dict[str, NonNegative] = Field(
        default={"vesterbro": 60.0, "nordvest": 15.0, "sydhavn": 10.0, "amager": 12.0},
        description="Mean needles found per district and day.",
    )
    street_needles_default_mean: NonNegative = 10.0
    street_areas: dict[str, tuple[str, ...]] = {
        "vesterbro": ("Istedgade", "Halmtorvet", "Skelbækgade", "Sønder Boulevard", "Enghave Park"),
        "nordvest": ("Rentemestervej", "Nordvestparken", "Bispebjerg station"),
        "sydhavn": ("Mozarts Plads", "Sydhavn station", "Karens Minde"),
        "amager": ("Amagerbrogade", "Amager Fælled", "Sundby station"),
    }

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(self.hourly_weights) != 24 or not any(self.hourly_weights):
            raise ValueError("hourly_weights needs 24 non-negative weights, not all zero")
        if self.visits_per_day_min > self.visits_per_day_max:
            raise ValueError("visits_per_day_min > visits_per_day_max")
        if self.visit_min_min > self.visit_max_min:
            raise ValueError("visit_min_min > visit_max_min")
        if self.hospital_share > self.ambulance_share:
            raise ValueError("hospital_share must not exceed ambulance_share")
        if not any(self.route_weights.values()):
            raise ValueError("route_weights are all zero")
        for route, weight in self.route_weights.items():
            if weight > 0 and not self.substance_mix.get(route):
                raise ValueError(f"substance_mix has no entry for route {route}")
        return self


def load_params(path: Path | None, overrides: dict[str, Any] | None = None) -> SimParams:
    """Defaults, then the YAML file at ``path`` (a mapping of fields), then ``overrides``.

    ``overrides`` maps dotted names (``street_needles_mean.vesterbro``) to values; a dotted name
    sets one key inside a mapping field. Raises ``ValueError`` on unknown fields or bad values.
    """
    data: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of parameter names to values")
        data = loaded
    for dotted, value in (overrides or {}).items():
        head, *rest = dotted.split(".")
        if head not in SimParams.model_fields:
            raise ValueError(f"unknown parameter {head!r}")
        if not rest:
            data[head] = value
            continue
        field_default = getattr(SimParams(), head)
        node = data.setdefault(head, _plain(field_default))
        if not isinstance(node, dict):
            raise ValueError(f"{head} is not a mapping; cannot set {dotted}")
        for part in rest[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"cannot set {dotted}")
        node[rest[-1]] = value
    return SimParams.model_validate(data)


def _plain(value: Any) -> Any:
    """A field's default as plain YAML-like data (so one key of a mapping can be replaced)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def dump_params(params: SimParams) -> str:
    """The effective parameters as YAML (loadable again with ``--params``)."""
    return yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
