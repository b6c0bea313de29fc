"""``DCR_FRONTDESK_*``: where the front desk finds its staff, the room's ingest credentials and
the platform's APIs.

Invariant: in prod (the default when DCR_ENV is unset) the desk refuses to start with the
development session secret or one shorter than 32 characters (sessions could be forged).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import DEV_SECRET, REPO_ROOT, Environment, refuse_public_signing_secret

AUTH_DIR = REPO_ROOT / ".state" / "auth"


class FrontdeskSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DCR_FRONTDESK_")

    #: Staff accounts (scrypt hashes), written by ``python -m services.frontdesk.staff generate``.
    staff_file: Path = AUTH_DIR / "staff.yaml"
    #: The rooms' clear ingest tokens (``facility: token``), held server-side only.
    ingest_tokens_file: Path = AUTH_DIR / "dev-tokens.yaml"
    intake_url: str = "http://127.0.0.1:8001"
    supply_url: str = "http://127.0.0.1:8002"
    incident_url: str = "http://127.0.0.1:8003"
    #: The projection's read API (figures, stock, alerts); a bearer token once it requires one.
    read_api_url: str = "http://127.0.0.1:8004"
    read_api_token: SecretStr | None = None
    #: Signs session cookies.
    session_secret: SecretStr = SecretStr(DEV_SECRET)
    session_ttl_s: int = Field(default=10 * 3600, ge=60)
    #: Send the cookie over HTTPS only (production behind TLS).
    secure_cookie: bool = False
    #: Minutes in a booth after which the board warns staff to check on the person.
    booth_warning_minutes: int = Field(default=20, ge=1, le=240)
    #: The room's client-code format (regular expression, whole code).
    client_code_pattern: str = r"^[A-Z]{2}-[0-9]{4}$"
    #: Timeout of one call to an ingest API (then the report waits in the tablet's queue).
    ingest_timeout_s: float = Field(default=5.0, gt=0)
    #: Unset means ``prod`` (nothing fails open by default); ``make up`` sets ``dev`` explicitly.
    env: Environment = Field(default=Environment.PROD, validation_alias="DCR_ENV")

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> FrontdeskSettings:
        refuse_public_signing_secret(
            "DCR_FRONTDESK_SESSION_SECRET", self.session_secret.get_secret_value(), self.env
        )
        return self
