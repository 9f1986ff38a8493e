"""The debtor portal in a real headless Chromium: open the link from the invoice email, switch
language, download the invoice PDF, agree a payment date, choose a payment plan and pay its first
instalment, and pay through the test provider."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import date, timedelta

import httpx
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dunflow.apikeys import create_key
from dunflow.store import make_engine
from tests.api.test_cases_api import eventually, new_case
from tests.support.browser import chromium, served_api


@pytest.fixture
def downloads(tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def browser(downloads):
    with chromium(downloads) as driver:
        yield driver


@pytest.fixture
async def portal_api(dev_server, settings):
    settings.day_seconds = 3600  # the case stays where it is while the debtor looks
    async with served_api(settings, dev_server) as base:
        engine = make_engine(settings.effective_database_url)
        key = create_key(engine, "erp", ["cases:write", "read"]).key
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
            yield base, api
        engine.dispose()


async def open_with_link(api: httpx.AsyncClient, number: str) -> tuple[str, str]:
    """A new case, and the tracked portal link from its invoice email."""
    opened = await api.post("/api/cases", json=new_case(number))
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]

    async def link():
        messages = (await api.get("/api/messages", params={"case_id": case_id})).json()
        found = [re.search(r"https?://\S+/p/[A-Za-z0-9_\-.]+", m["body"]) for m in messages]
        return next((match.group(0) for match in found if match), None)

    return case_id, await eventually(link)


def click(driver, by: str, value: str, seconds: float = 15) -> None:
    """Click once the element is there; a page that was still being replaced is tried again."""
    def clicked(d) -> bool:
        try:
            d.find_element(by, value).click()
            return True
        except (StaleElementReferenceException, NoSuchElementException):
            return False

    WebDriverWait(driver, seconds).until(clicked)


def wait_for_text(driver, text: str, seconds: float = 15) -> None:
    WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: text in d.find_element(By.TAG_NAME, "body").text)


async def status_of(api: httpx.AsyncClient, case_id: str) -> str:
    return ((await api.get(f"/api/cases/{case_id}")).json()["state"] or {}).get("status")


async def test_a_debtor_reads_downloads_and_pays_in_the_browser(browser, portal_api, downloads):
    base, api = portal_api
    case_id, link = await open_with_link(api, "F-2026-301")
    browser.get(link.replace(re.match(r"https?://[^/]+", link).group(0), base))
    wait_for_text(browser, "Uw openstaande facturen")
    assert "F-2026-301" in browser.page_source and "€ 245,00" in browser.page_source

    click(browser, By.LINK_TEXT, "English")
    wait_for_text(browser, "Your open invoices")
    click(browser, By.PARTIAL_LINK_TEXT, "Download the invoice")
    for _ in range(100):
        pdfs = list(downloads.glob("*.pdf"))
        if pdfs:
            break
        time.sleep(0.1)
    assert pdfs and pdfs[0].read_bytes().startswith(b"%PDF")

    click(browser, By.XPATH, "//button[starts-with(normalize-space(), 'Pay now')]")
    wait_for_text(browser, "Test payment (no real money)")
    click(browser, By.XPATH, "//button[normalize-space()='Payment succeeded']")
    wait_for_text(browser, "your payment has been received")

    async def paid():
        return await status_of(api, case_id) == "paid"

    assert await eventually(paid)


async def test_a_debtor_agrees_a_payment_date_in_the_browser(browser, portal_api):
    base, api = portal_api
    case_id, link = await open_with_link(api, "F-2026-302")
    browser.get(link.replace(re.match(r"https?://[^/]+", link).group(0), base))
    wait_for_text(browser, "Betaalafspraak")
    field = browser.find_element(By.ID, "promised_on")
    browser.execute_script("arguments[0].value = arguments[1]", field,
                           (date.today() + timedelta(days=10)).isoformat())
    click(browser, By.XPATH, "//button[normalize-space()='Afspraak vastleggen']")
    wait_for_text(browser, "Uw betaalafspraak is vastgelegd")

    async def promised():
        return await status_of(api, case_id) == "promised"

    assert await eventually(promised)


async def test_a_debtor_chooses_a_payment_plan_in_the_browser(browser, portal_api):
    base, api = portal_api
    case_id, link = await open_with_link(api, "F-2026-303")
    browser.get(link.replace(re.match(r"https?://[^/]+", link).group(0), base))
    browser.get(browser.current_url.split("?")[0] + "?lang=en")
    wait_for_text(browser, "Pay in instalments")
    click(browser, By.XPATH, "//label[starts-with(normalize-space(), '3 instalments')]")
    assert browser.find_element(By.CSS_SELECTOR, "input[name='term_count'][value='3']").is_selected()
    click(browser, By.XPATH, "//button[normalize-space()='Choose this plan']")
    wait_for_text(browser, "Your payment plan is agreed")
    wait_for_text(browser, "Your payment plan")

    async def in_plan():
        response = await api.get(f"/api/cases/{case_id}/plan")
        return response.json() if response.status_code == 200 else None

    plan = await eventually(in_plan)
    assert (plan["case_status"], len(plan["terms"]), plan["source"]) == ("in_plan", 3, "portal")
    # the page asks the case for its plan: the browser waits in a thread, so this test's worker can answer
    await asyncio.to_thread(browser.refresh)
    await asyncio.to_thread(wait_for_text, browser, "Instalment")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.plan tr")
    assert len(rows) == 4 and "€81.67" in rows[1].text and "to be paid" in rows[1].text

    await asyncio.to_thread(click, browser, By.XPATH, "//button[normalize-space()='Pay the instalment (€81.67)']")
    await asyncio.to_thread(wait_for_text, browser, "Test payment (no real money)")
    assert "€81.67" in browser.page_source
    await asyncio.to_thread(click, browser, By.XPATH, "//button[normalize-space()='Payment succeeded']")
    await asyncio.to_thread(wait_for_text, browser, "your payment has been received")

    async def first_term_paid():
        plan = await in_plan()
        return plan if plan["terms"][0]["status"] == "paid" else None

    plan = await eventually(first_term_paid)
    assert [term["paid_cents"] for term in plan["terms"]] == [8_167, 0, 0] and plan["case_status"] == "in_plan"
