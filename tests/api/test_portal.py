"""The debtor portal through the app and the real workflow: signed links, the page, the tracked
link in a message, and each action (promise, dispute, pay through the local test provider)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlmodel import Session, select

from dunflow.portal import make_token, portal_secret
from dunflow.store import ChannelEventRecord, Payment, PendingSignal, utcnow
from tests.api.test_cases_api import eventually, new_case, open_case, state_of
from tests.support.fake_provider_server import FakeProviderServer

FORM = {"content-type": "application/x-www-form-urlencoded"}


def token_for(api, case_id: str, days: int = 60, step: str = "", now=None) -> str:
    secret = portal_secret(api.app.state.settings)
    return make_token(secret, case_id, now or utcnow(), days, step=step)


async def invoice_link(api, case_id: str) -> str:
    """The portal link in the invoice email the case sent."""
    async def sent():
        messages = (await api.get("/api/messages", params={"case_id": case_id})).json()
        return next((m for m in messages if m["step_id"] == "send_invoice"), None)

    body = (await eventually(sent))["body"]
    return re.search(r"https?://[^/\s]+(/p/[A-Za-z0-9_\-.]+)", body).group(1)


def form_fields(html: str, action: str) -> dict[str, str]:
    form = html[html.index(f'action="{action}"'):]
    form = form[:form.index("</form>")]
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form))


async def test_a_tampered_or_expired_link_is_refused_and_reveals_nothing(api):
    case_id = await open_case(api)
    good = token_for(api, case_id)
    body, signature = good.split(".")
    tampered = f"{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{signature}"
    expired = token_for(api, case_id, days=1, now=utcnow() - timedelta(days=2))
    for token, says in ((tampered, "niet geldig"), ("nonsense", "niet geldig"), (expired, "verlopen")):
        page = await api.get(f"/portal/{token}")
        assert page.status_code == 403 and says in page.text
        assert "Jan de Vries" not in page.text and "F-2026-001" not in page.text
    assert (await api.get(f"/portal/{good}")).status_code == 200


async def test_the_page_shows_every_open_invoice_of_the_debtor_in_their_language(api):
    first = await open_case(api, "F-2026-001")
    await open_case(api, "F-2026-002")
    other = await api.post("/api/cases", json=new_case("F-2026-999") | {
        "debtor": {"id": "D-7", "name": "Piet Jansen", "email": "piet@example.nl", "language": "nl"}})
    token = token_for(api, first)
    page = (await api.get(f"/portal/{token}")).text
    assert "Beste Jan de Vries" in page and '<html lang="nl">' in page
    assert "F-2026-001" in page and "F-2026-002" in page and "F-2026-999" not in page
    assert "€ 245,00" in page
    english = (await api.get(f"/portal/{token}", params={"lang": "en"})).text
    assert "Dear Jan de Vries" in english and "€245.00" in english

    pdf = await api.get(f"/portal/{token}/invoice/F-2026-002.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert other.status_code == 201
    assert (await api.get(f"/portal/{token}/invoice/F-2026-999.pdf")).status_code == 404  # not this debtor's


async def test_a_link_cannot_act_on_another_debtors_invoice(api):
    mine = await open_case(api, "F-2026-001")
    other = await api.post("/api/cases", json=new_case("F-2026-777") | {
        "debtor": {"id": "D-8", "name": "Kees Bakker", "email": "kees@example.nl", "language": "nl"}})
    assert other.status_code == 201
    token = token_for(api, mine)
    page = (await api.get(f"/portal/{token}")).text
    for action, extra in (("pay", {}), ("plan", {"term_count": "2"})):
        fields = form_fields(page, f"/portal/{token}/{action}") | extra | {"invoice_number": "F-2026-777"}
        refused = await api.post(f"/portal/{token}/{action}", data=fields, headers=FORM)
        assert refused.status_code == 404 and "Kees" not in refused.text
        assert refused.json()["problems"][0]["where"] == "invoice_number"
    with Session(api.app.state.engine) as session:
        assert session.exec(select(PendingSignal).where(PendingSignal.case_id == other.json()["case_id"])).all() == []


async def test_the_link_in_the_invoice_email_records_one_click(api):
    case_id = await open_case(api)
    link = await invoice_link(api, case_id)
    for _ in range(2):
        opened = await api.get(link)
        assert opened.status_code == 303 and opened.headers["location"].startswith("/portal/")
    assert (await api.get(opened.headers["location"])).status_code == 200

    messages = (await api.get("/api/messages", params={"case_id": case_id})).json()
    assert [m["status"] for m in messages if m["step_id"] == "send_invoice"] == ["clicked"]
    with Session(api.app.state.engine) as session:
        clicks = session.exec(select(ChannelEventRecord).where(ChannelEventRecord.provider == "portal")).all()
    assert [(c.kind, c.case_id) for c in clicks] == [("clicked", case_id)]


async def test_a_promise_from_the_portal_pauses_the_case_once(api):
    case_id = await open_case(api)
    token = token_for(api, case_id)
    page = (await api.get(f"/portal/{token}")).text
    fields = form_fields(page, f"/portal/{token}/promise") | {
        "promised_on": (date.today() + timedelta(days=7)).isoformat()}
    for _ in range(2):  # a double click
        sent = await api.post(f"/portal/{token}/promise", data=fields, headers=FORM)
        assert sent.status_code == 303 and "done=promise" in sent.headers["location"]

    async def promised():
        return (await state_of(api, case_id))["status"] == "promised"

    assert await eventually(promised)
    with Session(api.app.state.engine) as session:
        assert len(session.exec(select(PendingSignal).where(PendingSignal.signal == "promise_to_pay")).all()) == 1

    too_late = fields | {"promised_on": (date.today() + timedelta(days=90)).isoformat(), "request_id": "b" * 32}
    refused = await api.post(f"/portal/{token}/promise", data=too_late, headers=FORM)
    assert refused.status_code == 422 and refused.json()["problems"][0]["where"] == "promised_on"


async def test_a_dispute_from_the_portal_pauses_the_case(api):
    case_id = await open_case(api)
    token = token_for(api, case_id)
    fields = form_fields((await api.get(f"/portal/{token}")).text, f"/portal/{token}/dispute")
    sent = await api.post(f"/portal/{token}/dispute", data=fields | {"reason": "wrong_amount",
                                                                      "details": "ik heb 200 besteld"}, headers=FORM)
    assert sent.status_code == 303

    async def disputed():
        state = await state_of(api, case_id)
        return state if state["status"] == "disputed" else None

    assert "wrong_amount (portal): ik heb 200 besteld" in (await eventually(disputed))["dispute"]
    bad = await api.post(f"/portal/{token}/dispute", data=fields | {"reason": "bored"}, headers=FORM)
    assert bad.status_code == 422


async def test_a_plan_chosen_in_the_portal_runs_once_and_shows_its_terms(api):
    case_id = await open_case(api)
    token = token_for(api, case_id)
    page = (await api.get(f"/portal/{token}")).text
    assert [int(n) for n in re.findall(r'name="term_count" value="(\d+)"', page)] == [2, 3, 4, 5, 6]
    assert page.count("€ 122,50") == 2  # the two terms of the shortest plan
    fields = form_fields(page, f"/portal/{token}/plan") | {"term_count": "3"}
    for _ in range(2):  # a double click
        sent = await api.post(f"/portal/{token}/plan", data=fields, headers=FORM)
        assert sent.status_code == 303 and "done=plan" in sent.headers["location"]

    async def in_plan():
        state = await state_of(api, case_id)
        return state if state["status"] == "in_plan" else None

    state = await eventually(in_plan)
    assert ([term["amount_cents"] for term in state["plan"]["terms"]], state["plan"]["source"]) == (
        [8_167, 8_167, 8_166], "portal")
    with Session(api.app.state.engine) as session:
        assert len(session.exec(select(PendingSignal).where(PendingSignal.signal == "accept_plan")).all()) == 1
    confirmed = (await api.get(f"/portal/{token}", params={"done": "plan"})).text
    assert "betalingsregeling is vastgelegd" in confirmed and "Uw betalingsregeling" in confirmed
    assert confirmed.count("€ 81,67") == 3 and 'name="term_count"' not in confirmed  # two terms and the pay button
    assert "Termijn betalen (€ 81,67)" in confirmed and "Alles betalen (€ 245,00)" in confirmed

    refused = await api.post(f"/portal/{token}/plan", data=fields | {"term_count": "9", "request_id": "c" * 32},
                             headers=FORM)
    assert refused.status_code == 422 and refused.json()["problems"][0]["where"] == "term_count"


async def test_paying_through_the_test_provider_ends_the_case_paid_once(api):
    case_id = await open_case(api)
    token = token_for(api, case_id)
    fields = form_fields((await api.get(f"/portal/{token}")).text, f"/portal/{token}/pay")
    started = await api.post(f"/portal/{token}/pay", data=fields, headers=FORM)
    assert started.status_code == 303
    provider_page = (await api.get(started.headers["location"])).text
    assert "Testbetaling" in provider_page and "€ 245,00" in provider_page
    forms = provider_page.split("</form>")
    paid = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', next(f for f in forms if 'value="paid"' in f)))

    forged = await api.post("/webhooks/testpay", data=paid | {"amount_cents": "1"}, headers=FORM)
    assert forged.status_code == 403
    for _ in range(2):  # the provider reports twice
        reported = await api.post("/webhooks/testpay", data=paid, headers=FORM)
        assert reported.status_code == 303 and "done=paid" in reported.headers["location"]

    async def is_paid():
        return (await state_of(api, case_id))["status"] == "paid"

    assert await eventually(is_paid)
    with Session(api.app.state.engine) as session:
        assert [(p.amount_cents, p.payment_id.startswith("testpay:")) for p in session.exec(select(Payment))] == [
            (24_500, True)]


async def test_paying_through_mollie_records_the_payment_mollie_reports(api, settings):
    with FakeProviderServer() as mollie:
        settings.mollie_api_key, settings.mollie_api_base = "test_" + "d" * 30, mollie.url
        case_id = await open_case(api)
        token = token_for(api, case_id)
        fields = form_fields((await api.get(f"/portal/{token}")).text, f"/portal/{token}/pay")
        for _ in range(2):  # a double click asks Mollie twice with one idempotency key
            started = await api.post(f"/portal/{token}/pay", data=fields, headers=FORM)
            assert started.status_code == 303 and started.headers["location"].startswith(f"{mollie.url}/checkout/tr_")
        first, second = [r for r in mollie.requests if r.route == "/v2/payments"]
        assert first.header("Idempotency-Key") == second.header("Idempotency-Key")
        assert first.header("Authorization") == f"Bearer {settings.mollie_api_key}"
        created = first.json()
        assert created["amount"] == {"currency": "EUR", "value": "245.00"}
        assert created["metadata"]["case_id"] == case_id and created["webhookUrl"].endswith("/webhooks/mollie")
        payment_id = started.headers["location"].rsplit("/", 1)[1]

        assert (await api.post("/webhooks/mollie", data={"id": payment_id}, headers=FORM)).json() == {
            "recorded": False}  # still open at Mollie: nothing happened yet
        assert (await api.post("/webhooks/mollie", data={"id": "tr_forged"}, headers=FORM)).json() == {
            "recorded": False}
        mollie.settle(payment_id, "paid")
        statuses = [(await api.post("/webhooks/mollie", data={"id": payment_id}, headers=FORM)).json()["status"]
                    for _ in range(2)]
        assert statuses == ["accepted", "duplicate"]

    async def is_paid():
        return (await state_of(api, case_id))["status"] == "paid"

    assert await eventually(is_paid)
    with Session(api.app.state.engine) as session:
        assert [(p.payment_id, p.amount_cents) for p in session.exec(select(Payment))] == [
            (f"mollie:{payment_id}", 24_500)]
