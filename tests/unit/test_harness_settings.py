"""A test's settings objects become a child process's environment in one place
(:func:`harness.isolation.settings_variables`): the variables name exactly what the test set,
and a child reading them builds the same settings; a TestEnv configures its in-process apps
and its children alike."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr

from harness.isolation import settings_variables
from services.incident.settings import AlertSettings, NotifySettings
from shared.settings import REPO_ROOT
from tests.support import RunSettings, TestEnv

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


#: What a child process builds from its environment: the settings the session's values set.
_CHILD_READS = """
import json
from services.incident.settings import NotifySettings
from shared.bootstrap import Platform
from shared.settings import SecuritySettings
security, notify, platform = SecuritySettings(), NotifySettings(), Platform()
print(json.dumps({
    "env": security.env.value,
    "secret": security.secret_bytes().decode(),
    "notify_env": notify.env.value,
    "notify_enabled": notify.enabled,
    "tokens_file": str(platform.auth.tokens_file),
    "bootstrap": platform.kafka.bootstrap_servers,
    "topic_prefix": platform.kafka.topic_prefix,
    "dsn": platform.dsn,
}))
"""


def test_a_test_env_gives_children_and_in_process_apps_the_same_settings(
    tmp_path: Path,
) -> None:
    """The run's settings are values (tests/conftest.py puts nothing in ``os.environ``): an app
    built in-process from a TestEnv and a child started with ``TestEnv.env()`` are configured
    alike, and building either leaves ``os.environ`` as it was."""
    before = dict(os.environ)
    run = RunSettings(tmp_path / "tokens.yaml", SecretStr(secrets.token_hex(32)))
    env = TestEnv("127.0.0.1:19092", "t-abc.", "postgresql://u@127.0.0.1:5432/dcr_t", {}, run)

    incident = env.incident()
    assert incident.ingest is not None
    in_process = {
        "env": incident.ingest.security.env.value,
        "secret": incident.ingest.security.secret_bytes().decode(),
        "notify_env": incident.notify.env.value,
        "notify_enabled": incident.notify.enabled,
        "tokens_file": str(incident.platform.auth.tokens_file),
        "bootstrap": incident.platform.kafka.bootstrap_servers,
        "topic_prefix": incident.platform.kafka.topic_prefix,
        "dsn": incident.platform.dsn,
    }
    assert in_process == {
        "env": "test",
        "secret": run.pseudonym_secret.get_secret_value(),
        "notify_env": "test",
        "notify_enabled": False,
        "tokens_file": str(run.tokens_file),
        "bootstrap": "127.0.0.1:19092",
        "topic_prefix": "t-abc.",
        "dsn": "postgresql://u@127.0.0.1:5432/dcr_t",
    }
    assert env.projection().platform == incident.platform == env.ingest().platform

    child = subprocess.run(
        [sys.executable, "-c", _CHILD_READS],
        cwd=REPO_ROOT,
        env=env.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(child.stdout) == in_process
    assert dict(os.environ) == before
