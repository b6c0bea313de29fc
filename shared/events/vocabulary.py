"""Closed vocabularies used by the event payloads. Values are stable wire strings."""

from enum import StrEnum


class Substance(StrEnum):
    HEROIN = "heroin"
    COCAINE = "cocaine"
    CRACK = "crack"
    AMPHETAMINE = "amphetamine"
    METHADONE = "methadone"
    MORPHINE = "morphine"
    FENTANYL = "fentanyl"
    BENZODIAZEPINES = "benzodiazepines"
    OTHER = "other"
    UNKNOWN = "unknown"


class Route(StrEnum):
    INJECT = "inject"
    SMOKE = "smoke"
    SNORT = "snort"
    ORAL = "oral"


class RefusalReason(StrEnum):
    CAPACITY = "capacity"
    CLOSED = "closed"
    INTOXICATED = "intoxicated"
    BEHAVIOUR = "behaviour"
    OTHER = "other"


class VoidReason(StrEnum):
    """Why a facility retracts one of its own reports (``dk.dcr.report.voided``)."""

    MISTAKEN = "mistaken"  # it did not happen
    DUPLICATE = "duplicate"  # reported twice (under two event ids)
    WRONG_DETAILS = "wrong_details"  # amended: the corrected report is sent as a new event
    OTHER = "other"


class ReferralKind(StrEnum):
    ADDICTION_TREATMENT = "addiction_treatment"
    OPIOID_SUBSTITUTION = "opioid_substitution"
    HOUSING = "housing"
    MEDICAL_CARE = "medical_care"
    MENTAL_HEALTH = "mental_health"
    SOCIAL_SERVICES = "social_services"
    OTHER = "other"


class OnSiteService(StrEnum):
    WOUND_CARE = "wound_care"
    INFECTION_TESTING = "infection_testing"
    COUNSELLING = "counselling"
    DRUG_CHECKING = "drug_checking"
    OTHER = "other"


class SupplyItem(StrEnum):
    SYRINGES = "syringes"
    NEEDLES = "needles"
    SWABS = "swabs"
    FILTERS = "filters"
    COOKERS = "cookers"
    WATER = "water"
    FOIL = "foil"
    PIPES = "pipes"
    NALOXONE_KITS = "naloxone_kits"
    CONDOMS = "condoms"


class IncidentKind(StrEnum):
    OPIOID_OVERDOSE = "opioid_overdose"
    STIMULANT_OVERAMPING = "stimulant_overamping"
    WRONG_DRUG_OR_ADULTERANT = "wrong_drug_or_adulterant"
    SEIZURE = "seizure"
    OTHER_MEDICAL = "other_medical"
    VIOLENCE = "violence"
    OTHER = "other"


#: Incident kinds counted as overdoses (drug alerts and the overdose figures use these).
OVERDOSE_KINDS = frozenset({IncidentKind.OPIOID_OVERDOSE, IncidentKind.STIMULANT_OVERAMPING})


class Severity(StrEnum):
    LOW = "low"
    MODERATE = "moderate"
    SEVERE = "severe"
    CRITICAL = "critical"


class Outcome(StrEnum):
    RECOVERED_ON_SITE = "recovered_on_site"
    TRANSFERRED_TO_HOSPITAL = "transferred_to_hospital"
    LEFT = "left"
    DIED = "died"


class AlertReason(StrEnum):
    OVERDOSE_CLUSTER = "overdose_cluster"
    ADULTERANT_FOUND = "adulterant_found"
