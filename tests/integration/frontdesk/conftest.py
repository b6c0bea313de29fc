"""The front desk in a real Chromium against the real platform.

``platform``: intake, supply, incident, projection and the front desk as uvicorn processes on a
fresh database and topic prefix (shared Kafka and PostgreSQL), one staff account per facility.
``browser``: a factory of headless Chromium sessions (Debian's chromium + chromedriver, each
with a fresh profile), quit at the end. Screenshots go to tests/artifacts/frontdesk/ (gitignored).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService

from harness.process import (
    FRONTDESK_APP,
    INCIDENT_APP,
    INTAKE_APP,
    PROJECTION_APP,
    SUPPLY_APP,
    ServiceProcess,
)
from services.frontdesk.staff import add as add_staff
from shared.city import load_city
from shared.settings import REPO_ROOT, CitySettings
from tests.support import TestEnv, isolated_env

ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "frontdesk"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "correct horse battery staple"


@dataclass
class Platform:
    env: TestEnv
    procs: dict[str, ServiceProcess]

    @property
    def desk(self) -> str:
        return self.procs["frontdesk"].url


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.fail(f"{missing} missing: run deploy/scripts/browser.sh install (make test does)")


@pytest.fixture(scope="module")
async def platform(
    test_env: TestEnv, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    _require_browser()
    logs = tmp_path_factory.mktemp("frontdesk")
    staff_file = logs / "staff.yaml"
    for f in load_city(CitySettings().file).facilities:
        add_staff(staff_file, f"{f.id}-staff", f.id, PASSWORD)
    tokens_file = logs / "ingest-tokens.yaml"
    tokens_file.write_text(yaml.safe_dump(test_env.tokens))
    async with isolated_env(test_env, label="fdesk", drop_topics=True) as env:
        procs = {
            name: ServiceProcess(logs, name, app, base=env.env())
            for name, app in {
                "intake": INTAKE_APP,
                "supply": SUPPLY_APP,
                "incident": INCIDENT_APP,
                "projection": PROJECTION_APP,
            }.items()
        }
        procs["frontdesk"] = ServiceProcess(
            logs,
            "frontdesk",
            FRONTDESK_APP,
            base=env.env(),
            env={
                "DCR_FRONTDESK_STAFF_FILE": str(staff_file),
                "DCR_FRONTDESK_INGEST_TOKENS_FILE": str(tokens_file),
                "DCR_FRONTDESK_INTAKE_URL": procs["intake"].url,
                "DCR_FRONTDESK_SUPPLY_URL": procs["supply"].url,
                "DCR_FRONTDESK_INCIDENT_URL": procs["incident"].url,
                "DCR_FRONTDESK_READ_API_URL": procs["projection"].url,
                "DCR_FRONTDESK_BOOTH_WARNING_MINUTES": "20",
            },
        )
        try:
            for p in procs.values():
                p.start()
            await asyncio.gather(*(p.wait_healthy(timeout=90) for p in procs.values()))
            yield Platform(env, procs)
        finally:
            for p in procs.values():
                p.terminate()


Browser = Callable[[], webdriver.Chrome]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """``browser()`` opens one more tablet (a fresh Chromium profile)."""
    drivers: list[webdriver.Chrome] = []

    def open_one() -> webdriver.Chrome:
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,1000",
            f"--user-data-dir={tmp_path / f'profile-{len(drivers)}'}",
        ):
            opts.add_argument(arg)
        driver = webdriver.Chrome(options=opts, service=ChromeService(CHROMEDRIVER))
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield open_one
    for d in drivers:
        d.quit()


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
