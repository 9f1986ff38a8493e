"""No debtor data in clear in Temporal: a case's raw history is encrypted, and the codec endpoint
decodes it for an operator key only."""

from __future__ import annotations

import base64

from google.protobuf import json_format

from dunflow.apikeys import create_key
from tests.api.conftest import app_client, point_at
from tests.api.test_cases_api import eventually, open_case

SECRETS = ("Jan de Vries", "jan@example.nl", "+31 6 1234 5678", "+31612345678")


async def raw_history(api, case_id: str):
    async def invoice_sent():
        return (await api.get("/api/messages", params={"case_id": case_id})).json()

    await eventually(invoice_sent)  # the send activity's input and result are in the history by now
    return await api.app.state.temporal.get_workflow_handle(f"case-{case_id}").fetch_history()


def start_input(history) -> list[dict]:
    started = history.events[0].workflow_execution_started_event_attributes
    return [json_format.MessageToDict(payload) for payload in started.input.payloads]


async def test_the_raw_history_holds_no_debtor_data_in_clear(api):
    case_id = await open_case(api, "F-CODEC-1")
    history = await raw_history(api, case_id)
    raw = b"".join(event.SerializeToString() for event in history.events)
    as_json = history.to_json()
    for secret in SECRETS:
        assert secret.encode() not in raw and secret not in as_json, f"{secret!r} is readable in the history"
    assert len(history.events) > 5
    assert b"binary/encrypted" in raw
    assert b"F-CODEC-1" in raw  # search attributes stay plain: ids, statuses, amounts


async def test_the_codec_endpoint_decodes_for_an_operator_and_refuses_others(api):
    case_id = await open_case(api, "F-CODEC-2")
    payloads = start_input(await raw_history(api, case_id))
    engine = api.app.state.engine
    operator = create_key(engine, "operations", ["operator"]).key
    reader = create_key(engine, "erp", ["read"]).key

    decoded = await api.post("/codec/decode", json={"payloads": payloads},
                             headers={"Authorization": f"Bearer {operator}"})
    assert decoded.status_code == 200, decoded.text
    [case_input] = decoded.json()["payloads"]
    assert base64.b64decode(case_input["metadata"]["encoding"]) == b"json/plain"
    assert "Jan de Vries" in base64.b64decode(case_input["data"]).decode()

    refused = await api.post("/codec/decode", json={"payloads": payloads}, headers={"Authorization": ""})
    assert refused.status_code == 401
    forbidden = await api.post("/codec/decode", json={"payloads": payloads},
                               headers={"Authorization": f"Bearer {reader}"})
    assert forbidden.status_code == 403 and "operator" in forbidden.json()["error"]


async def test_encode_then_decode_round_trips(api):
    plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
             "data": base64.b64encode(b'{"note": "Jan de Vries"}').decode()}
    encoded = await api.post("/codec/encode", json={"payloads": [plain]})
    assert encoded.status_code == 200
    [sealed] = encoded.json()["payloads"]
    assert "Jan" not in base64.b64decode(sealed["data"]).decode(errors="replace")
    decoded = await api.post("/codec/decode", json={"payloads": [sealed]})
    assert decoded.json()["payloads"] == [plain]


async def test_a_payload_that_is_not_temporal_json_gets_a_clear_400(api):
    response = await api.post("/codec/decode", json={"payloads": [{"data": "not base64!"}]})
    assert response.status_code == 400
    assert response.json()["problems"][0]["where"] == "payloads.0"


async def test_the_ui_signs_in_with_a_cookie_and_its_origin_may_call(dev_server, settings):
    point_at(settings, dev_server)
    settings.codec_cors_origins = "http://ui.example:8080"
    async with app_client(settings) as client:
        operator = create_key(client.app.state.engine, "ops", ["operator"]).key
        bad = await client.post("/codec/session", data={"key": "dfk_wrong"})
        assert bad.status_code == 403 and "dunflow_key" not in bad.headers.get("set-cookie", "")
        signed = await client.post("/codec/session", data={"key": operator})
        assert signed.status_code == 200 and "dunflow_key" in signed.headers["set-cookie"]
        assert "HttpOnly" in signed.headers["set-cookie"]
        client.headers.pop("Authorization")
        sealed = (await client.post("/codec/encode", json={"payloads": []}))
        assert sealed.status_code == 200 and sealed.json() == {"payloads": []}  # the cookie was the key

        preflight = await client.options("/codec/decode", headers={
            "Origin": "http://ui.example:8080", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace"})
        assert preflight.headers["access-control-allow-origin"] == "http://ui.example:8080"
        assert preflight.headers["access-control-allow-credentials"] == "true"
        stranger = await client.options("/codec/decode", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in stranger.headers
