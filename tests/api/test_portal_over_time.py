"""Portal actions end to end through the real workflows on the time-skipping server: the debtor
acts in the portal, then months pass in seconds and the case does what the flow says.

Each test gets a fresh test server, so its clock starts at today, the date the portal reckons
with (a shared server's clock has run years ahead by the time these run)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from dunflow.codec import data_converter
from dunflow.search_attributes import register_search_attributes
from dunflow.store import OutboundEvent
from tests.api.conftest import app_client
from tests.api.test_cases_api import eventually, open_case, state_of
from tests.api.test_portal import FORM, form_fields, token_for
from tests.conftest import TEST_PAYLOAD_KEYS
from tests.support.binaries import temporal_test_server
from worker import build_activities, build_worker


@pytest.fixture
async def skipping():
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(), data_converter=data_converter(TEST_PAYLOAD_KEYS))
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
async def portal(skipping, settings):
    """The app and a worker on the time-skipping server, flows in real (not compressed) time."""
    settings.temporal_address = skipping.client.service_client.config.target_host
    settings.task_queue = "portal-over-time"
    settings.day_seconds = None
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with build_worker(skipping.client, settings, build_activities(settings), executor):
            async with app_client(settings) as client:
                yield client


async def pay_through_test_provider(api, token: str, page: str, part: str) -> None:
    """Press pay in the portal, then "payment succeeded" on the test provider's page."""
    chosen = await api.post(f"/portal/{token}/pay", data=form_fields(page, f"/portal/{token}/pay") | {"part": part},
                            headers=FORM)
    provider_page = (await api.get(chosen.headers["location"])).text
    success = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', provider_page[:provider_page.index("</form>")]))
    assert success["outcome"] == "paid"
    report = await api.post("/webhooks/testpay", data=success, headers=FORM)
    assert report.status_code == 303 and "done=paid" in report.headers["location"], report.text


async def test_a_plan_chosen_in_the_portal_is_paid_then_broken_as_time_passes(portal, skipping):
    case_id = await open_case(portal, "F-TIME-1")
    token = token_for(portal, case_id)
    page = (await portal.get(f"/portal/{token}")).text
    chosen = await portal.post(f"/portal/{token}/plan", data=form_fields(page, f"/portal/{token}/plan") | {
        "term_count": "3"}, headers=FORM)
    assert chosen.status_code == 303

    async def in_plan():
        state = await state_of(portal, case_id)
        return state if state["status"] == "in_plan" else None

    plan = (await eventually(in_plan))["plan"]
    first_due = date.fromisoformat(plan["terms"][0]["due_on"])
    assert first_due == date.today() + timedelta(days=7)

    async def page_with_the_plan():  # once the case's standing reached the store
        page = (await portal.get(f"/portal/{token}")).text
        return page if "Termijn betalen (€ 81,67)" in page else None

    page = await eventually(page_with_the_plan)
    await pay_through_test_provider(portal, token, page, "term")

    async def term_paid():
        state = await state_of(portal, case_id)
        return state if state["plan"]["terms"][0]["status"] == "paid" else None

    assert (await eventually(term_paid))["amount_open_cents"] == 24_500 - 8_167

    await skipping.sleep(timedelta(days=50))  # term 2 (a month after term 1) goes unpaid

    async def broken():
        state = await state_of(portal, case_id)
        return state if state["plan"]["status"] == "broken" else None

    state = await eventually(broken)
    assert [term["status"] for term in state["plan"]["terms"]] == ["paid", "missed", "open"]
    kinds = [entry["kind"] for entry in state["history"]]
    assert kinds.count("plan_term_reminder") == 1 and kinds.count("plan_term_missed") == 1  # term 1 was paid early
    assert "broken_plan -> final_notice" in [entry["detail"] for entry in state["history"]]  # the flow's route
    with Session(portal.app.state.engine) as session:
        types = [event.type for event in session.exec(select(OutboundEvent).where(OutboundEvent.case_id == case_id))]
    assert types.count("plan.accepted") == 1 and types.count("plan.broken") == 1


async def test_a_promise_from_the_portal_not_kept_takes_the_broken_promise_route(portal, skipping):
    case_id = await open_case(portal, "F-TIME-2")
    token = token_for(portal, case_id)
    page = (await portal.get(f"/portal/{token}")).text
    promised_on = date.today() + timedelta(days=20)
    fields = form_fields(page, f"/portal/{token}/promise") | {"promised_on": promised_on.isoformat()}
    assert (await portal.post(f"/portal/{token}/promise", data=fields, headers=FORM)).status_code == 303

    async def promised():
        state = await state_of(portal, case_id)
        return state if state["status"] == "promised" else None

    await eventually(promised)
    await skipping.sleep(timedelta(days=15))
    assert (await state_of(portal, case_id))["status"] == "promised"  # nothing is sent while it stands
    await skipping.sleep(timedelta(days=8))

    async def broken():
        state = await state_of(portal, case_id)
        return state if "promise_broken" in [entry["kind"] for entry in state["history"]] else None

    state = await eventually(broken)
    assert state["status"] == "active"
    messages = (await portal.get("/api/messages", params={"case_id": case_id})).json()
    assert "reminder_2" in [message["step_id"] for message in messages]  # the standard flow's broken_promise route


async def test_a_dispute_from_the_portal_holds_the_case_for_weeks(portal, skipping):
    case_id = await open_case(portal, "F-TIME-3")
    token = token_for(portal, case_id)
    fields = form_fields((await portal.get(f"/portal/{token}")).text, f"/portal/{token}/dispute")
    sent = await portal.post(f"/portal/{token}/dispute", data=fields | {"reason": "not_received"}, headers=FORM)
    assert sent.status_code == 303

    async def disputed():
        state = await state_of(portal, case_id)
        return state if state["status"] == "disputed" else None

    await eventually(disputed)
    before = len((await portal.get("/api/messages", params={"case_id": case_id})).json())
    await skipping.sleep(timedelta(days=40))
    assert (await state_of(portal, case_id))["status"] == "disputed"
    assert len((await portal.get("/api/messages", params={"case_id": case_id})).json()) == before
