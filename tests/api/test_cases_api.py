"""The HTTP API: opening cases, signals, and a clear 4xx for every kind of bad input."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from dunflow.apikeys import create_key
from dunflow.store import Case, Payment

TODAY = date.today()


def new_case(number: str = "F-2026-001", **invoice) -> dict:
    return {
        "debtor": {"id": "D-42", "name": "Jan de Vries", "email": "jan@example.nl", "phone": "+31 6 1234 5678",
                   "language": "nl", "type": "consumer"},
        "invoice": {"number": number, "amount_cents": 24_500, "currency": "EUR",
                    "issued_on": TODAY.isoformat(), "due_on": (TODAY + timedelta(days=14)).isoformat()} | invoice,
    }


def payment(payment_id: str = "P-1", amount_cents: int = 24_500, currency: str = "EUR") -> dict:
    return {"payment_id": payment_id, "amount_cents": amount_cents, "currency": currency,
            "paid_at": f"{TODAY.isoformat()}T10:00:00+01:00"}


async def eventually(check, seconds: float = 15):
    """Poll `check` (an async callable returning a truthy value when done) for up to `seconds`."""
    for _ in range(int(seconds * 10)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def open_case(api, number: str = "F-2026-001") -> str:
    response = await api.post("/api/cases", json=new_case(number))
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


async def state_of(api, case_id: str) -> dict:
    response = await api.get(f"/api/cases/{case_id}")
    assert response.status_code == 200, response.text
    return response.json()["state"]


def problem_where(response) -> list[str]:
    return [problem["where"] for problem in response.json()["problems"]]


async def test_open_a_case_and_see_the_invoice_sent(api):
    response = await api.post("/api/cases", json=new_case())
    assert response.status_code == 201
    body = response.json()
    assert body["workflow_id"] == f"case-{body['case_id']}"
    assert (body["flow"], body["flow_version"], body["created"]) == ("standard", 1, True)

    async def invoice_sent():
        messages = (await api.get("/api/messages", params={"case_id": body["case_id"]})).json()
        return messages if messages else None

    messages = await eventually(invoice_sent)
    assert [(m["channel"], m["step_id"], m["recipient"]) for m in messages] == [("email", "send_invoice", "jan@example.nl")]
    assert "F-2026-001" in messages[0]["body"]
    case = (await api.get(f"/api/cases/{body['case_id']}")).json()
    assert case["state"]["status"] == "active"
    assert case["debtor"]["phone"] == "+31612345678"


async def test_the_same_invoice_again_returns_the_same_case(api):
    first = await api.post("/api/cases", json=new_case())
    again = await api.post("/api/cases", json=new_case())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["case_id"] == first.json()["case_id"] and again.json()["created"] is False


async def test_the_same_invoice_number_with_other_data_is_a_conflict(api):
    await api.post("/api/cases", json=new_case())
    response = await api.post("/api/cases", json=new_case(amount_cents=99))
    assert response.status_code == 409
    assert "amount_cents is 24500, not 99" in response.json()["error"]


@pytest.mark.parametrize(("change", "where", "says"), [
    ({"amount_cents": 0}, "invoice.amount_cents", "greater than 0"),
    ({"amount_cents": -500}, "invoice.amount_cents", "greater than 0"),
    ({"amount_cents": 245.5}, "invoice.amount_cents", "valid integer"),
    ({"amount_cents": "24500"}, "invoice.amount_cents", "valid integer"),
    ({"currency": "EURO"}, "invoice.currency", "unknown currency"),
    ({"due_on": "31-12-2026"}, "invoice.due_on", "valid date"),
    ({"due_on": (TODAY - timedelta(days=1)).isoformat()}, "invoice", "is before issued_on"),
])
async def test_bad_invoices_are_refused_saying_where(api, change, where, says):
    response = await api.post("/api/cases", json=new_case(**change))
    assert response.status_code == 422
    assert where in problem_where(response)
    assert says in response.json()["error"]


async def test_bad_debtor_and_unknown_flow_are_refused(api):
    body = new_case()
    body["debtor"]["phone"] = "0612345678"
    body["debtor"]["email"] = "not-an-email"
    del body["debtor"]["name"]
    response = await api.post("/api/cases", json=body)
    assert response.status_code == 422
    assert set(problem_where(response)) == {"debtor.phone", "debtor.email", "debtor.name"}
    assert "international format" in response.json()["error"]

    response = await api.post("/api/cases", json=new_case() | {"flow": "harsh"})
    assert response.status_code == 422
    assert problem_where(response) == ["flow"] and "standard" in response.json()["error"]


async def test_nothing_is_written_for_a_refused_case(api):
    await api.post("/api/cases", json=new_case(currency="XXX"))
    with Session(api.app.state.engine) as session:
        assert session.exec(select(Case)).all() == []


async def test_unknown_case_is_404(api):
    for response in (await api.get("/api/cases/nope"), await api.post("/api/cases/nope/payments", json=payment())):
        assert response.status_code == 404
        assert response.json()["error"] == "no case with id nope"


async def test_payment_ends_the_case_and_a_repeat_changes_nothing(api):
    case_id = await open_case(api)
    response = await api.post(f"/api/cases/{case_id}/payments", json=payment())
    assert response.status_code == 202

    async def paid():
        state = await state_of(api, case_id)
        return state if state["status"] == "paid" else None

    state = await eventually(paid)
    assert (state["outcome"], state["amount_open_cents"]) == ("paid", 0)

    repeat = await api.post(f"/api/cases/{case_id}/payments", json=payment())
    assert (repeat.status_code, repeat.json()["status"]) == (200, "duplicate")
    other = await api.post(f"/api/cases/{case_id}/payments", json=payment(amount_cents=100))
    assert other.status_code == 409

    late = await api.post(f"/api/cases/{case_id}/payments", json=payment("P-2", 100))
    assert late.status_code == 409 and "is closed (paid)" in late.json()["error"]
    with Session(api.app.state.engine) as session:
        assert [p.payment_id for p in session.exec(select(Payment))] == ["P-1"]  # nothing half-written


async def test_many_payments_at_once_are_all_taken(api):
    """More requests at once than a connection pool holds: none may wait on another's connection or
    lock while it awaits Temporal, or the event loop, and every request with it, stands still."""
    cases = [await open_case(api, f"F-2026-00{n}") for n in range(1, 4)]
    posts = [api.post(f"/api/cases/{cases[n % 3]}/payments", json=payment(f"P-{n}", amount_cents=100))
             for n in range(45)]
    responses = await asyncio.wait_for(asyncio.gather(*posts), timeout=120)
    assert [(r.status_code, r.json()["status"]) for r in responses] == [(202, "accepted")] * 45
    with Session(api.app.state.engine) as session:
        assert len(session.exec(select(Payment)).all()) == 45

    async def all_applied():
        states = [await state_of(api, case_id) for case_id in cases]
        return all(state["amount_open_cents"] == 24_500 - 15 * 100 for state in states)

    assert await eventually(all_applied)


async def test_payment_in_the_wrong_currency_or_amount_is_refused(api):
    case_id = await open_case(api)
    wrong_currency = await api.post(f"/api/cases/{case_id}/payments", json=payment(currency="USD"))
    assert wrong_currency.status_code == 422 and problem_where(wrong_currency) == ["currency"]
    assert "case" in wrong_currency.json()["error"] and "EUR" in wrong_currency.json()["error"]
    zero = await api.post(f"/api/cases/{case_id}/payments", json=payment(amount_cents=0))
    assert zero.status_code == 422 and problem_where(zero) == ["amount_cents"]
    bad_date = await api.post(f"/api/cases/{case_id}/payments", json=payment() | {"paid_at": "gisteren"})
    assert bad_date.status_code == 422 and problem_where(bad_date) == ["paid_at"]
    with Session(api.app.state.engine) as session:
        assert session.exec(select(Payment)).all() == []


async def test_partial_payment_lowers_the_amount_open(api):
    case_id = await open_case(api)
    assert (await api.post(f"/api/cases/{case_id}/payments", json=payment(amount_cents=4_500))).status_code == 202

    async def lowered():
        state = await state_of(api, case_id)
        return state if state["amount_open_cents"] == 20_000 else None

    state = await eventually(lowered)
    assert state["status"] == "active"


async def test_dispute_and_its_resolution(api):
    case_id = await open_case(api)
    early = await api.post(f"/api/cases/{case_id}/disputes/resolve", json={"outcome": "rejected"})
    assert early.status_code == 409 and "no open dispute" in early.json()["error"]

    assert (await api.post(f"/api/cases/{case_id}/disputes", json={"reason": "niet geleverd"})).status_code == 202

    async def disputed():
        state = await state_of(api, case_id)
        return state if state["status"] == "disputed" else None

    assert (await eventually(disputed))["dispute"] == "niet geleverd"
    bad = await api.post(f"/api/cases/{case_id}/disputes/resolve", json={"outcome": "maybe"})
    assert bad.status_code == 422 and problem_where(bad) == ["outcome"]
    assert (await api.post(f"/api/cases/{case_id}/disputes/resolve", json={"outcome": "upheld"})).status_code == 202

    async def closed():
        state = await state_of(api, case_id)
        return state if state["status"] == "closed" else None

    assert (await eventually(closed))["outcome"] == "dispute_upheld"


async def test_promise_rules(api):
    case_id = await open_case(api)
    past = await api.post(f"/api/cases/{case_id}/promises",
                          json={"promised_on": (TODAY - timedelta(days=1)).isoformat(), "amount_cents": 100})
    assert past.status_code == 422 and problem_where(past) == ["promised_on"]
    too_much = await api.post(f"/api/cases/{case_id}/promises",
                              json={"promised_on": (TODAY + timedelta(days=3)).isoformat(), "amount_cents": 99_999})
    assert too_much.status_code == 422 and problem_where(too_much) == ["amount_cents"]
    ok = await api.post(f"/api/cases/{case_id}/promises",
                        json={"promised_on": (TODAY + timedelta(days=3)).isoformat(), "amount_cents": 24_500})
    assert ok.status_code == 202

    async def promised():
        state = await state_of(api, case_id)
        return state if state["status"] == "promised" else None

    assert (await eventually(promised))["promise"]["amount_cents"] == 24_500


async def test_operator_pause_resume_cancel(api):
    case_id = await open_case(api)
    not_paused = await api.post(f"/api/cases/{case_id}/resume")
    assert not_paused.status_code == 409 and "cannot be resumed" in not_paused.json()["error"]
    assert (await api.post(f"/api/cases/{case_id}/pause", json={"by": "anna", "note": "belt terug"})).status_code == 202

    async def status_is(status):
        async def check():
            state = await state_of(api, case_id)
            return state if state["status"] == status else None
        return await eventually(check)

    await status_is("paused")
    assert (await api.post(f"/api/cases/{case_id}/resume")).status_code == 202
    await status_is("active")
    assert (await api.post(f"/api/cases/{case_id}/cancel")).status_code == 202
    state = await status_is("cancelled")
    assert state["outcome"] == "cancelled"
    after = await api.post(f"/api/cases/{case_id}/pause")
    assert after.status_code == 409 and "closed" in after.json()["error"]


async def test_channel_event_for_a_message_of_another_case_is_refused(api):
    case_id = await open_case(api)
    response = await api.post(f"/api/cases/{case_id}/channel-events", json={"message_id": 999, "kind": "opened"})
    assert response.status_code == 404 and problem_where(response) == ["message_id"]
    no_key = await api.post(f"/api/cases/{case_id}/channel-events", json={"message_id": 1, "kind": "key_pressed"})
    assert no_key.status_code == 422


async def test_outbox_page_lists_messages(api):
    case_id = await open_case(api)

    async def listed():
        page = await api.get("/outbox")
        return page if "send_invoice" in page.text else None

    page = await eventually(listed)
    assert page.status_code == 200 and case_id in page.text and "jan@example.nl" in page.text


async def test_malformed_json_and_a_list_body_are_refused(api):
    broken = await api.post("/api/cases", content=b'{"debtor": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422
    assert problem_where(broken) == ["body"] and "not valid JSON" in broken.json()["error"]
    listed = await api.post("/api/cases", json=[new_case()])
    assert listed.status_code == 422 and problem_where(listed) == ["body"]


async def test_temporal_unreachable_is_a_503_and_writes_nothing(settings):
    import httpx

    from api.app import create_app

    settings.temporal_address = "127.0.0.1:9"  # nothing listens there
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        key = create_key(app.state.engine, "tests", ["cases:write"]).key
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dunflow.test",
                                     headers={"Authorization": f"Bearer {key}"}) as client:
            response = await client.post("/api/cases", json=new_case())
        assert response.status_code == 503 and "Temporal is unreachable" in response.json()["error"]
        with Session(app.state.engine) as session:
            assert session.exec(select(Case)).all() == []
