"""Per-channel opt-outs through the API: set, listed, lifted; bad channels and debtors are named."""

from __future__ import annotations

from tests.api.test_cases_api import new_case


async def test_an_operator_sets_and_lifts_an_opt_out(api_without_worker):
    api = api_without_worker
    assert (await api.post("/api/cases", json=new_case())).status_code == 201

    response = await api.put("/api/debtors/D-42/opt-outs/call", json={"reason": "asked by phone"})
    assert response.status_code == 200
    assert response.json() == {"debtor_id": "D-42", "opt_outs": [{"channel": "call", "reason": "asked by phone"}]}
    assert (await api.get("/api/debtors/D-42/opt-outs")).json()["opt_outs"] == [
        {"channel": "call", "reason": "asked by phone"}]

    response = await api.delete("/api/debtors/D-42/opt-outs/call")
    assert response.json() == {"debtor_id": "D-42", "opt_outs": []}


async def test_unknown_channels_and_debtors_are_refused_with_the_fix(api_without_worker):
    api = api_without_worker
    await api.post("/api/cases", json=new_case())
    response = await api.put("/api/debtors/D-42/opt-outs/fax", json={})
    assert response.status_code == 422
    assert response.json()["problems"] == [
        {"where": "channel", "problem": "unknown channel 'fax': use one of email, sms, call, letter"}]
    response = await api.get("/api/debtors/D-404/opt-outs")
    assert response.status_code == 404
    assert response.json()["problems"][0]["where"] == "debtor_id"
