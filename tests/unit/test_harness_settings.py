"""A test's settings objects become a child process's environment in one place
(:func:`harness.isolation.settings_variables`): the variables name exactly what the test set,
and a child reading them builds the same settings."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr

from harness.isolation import settings_variables
from services.incident.settings import AlertSettings, NotifySettings

SECRET = "a-webhook-secret-of-32-characters-or-more"


def test_only_what_the_test_set_is_passed_on_under_the_loaders_names() -> None:
    alerts = AlertSettings(retry_s=0.3, quiet_period=timedelta(minutes=15))
    # DCR_ENV given explicitly: the test must not depend on whether the session's environment
    # (tests/conftest.py, when integration tests ran first) sets it
    notify = NotifySettings(
        DCR_ENV="test", enabled=True, smtp_port=2525, webhook_secret=SecretStr(SECRET)
    )
    assert settings_variables(alerts, notify) == {
        "DCR_ALERTS_QUIET_PERIOD": "PT900.000000S",
        "DCR_ALERTS_RETRY_S": "0.3",
        "DCR_ENV": "test",
        "DCR_NOTIFY_ENABLED": "true",
        "DCR_NOTIFY_SMTP_PORT": "2525",
        "DCR_NOTIFY_WEBHOOK_SECRET": SECRET,
    }


def test_a_child_reading_the_variables_builds_the_same_settings() -> None:
    alerts = AlertSettings(retry_s=0.3, quiet_period=timedelta(minutes=15), threshold=4)
    variables = settings_variables(alerts)
    rebuilt = AlertSettings.model_validate(
        {k.removeprefix("DCR_ALERTS_").lower(): v for k, v in variables.items()}
    )
    assert rebuilt == alerts
