"""A tablet at a room's desk, driven through the UI as staff use it (page object).

Every wait polls the page with a deadline (WebDriverWait), never a fixed sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.frontdesk.conftest import PASSWORD


class Tablet:
    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        self.d = driver
        self.url = url

    def wait(self, what: Callable[[webdriver.Chrome], Any], timeout: float = 10) -> Any:
        return WebDriverWait(
            self.d, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
        ).until(what)

    def click(self, selector: str) -> None:
        """Click, again if the board re-rendered the element meanwhile."""

        def clicked(_: webdriver.Chrome) -> bool:
            self.css(selector).click()
            return True

        self.wait(clicked)

    def css(self, selector: str) -> Any:
        return self.d.find_element(By.CSS_SELECTOR, selector)

    def sign_in(self, facility: str) -> Tablet:
        self.d.get(self.url)
        self.wait(lambda d: self.css("#login-view").is_displayed())
        self.css("#username").send_keys(f"{facility}-staff")
        self.css("#password").send_keys(PASSWORD, Keys.ENTER)  # the keyboard alone signs in
        self.wait(lambda d: self.css("#app-view").is_displayed())
        self.wait(lambda d: len(self.board()) > 0)
        return self

    def tab(self, name: str) -> None:
        self.css(f'[data-tab="{name}"]').click()
        self.wait(lambda d: not self.css(f"#tab-{name}").get_property("hidden"))

    def board(self) -> dict[int, str | None]:
        """booth -> client code shown (None when free), read in one go from the page."""
        cards = self.d.execute_script(
            """return [...document.querySelectorAll('#board .booth')].map((c) => [
                 Number(c.dataset.booth), c.classList.contains('free') ? null
                 : c.querySelector('.code').textContent])"""
        )
        return {int(b): code for b, code in cards}

    def wait_board(self, expected: dict[int, str | None], timeout: float = 10) -> None:
        self.wait(
            lambda d: all(self.board().get(b) == code for b, code in expected.items()), timeout
        )

    def check_in(
        self,
        code: str,
        booth: int,
        substances: tuple[str, ...] = ("heroin",),
        route: str = "inject",
        first_visit: bool = False,
    ) -> None:
        self.tab("checkin")
        self.css("#client-code").send_keys(code)
        self.css("#client-code-again").send_keys(code)
        self.wait(lambda d: Select(self.css("#booth")).select_by_value(str(booth)) or True)
        for s in substances:
            self.css(f'input[name="substance"][value="{s}"]').click()
        self.css(f'input[name="route"][value="{route}"]').click()
        if first_visit:
            self.css("#first-visit").click()
        self.css("#checkin-submit").click()
        self.wait(lambda d: self.css("#tab-board").is_displayed())
        self.wait_board({booth: code})

    def check_out(self, booth: int) -> None:
        self.tab("board")
        self.click(f'#board .booth[data-booth="{booth}"] button.checkout')
        self.wait_board({booth: None})

    def overdose(self, booth: int, naloxone: int, oxygen: bool = True) -> None:
        self.tab("board")
        self.click(f'#board .booth[data-booth="{booth}"] button.secondary')
        self.wait(lambda d: self.css("#tab-incident").is_displayed())
        Select(self.css("#incident-kind")).select_by_value("opioid_overdose")
        Select(self.css("#severity")).select_by_value("severe")
        self.css("#life-threatening").click()
        for _ in range(naloxone):
            self.css("#naloxone-plus").click()
        if oxygen:
            self.css("#oxygen").click()
        Select(self.css("#outcome")).select_by_value("recovered_on_site")
        Select(self.css("#suspected")).select_by_value("heroin")
        self.css("#incident-submit").click()
        self.wait(lambda d: self.css("#naloxone").text == "0")

    def drug_check(self, expected: str, found: tuple[str, ...]) -> None:
        self.tab("incident")
        Select(self.css("#expected")).select_by_value(expected)
        for substance in found:
            self.css(f'input[name="found"][value="{substance}"]').click()
        self.css("#drugcheck-submit").click()
        self.wait(
            lambda d: not self.d.find_elements(By.CSS_SELECTOR, 'input[name="found"]:checked')
        )

    def refer(self, to: str) -> None:
        self.tab("checkin")
        self.css(f'#referrals button[data-value="{to}"]').click()

    def refuse(self, reason: str) -> None:
        self.tab("checkin")
        self.css(f'#refusals button[data-value="{reason}"]').click()

    def hand_out(self, **items: int) -> None:
        self._items("dispensed", items)

    def delivered(self, **items: int) -> None:
        self._items("delivery", items)

    def counted(self, **items: int) -> None:
        self._items("count", items)

    def _items(self, kind: str, items: dict[str, int]) -> None:
        self.tab("supplies")
        for item, n in items.items():
            field = self.css(f'#items input[data-item="{item}"]')
            field.clear()
            field.send_keys(str(n))
        self.css(f"#{kind}-submit").click()
        self.wait(
            lambda d: all(
                self.css(f'#items input[data-item="{i}"]').get_attribute("value") == ""
                for i in items
            )
        )

    def sharps(self, count: int) -> None:
        self.tab("supplies")
        self.css("#sharps-count").send_keys(str(count))
        self.css("#sharps-submit").click()
        self.wait(lambda d: self.css("#sharps-count").get_attribute("value") == "")

    def waiting(self) -> int:
        return int(self.css("#queue").get_attribute("data-count") or 0)

    def wait_sent(self, timeout: float = 30) -> None:
        self.wait(lambda d: self.waiting() == 0, timeout)
