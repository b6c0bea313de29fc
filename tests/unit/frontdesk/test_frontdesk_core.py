"""The front desk's pure parts: sessions, staff passwords, and how a tablet's report becomes an
ingest line (the room comes from the session, never from the tablet)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services.frontdesk.reports import DeskReport, Kind, Refused, check, ingest_line
from services.frontdesk.session import SessionSigner
from services.frontdesk.settings import FrontdeskSettings
from services.frontdesk.staff import StaffDirectory, add, generate
from services.frontdesk.throttle import SignInThrottle
from shared.settings import Environment
from tests.unit.projection.factory import CITY

T0 = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # any instant; nothing here depends on the date
PATTERN = FrontdeskSettings.model_fields["client_code_pattern"].default


def signer(secret: bytes = b"s" * 32) -> SessionSigner:
    return SessionSigner(secret, timedelta(hours=8))


def test_a_session_reads_back_until_it_expires() -> None:
    cookie = signer().issue("halmtorv-anna", "halmtorv", T0)
    session = signer().read(cookie, T0 + timedelta(hours=7, minutes=59))
    assert session is not None
    assert (session.username, session.facility) == ("halmtorv-anna", "halmtorv")
    assert signer().read(cookie, T0 + timedelta(hours=8)) is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c.replace(c[:4], "eyJ1"),  # body changed
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),  # signature changed
        lambda c: c.split(".")[0],  # no signature
        lambda c: "",
        lambda c: "x.y.z",
    ],
)
def test_a_forged_or_damaged_cookie_is_no_session(tamper: object) -> None:
    cookie = signer().issue("halmtorv-anna", "halmtorv", T0)
    forged = tamper(cookie)  # type: ignore[operator]
    if forged != cookie:
        assert signer().read(forged, T0) is None
    assert signer(b"t" * 32).read(cookie, T0) is None  # another server's secret


@pytest.mark.parametrize("env", [None, "prod"])
def test_the_dev_session_secret_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, env: str | None
) -> None:
    """Unset DCR_ENV means prod: the desk fails closed unless dev mode is explicit."""
    monkeypatch.delenv("DCR_FRONTDESK_SESSION_SECRET", raising=False)
    if env is None:
        monkeypatch.delenv("DCR_ENV", raising=False)
    else:
        monkeypatch.setenv("DCR_ENV", env)
    with pytest.raises(ValueError, match="SESSION_SECRET"):
        FrontdeskSettings()
    monkeypatch.setenv("DCR_ENV", "dev")
    assert FrontdeskSettings().env is Environment.DEV  # explicit development mode only
    monkeypatch.setenv("DCR_ENV", "prod")
    monkeypatch.setenv("DCR_FRONTDESK_SESSION_SECRET", "x" * 40)
    assert FrontdeskSettings().session_secret.get_secret_value() == "x" * 40


def test_staff_passwords_are_stored_as_scrypt_hashes_and_verified(tmp_path: Path) -> None:
    path = tmp_path / "staff.yaml"
    add(path, "halmtorv-anna", "halmtorv", "a long passphrase")
    assert "a long passphrase" not in path.read_text()
    staff = StaffDirectory.from_file(path)
    member = staff.verify("halmtorv-anna", "a long passphrase")
    assert member is not None and member.facility == "halmtorv"
    assert staff.verify("halmtorv-anna", "a long passphrase!") is None
    assert staff.verify("nobody", "a long passphrase") is None
    add(path, "halmtorv-anna", "halmtorv", "new one")  # reset replaces, does not duplicate
    os.utime(path, ns=(1, 1))  # a distinct modification time, whatever the file system's clock
    assert staff.verify("halmtorv-anna", "new one") is not None  # re-read, no restart
    assert len(yaml.safe_load(path.read_text())["staff"]) == 1


def test_generated_dev_accounts_sign_in_with_their_clear_passwords(tmp_path: Path) -> None:
    generate(CITY, tmp_path / "staff.yaml", tmp_path / "dev-staff.yaml")
    clear = yaml.safe_load((tmp_path / "dev-staff.yaml").read_text())
    assert (tmp_path / "dev-staff.yaml").stat().st_mode & 0o077 == 0
    staff = StaffDirectory.from_file(tmp_path / "staff.yaml")
    assert staff.verify("halmtorv-staff", clear["halmtorv-staff"]) is not None


def report(desk_kind: Kind, **fields: object) -> DeskReport:
    return DeskReport(kind=desk_kind, key="k" * 16, occurred_at=T0, fields=fields)


def test_the_room_and_time_come_from_the_desk_not_the_tablet() -> None:
    line = ingest_line(report(Kind.INCIDENT, kind="seizure"), "halmtorv", "visit1")
    assert line == {
        "route": "/incidents",
        "idempotency_key": "k" * 16,
        "body": {
            "kind": "seizure",
            "facility_id": "halmtorv",
            "occurred_at": T0.isoformat(),
            "visit_id": "visit1",
        },
    }
    with pytest.raises(Refused) as refused:
        check(report(Kind.SHARPS, count=3, facility_id="nordvest"), 12, PATTERN)
    assert refused.value.result()["body"][0]["loc"] == ["fields", "facility_id"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"client_code": "ht-0042", "booth": 1}, "client_code"),
        ({"client_code": "HT-42", "booth": 1}, "client_code"),
        ({"booth": 1}, "client_code"),
        ({"client_code": "HT-0042", "booth": 13}, "booth"),
        ({"client_code": "HT-0042", "booth": 0}, "booth"),
    ],
)
def test_a_check_in_needs_the_rooms_code_format_and_one_of_its_booths(
    fields: dict[str, object], field: str
) -> None:
    with pytest.raises(Refused) as refused:
        check(report(Kind.CHECKIN, **fields), 12, PATTERN)
    assert refused.value.field == field
    check(report(Kind.CHECKIN, client_code="HT-0042", booth=12), 12, PATTERN)


def test_a_check_out_names_its_check_in() -> None:
    with pytest.raises(Refused):
        check(report(Kind.CHECKOUT), 12, PATTERN)


def test_sign_in_is_throttled_per_username_after_repeated_failures() -> None:
    throttle = SignInThrottle(limit=3, window=timedelta(minutes=5))
    for n in range(3):
        assert throttle.retry_after("anna", T0 + timedelta(seconds=n)) is None
        throttle.failed("anna", T0 + timedelta(seconds=n))
    assert throttle.retry_after("anna", T0 + timedelta(seconds=3)) == 298
    assert throttle.retry_after("bo", T0 + timedelta(seconds=3)) is None  # others unaffected
    assert throttle.retry_after("anna", T0 + timedelta(minutes=5)) is None  # oldest left
    throttle.failed("anna", T0 + timedelta(minutes=5))
    assert throttle.retry_after("anna", T0 + timedelta(minutes=5)) == 2
    throttle.succeeded("anna")
    assert throttle.retry_after("anna", T0 + timedelta(minutes=5)) is None
