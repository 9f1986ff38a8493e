"""Operators agree and read installment plans through the API, against the real dev server."""

from __future__ import annotations

from datetime import date, timedelta

from tests.api.test_cases_api import eventually, open_case, payment, problem_where, state_of


async def plan_of(api, case_id: str) -> dict | None:
    response = await api.get(f"/api/cases/{case_id}/plan")
    return response.json() if response.status_code == 200 else None


async def test_an_operator_agrees_a_plan_and_reads_it_back(api):
    case_id = await open_case(api, "F-PLAN-1")
    assert (await api.get(f"/api/cases/{case_id}/plan")).status_code == 404
    response = await api.post(f"/api/cases/{case_id}/plan", json={"term_count": 3, "plan_id": "ops-1", "by": "anna"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert [term["amount_cents"] for term in body["terms"]] == [8_167, 8_167, 8_166]  # € 245,00 to the cent
    plan = await eventually(lambda: plan_of(api, case_id))
    assert (plan["plan_id"], plan["status"], plan["source"], plan["case_status"]) == ("ops-1", "active", "operator", "in_plan")
    assert [term["amount_cents"] for term in plan["terms"]] == [8_167, 8_167, 8_166]

    again = await api.post(f"/api/cases/{case_id}/plan", json={"term_count": 3, "plan_id": "ops-1"})
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")

    assert (await api.post(f"/api/cases/{case_id}/payments", json=payment("P-1", 10_000))).status_code == 202

    async def first_term_paid():
        plan = await plan_of(api, case_id)
        return plan if plan["terms"][0]["status"] == "paid" else None

    plan = await eventually(first_term_paid)
    assert [term["paid_cents"] for term in plan["terms"]] == [8_167, 1_833, 0]
    assert (await api.post(f"/api/cases/{case_id}/payments", json=payment("P-2", 14_500))).status_code == 202

    async def paid():
        state = await state_of(api, case_id)
        return state if state["status"] == "paid" else None

    state = await eventually(paid)
    assert state["plan"]["status"] == "completed"


async def test_plans_the_case_cannot_take_are_refused_saying_where(api):
    case_id = await open_case(api, "F-PLAN-2")
    today = date.today()
    day = lambda n: (today + timedelta(days=n)).isoformat()  # noqa: E731

    response = await api.post(f"/api/cases/{case_id}/plan", json={"term_count": 12})
    assert response.status_code == 422 and problem_where(response) == ["term_count"]
    assert "this case allows 2 to 6" in response.json()["error"]

    response = await api.post(f"/api/cases/{case_id}/plan", json={"terms": [
        {"due_on": day(-1), "amount_cents": 10_000}, {"due_on": day(30), "amount_cents": 10_000}]})
    assert response.status_code == 422
    assert problem_where(response) == ["terms[0].due_on", "terms"]
    assert "add up to 20000 cents; the amount open is 24500" in response.json()["error"]

    response = await api.post(f"/api/cases/{case_id}/plan", json={"term_count": 3, "terms": [
        {"due_on": day(7), "amount_cents": 24_500}]})
    assert response.status_code == 422 and "either `terms` or `term_count`" in response.json()["error"]

    response = await api.post(f"/api/cases/{case_id}/plan", json={"terms": [{"due_on": day(7), "amount_cents": -5}]})
    assert response.status_code == 422 and problem_where(response) == ["terms.0.amount_cents"]
    assert (await api.get(f"/api/cases/{case_id}/plan")).status_code == 404  # nothing was agreed
    assert (await api.post("/api/cases/nope/plan", json={"term_count": 2})).status_code == 404


async def test_explicit_terms_replace_a_running_plan(api):
    case_id = await open_case(api, "F-PLAN-3")
    assert (await api.post(f"/api/cases/{case_id}/plan", json={"term_count": 2, "plan_id": "a"})).status_code == 202
    await eventually(lambda: plan_of(api, case_id))
    today = date.today()
    terms = [{"due_on": (today + timedelta(days=3)).isoformat(), "amount_cents": 4_500},
             {"due_on": (today + timedelta(days=40)).isoformat(), "amount_cents": 20_000}]
    assert (await api.post(f"/api/cases/{case_id}/plan", json={"terms": terms, "plan_id": "b"})).status_code == 202

    async def replaced():
        plan = await plan_of(api, case_id)
        return plan if plan["plan_id"] == "b" else None

    plan = await eventually(replaced)
    assert [(term["due_on"], term["amount_cents"]) for term in plan["terms"]] == [
        (term["due_on"], term["amount_cents"]) for term in terms]

    async def replacement_on_the_timeline():
        events = [event["kind"] for event in (await api.get(f"/api/cases/{case_id}")).json()["events"]]
        return events if "plan_replaced" in events else None

    assert (await eventually(replacement_on_the_timeline)).count("plan_accepted") == 2
