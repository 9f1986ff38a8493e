"""The designer in a real headless Chromium: open the standard flow, insert an SMS step, see the
validation marker come and go, simulate, publish, and start a case that runs the new version."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from dunflow.apikeys import create_key
from dunflow.flow import load_flow_yaml
from dunflow.settings import PROJECT_ROOT
from dunflow.store import make_engine
from tests.api.test_cases_api import eventually, new_case
from tests.support.browser import chromium, served_api

STANDARD = load_flow_yaml((PROJECT_ROOT / "flows" / "standard.yaml").read_text())


@pytest.fixture
def browser():
    assert (PROJECT_ROOT / "designer" / "node_modules" / "bpmn-js" / "dist").is_dir(), \
        "bpmn-js is missing: run `npm ci` in designer/ (scripts/install.sh does)"
    with chromium() as driver:
        yield driver


@pytest.fixture
async def live_api(dev_server, settings):
    """The API served over HTTP (for the browser) with a worker, one flow day lasting 0.3 s."""
    settings.day_seconds = 0.3
    async with served_api(settings, dev_server) as base:
        engine = make_engine(settings.effective_database_url)
        key = create_key(engine, "Petra (designer)", ["designer", "read", "cases:write"]).key
        yield base, key
        engine.dispose()


def wait_for(driver, css: str, seconds: float = 15):
    return WebDriverWait(driver, seconds).until(lambda d: d.find_element(By.CSS_SELECTOR, css))


def element(driver, element_id: str):
    return driver.find_element(By.CSS_SELECTOR, f'.djs-element[data-element-id="{element_id}"]')


def problems(driver) -> list[str]:
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#problems li")]


def marked(driver, element_id: str) -> bool:
    return "dunflow-invalid" in element(driver, element_id).get_attribute("class")


async def test_design_simulate_publish_and_run(browser, live_api):
    base, key = live_api
    browser.get(base + "/designer/")
    wait_for(browser, "#api-key").send_keys(key)
    browser.find_element(By.ID, "load-flows").click()
    wait_for(browser, 'tr[data-flow="standard"] .open-flow').click()
    wait_for(browser, '.djs-element[data-element-id="send_invoice"]')
    for step_id in STANDARD.steps:
        assert element(browser, step_id).is_displayed()

    element(browser, "reminder_1").click()
    Select(wait_for(browser, "#insert-after")).select_by_value("sms")
    new = wait_for(browser, '.djs-element[data-element-id="send_sms_1"]')
    WebDriverWait(browser, 15).until(lambda d: marked(d, "send_sms_1"))
    assert problems(browser) == ["send_sms_1: template sms/ does not exist for language(s) nl, en"]
    assert new.is_displayed()

    template = browser.find_element(By.CSS_SELECTOR, '#properties input[name="template"]')
    template.send_keys("reminder_sms", Keys.TAB)
    WebDriverWait(browser, 15).until(lambda d: not marked(d, "send_sms_1") and d.find_element(
        By.TAG_NAME, "body").get_attribute("data-problems") == "0")
    assert problems(browser) == []

    Select(browser.find_element(By.ID, "scenario")).select_by_value("never_opens")
    browser.find_element(By.ID, "simulate").click()
    rows = WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline .timeline-event"))
    texts = [row.text for row in rows]
    sms_at = next(i for i, text in enumerate(texts) if "sms_sent send_sms_1" in text)
    reminder_at = next(i for i, text in enumerate(texts) if "email_sent reminder_1" in text)
    assert sms_at == reminder_at + 1

    browser.find_element(By.ID, "publish").click()
    WebDriverWait(browser, 15).until(lambda d: "published standard version 2" in d.find_element(By.ID, "status").text)

    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        started = (await client.post("/api/cases", json=new_case("F-DESIGNED-1"))).json()
        assert started["flow_version"] == 2

        async def sent_steps():
            messages = (await client.get(f"/api/cases/{started['case_id']}")).json()["messages"]
            steps = [m["step_id"] for m in messages]
            return steps if "send_sms_1" in steps else None
        steps = await eventually(sent_steps, seconds=30)
        assert steps[steps.index("reminder_1") + 1] == "send_sms_1"
        versions = (await client.get("/api/flows/standard/versions")).json()
        assert versions[-1]["published_by"] == "Petra (designer)"
        assert "send_sms_1" in versions[-1]["diff"]


async def test_a_new_flow_is_started_in_the_designer(browser, live_api):
    base, key = live_api
    browser.get(base + "/designer/")
    wait_for(browser, "#api-key").send_keys(key)
    browser.find_element(By.ID, "load-flows").click()
    wait_for(browser, 'tr[data-flow="standard"]')
    browser.find_element(By.ID, "new-flow").click()
    prompt = WebDriverWait(browser, 10).until(lambda d: d.switch_to.alert)
    prompt.send_keys("business_strict")
    prompt.accept()
    wait_for(browser, '.djs-element[data-element-id="closed"]')
    assert "opened business_strict" in browser.find_element(By.ID, "status").text

    element(browser, "Start").click()
    Select(wait_for(browser, "#insert-after")).select_by_value("email")
    wait_for(browser, '.djs-element[data-element-id="send_email_1"]')
    browser.find_element(By.CSS_SELECTOR, '#properties input[name="template"]').send_keys("invoice", Keys.TAB)
    WebDriverWait(browser, 15).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-problems") == "0")
    browser.find_element(By.ID, "publish").click()
    WebDriverWait(browser, 15).until(lambda d: "published business_strict version 1" in d.find_element(By.ID, "status").text)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        exported = (await client.get("/api/flows/business_strict/versions/1")).text
    flow = load_flow_yaml(exported)
    assert flow.start == "send_email_1"
    assert (flow.steps["send_email_1"].channel, flow.steps["send_email_1"].template, flow.steps["send_email_1"].next) == (
        "email", "invoice", "closed")


def open_standard_flow(browser, live_api, shown: str) -> None:
    """The shipped `standard` flow open in the designer (once `shown` is drawn), without problems:
    everything in it (the 14-day notice, costs, contact rules) came through bpmn-js intact."""
    base, key = live_api
    browser.get(base + "/designer/")
    wait_for(browser, "#api-key").send_keys(key)
    browser.find_element(By.ID, "load-flows").click()
    wait_for(browser, 'tr[data-flow="standard"] .open-flow').click()
    wait_for(browser, f'.djs-element[data-element-id="{shown}"]')
    WebDriverWait(browser, 15).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-problems") == "0")


async def test_contact_hours_in_the_designer(browser, live_api):
    open_standard_flow(browser, live_api, "charge_costs")

    hours = Select(wait_for(browser, '#properties select[name^="contact hours"]'))
    assert hours.first_selected_option.text == "on"  # the standard flow keeps texts and calls to daytime
    hours.select_by_value("off")
    WebDriverWait(browser, 15).until(lambda d: marked(d, "sms_invoice") and marked(d, "robo_call"))
    assert "sms_invoice: a sms with no contact hours" in " ".join(problems(browser))
    Select(wait_for(browser, '#properties select[name^="contact hours"]')).select_by_value("on")
    WebDriverWait(browser, 15).until(lambda d: not marked(d, "sms_invoice") and d.find_element(
        By.TAG_NAME, "body").get_attribute("data-problems") == "0")


async def test_a_flow_out_of_a_send_marked_on_failure(browser, live_api):
    open_standard_flow(browser, live_api, "sms_reminder_2")

    element(browser, "Flow_sms_reminder_2_wait_robo_call").click()
    on_failure = '#properties select[name^="taken when the message cannot go out"]'
    Select(wait_for(browser, on_failure)).select_by_value("yes")
    # its only flow is now the fallback: the server reads the marker and misses the step's `next`
    WebDriverWait(browser, 15).until(lambda d: marked(d, "sms_reminder_2"))
    assert any(problem.startswith("sms_reminder_2:") for problem in problems(browser)), problems(browser)
    Select(wait_for(browser, on_failure)).select_by_value("no")
    WebDriverWait(browser, 15).until(lambda d: not marked(d, "sms_reminder_2") and d.find_element(
        By.TAG_NAME, "body").get_attribute("data-problems") == "0")
