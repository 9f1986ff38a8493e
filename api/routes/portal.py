"""The debtor portal: one signed link per case shows the debtor's open invoices and lets them
pay, agree a payment date, or dispute, without calling anyone. Every action is idempotent: a
form carries the id of the page it came from, a payment its provider's payment id."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session, select

from api.channel_events import IncomingEvent, deliver
from api.deps import LazyTemporalDep, SessionDep
from api.errors import ApiError
from api.invoice_pdf import invoice_pdf
from api.payments import MolliePaymentProvider, ProviderUnavailable, payment_provider
from api.portal_text import DISPUTE_REASONS, LANGUAGES, TEXT
from api.schemas import PaymentIn
from api.plans import offered_counts, plan_today, send_plan
from api.signalling import QUICK, queue_and_send, record_payment, workflow_handle
from dunflow.calendar import AMSTERDAM
from dunflow.case import FINAL_STATUSES, DisputeOpened, PromiseToPay
from dunflow.money import format_amount
from dunflow.plans import PlanRequest, PlanState, PlanTerm, monthly_terms, next_term
from dunflow.portal import PortalLink, PortalLinkError, portal_secret, read_token, sign
from dunflow.settings import Settings
from dunflow.store import Case, Debtor, Invoice, Message, PendingSignal, release, utcnow
from dunflow.templates import TemplateCatalog
from workflows.collection import CollectionWorkflow

log = logging.getLogger("dunflow.portal")
router = APIRouter(include_in_schema=False)
PROMISE_MAX_DAYS = 30  # the furthest date a debtor may promise to pay by, from today
DONE = ("promise", "dispute", "plan", "paid", "failed", "returned")


class PortalDenied(Exception):
    def __init__(self, reason: str, language: str = "nl", status_code: int = 403) -> None:
        self.reason, self.language, self.status_code = reason, language, status_code


@dataclass
class Visit:
    """A request through a valid portal link: the case it is bound to and its debtor."""

    token: str
    link: PortalLink
    case: Case
    debtor: Debtor
    settings: Settings
    secret: bytes

    @property
    def base(self) -> str:
        return f"/portal/{self.token}"


def get_visit(token: str, request: Request, session: SessionDep) -> Visit:
    settings: Settings = request.app.state.settings
    secret = portal_secret(settings)
    try:
        link = read_token(secret, token, utcnow())
    except PortalLinkError as error:
        raise PortalDenied(error.reason) from None
    case = session.get(Case, link.case_id)
    if case is None:
        raise PortalDenied("invalid")
    return Visit(token, link, case, session.get(Debtor, case.debtor_id), settings, secret)


VisitDep = Annotated[Visit, Depends(get_visit)]


def install_portal(app: FastAPI) -> None:
    app.include_router(router)

    @app.exception_handler(PortalDenied)
    async def _denied(request: Request, denied: PortalDenied) -> HTMLResponse:
        settings = request.app.state.settings
        language = _language(request.query_params.get("lang"), denied.language)
        words = TEXT[language]
        return _page(settings, "error.html.j2", language, status_code=denied.status_code,
                     problem=words[f"error_{denied.reason}"])


# --- pages ---------------------------------------------------------------------------------


@router.get("/p/{token}")
async def tracked_link(visit: VisitDep, session: SessionDep, client: LazyTemporalDep) -> RedirectResponse:
    """The link in a message: records the click for that message's step, then opens the portal."""
    message = _message_of_step(session, visit.case.id, visit.link.step)
    if message is not None:
        try:
            await deliver(session, client, IncomingEvent(
                event_id=f"click:{message.id}", provider="portal", kind="clicked", message_id=message.id))
        except Exception:  # the debtor reaches the portal even while Temporal is away
            log.warning("click on message %s could not be signalled", message.id, exc_info=True)
    return RedirectResponse(visit.base, status_code=303)


@router.get("/portal/{token}")
async def portal_page(visit: VisitDep, request: Request, session: SessionDep, client: LazyTemporalDep) -> HTMLResponse:
    language = _language(request.query_params.get("lang"), visit.debtor.language)
    done = request.query_params.get("done")
    today = datetime.now(AMSTERDAM).date()
    invoices = await _open_invoices(session, client, visit, language, look_up_plans=done == "plan")
    return _page(visit.settings, "page.html.j2", language, base=visit.base, debtor=visit.debtor,
                 invoices=invoices, done=done if done in DONE else None,
                 request_id=uuid.uuid4().hex, reasons=DISPUTE_REASONS, other_lang="en" if language == "nl" else "nl",
                 promise_min=(today + timedelta(days=1)).isoformat(),
                 promise_max=(today + timedelta(days=PROMISE_MAX_DAYS)).isoformat())


@router.get("/portal/{token}/invoice/{number}.pdf")
def invoice_copy(visit: VisitDep, number: str, request: Request, session: SessionDep) -> Response:
    language = _language(request.query_params.get("lang"), visit.debtor.language)
    invoice = session.get(Invoice, number)
    case = session.exec(select(Case).where(Case.invoice_number == number)).first()
    if invoice is None or case is None or invoice.debtor_id != visit.debtor.id:
        raise PortalDenied("invalid", language, status_code=404)  # another debtor's invoice is not there
    pdf = invoice_pdf(invoice, visit.debtor, case.amount_open_cents, visit.settings, language)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="invoice-{quote(number)}.pdf"'})


# --- actions -------------------------------------------------------------------------------


@router.post("/portal/{token}/promise")
async def promise(visit: VisitDep, request: Request, session: SessionDep, client: LazyTemporalDep) -> Response:
    form = await _form(request)
    language = _language(form.get("lang"), visit.debtor.language)
    today = datetime.now(AMSTERDAM).date()
    try:
        promised_on = date.fromisoformat(form.get("promised_on", ""))
    except ValueError:
        raise ApiError(422, "promised_on must be a date (YYYY-MM-DD)", where="promised_on") from None
    if not today < promised_on <= today + timedelta(days=PROMISE_MAX_DAYS):
        raise ApiError(422, f"promised_on must lie between tomorrow and {PROMISE_MAX_DAYS} days from today",
                       where="promised_on")
    for case in _open_cases(session, visit.debtor.id):
        await _signal_once(session, client, case, f"portal:{_request_id(form)}:{case.id}", "promise_to_pay",
                           PromiseToPay(promised_on=promised_on, amount_cents=case.amount_open_cents))
    return _back(visit, language, "promise")


@router.post("/portal/{token}/dispute")
async def dispute(visit: VisitDep, request: Request, session: SessionDep, client: LazyTemporalDep) -> Response:
    form = await _form(request)
    language = _language(form.get("lang"), visit.debtor.language)
    reason, details = form.get("reason", ""), form.get("details", "").strip()[:1000]
    if reason not in DISPUTE_REASONS:
        raise ApiError(422, f"reason must be one of {', '.join(DISPUTE_REASONS)}", where="reason")
    if visit.case.status not in FINAL_STATUSES:
        text = f"{reason} (portal)" + (f": {details}" if details else "")
        await _signal_once(session, client, visit.case, f"portal:{_request_id(form)}", "dispute_opened",
                           DisputeOpened(reason=text))
    return _back(visit, language, "dispute")


@router.post("/portal/{token}/plan")
async def plan(visit: VisitDep, request: Request, session: SessionDep, client: LazyTemporalDep) -> Response:
    """The debtor chooses one of the plans the flow offers for an invoice."""
    form = await _form(request)
    language = _language(form.get("lang"), visit.debtor.language)
    case = _debtors_case(session, visit, form.get("invoice_number", ""))
    offered = offered_counts(session, case, case.amount_open_cents) if case.status != "disputed" else []
    count = form.get("term_count", "")
    if not count.isdigit() or int(count) not in offered:
        raise ApiError(422, f"term_count must be one of {', '.join(map(str, offered)) or 'none (no plan is offered)'}",
                       where="term_count")
    request_id = _request_id(form)
    release(session)
    await send_plan(session, client, case, PlanRequest(plan_id=f"portal:{request_id}", source="portal",
                                                       term_count=int(count)))
    return _back(visit, language, "plan")


@router.post("/portal/{token}/pay")
async def pay(visit: VisitDep, request: Request, session: SessionDep, client: LazyTemporalDep) -> Response:
    """Hand over to the payment provider (Mollie, or the local test provider)."""
    form = await _form(request)
    language = _language(form.get("lang"), visit.debtor.language)
    case = _debtors_case(session, visit, form.get("invoice_number", ""))
    release(session)
    amount, part = case.amount_open_cents, "all"
    if form.get("part") == "term":  # the instalment due now, as the case's running plan knows it
        term = await _term_due(client, case)
        amount, part = (term.amount_cents - term.paid_cents, "term") if term is not None else (amount, part)
    provider = payment_provider(visit.settings)
    try:
        attempt = f"{_request_id(form)}{case.id}{part}"  # one payment per page, invoice and part, however often clicked
        url = await asyncio.to_thread(provider.checkout_url, case, amount, visit.base, language, attempt)
    except ProviderUnavailable as error:
        raise ApiError(503, f"{error}; try again in a moment") from None
    return RedirectResponse(url, status_code=303)


@router.get("/portal/{token}/testpay")
def test_provider_page(visit: VisitDep, request: Request, session: SessionDep) -> HTMLResponse:
    """The local test payment provider: the debtor picks how the payment ends; the page then
    posts the provider's webhook, signed, as a real provider would."""
    language = _language(request.query_params.get("lang"), visit.debtor.language)
    case = _debtors_case(session, visit, request.query_params.get("invoice", ""))
    asked = request.query_params.get("amount", "")
    amount = int(asked) if asked.isdigit() and 0 < int(asked) <= case.amount_open_cents else case.amount_open_cents
    fields = {"token": visit.token, "case_id": case.id, "payment_id": f"testpay:{request.query_params.get('payment', '')}",
              "amount_cents": str(amount), "currency": case.currency, "lang": language}
    signatures = {outcome: sign(visit.secret, *fields.values(), outcome) for outcome in ("paid", "failed")}
    return _page(visit.settings, "testpay.html.j2", language, fields=fields, signatures=signatures,
                 webhook="/webhooks/testpay", invoice_number=case.invoice_number,
                 amount=format_amount(amount, case.currency, language))


@router.post("/webhooks/mollie")
async def mollie_webhook(request: Request, session: SessionDep, client: LazyTemporalDep) -> dict:
    """Mollie names a payment that changed; what happened is asked from Mollie itself, so a
    forged call can only make dunflow look up a payment that is not there."""
    provider_id = (await _form(request)).get("id", "")
    settings: Settings = request.app.state.settings
    if not settings.mollie_api_key:
        raise ApiError(404, "Mollie is not configured (DUNFLOW_MOLLIE_API_KEY)")
    try:
        reported = await asyncio.to_thread(MolliePaymentProvider(settings).report, provider_id)
    except ProviderUnavailable as error:
        raise ApiError(503, str(error)) from None  # Mollie calls again later
    case = session.get(Case, reported.case_id) if reported is not None else None
    if reported is None or case is None or not reported.paid:
        return {"recorded": False}
    payment = PaymentIn(payment_id=reported.payment_id, amount_cents=reported.amount_cents,
                        currency=reported.currency, paid_at=reported.paid_at or datetime.now(timezone.utc))
    return {"recorded": True, "status": await record_payment(session, client, case, payment)}


@router.post("/webhooks/testpay")
async def test_provider_webhook(request: Request, session: SessionDep, client: LazyTemporalDep) -> Response:
    """The test provider reports a payment's outcome; a paid one is recorded and signalled once."""
    form = await _form(request)
    names = ("token", "case_id", "payment_id", "amount_cents", "currency", "lang", "outcome")
    secret = portal_secret(request.app.state.settings)
    if form.get("signature") != sign(secret, *(form.get(name, "") for name in names)):
        raise ApiError(403, "the payment report is not signed by the test provider")
    language = _language(form["lang"], "nl")
    case = session.get(Case, form["case_id"])
    if case is None:
        raise ApiError(404, f"no case with id {form['case_id']}", where="case_id")
    if form["outcome"] != "paid":
        return RedirectResponse(f"/portal/{form['token']}?done=failed&lang={language}", status_code=303)
    payment = PaymentIn(payment_id=form["payment_id"], amount_cents=int(form["amount_cents"]),
                        currency=form["currency"], paid_at=datetime.now(timezone.utc))
    await record_payment(session, client, case, payment)
    return RedirectResponse(f"/portal/{form['token']}?done=paid&lang={language}", status_code=303)


# --- helpers -------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _pages(folder: Path) -> Environment:
    return Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["j2"]))


def _page(settings: Settings, name: str, language: str, status_code: int = 200, **values) -> HTMLResponse:
    creditor = {"name": settings.creditor_name, "email": settings.creditor_email, "phone": settings.creditor_phone}
    html = _pages(settings.templates_dir / "portal").get_template(name).render(
        lang=language, t=TEXT[language], creditor=creditor, **values)
    return HTMLResponse(html, status_code=status_code)


def _language(asked: str | None, default: str) -> str:
    return asked if asked in LANGUAGES else default if default in LANGUAGES else "nl"


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True))


def _request_id(form: dict[str, str]) -> str:
    request_id = form.get("request_id", "")
    if not (8 <= len(request_id) <= 64 and request_id.isalnum()):
        raise ApiError(422, "the form is incomplete; reload the page and try again", where="request_id")
    return request_id


def _open_cases(session: Session, debtor_id: str) -> list[Case]:
    query = select(Case).where(Case.debtor_id == debtor_id, Case.status.not_in(FINAL_STATUSES))
    return list(session.exec(query.order_by(Case.created_at)))


async def _open_invoices(session: Session, client, visit: Visit, language: str, look_up_plans: bool) -> list[dict]:
    """The debtor's open invoices, each with its running plan or the plans it may choose."""
    catalog = TemplateCatalog(visit.settings.templates_dir)
    money = lambda cents, case: format_amount(cents, case.currency, language)  # noqa: E731
    rows = []
    for case in _open_cases(session, visit.debtor.id):
        invoice = session.get(Invoice, case.invoice_number)
        row = {"number": invoice.number, "due_date": catalog.long_date(invoice.due_on, language),
               "amount_open": money(case.amount_open_cents, case), "plan": None, "plan_options": [], "term_due": None}
        if case.status != "disputed":
            row["plan_options"] = [
                {"count": count, "terms": [{"amount": money(term.amount_cents, case),
                                            "due_date": catalog.long_date(term.due_on, language)}
                                           for term in monthly_terms(case.amount_open_cents, count, plan_today())]}
                for count in offered_counts(session, case, case.amount_open_cents)
            ]
        rows.append((case, row))
    release(session)
    for case, row in rows:
        plan = await _running_plan(client, case) if case.status == "in_plan" or look_up_plans else None
        if plan is not None:
            row["plan"] = [{"number": term.number, "due_date": catalog.long_date(term.due_on, language),
                            "amount": money(term.amount_cents, case), "status": term.status} for term in plan.terms]
            term = next_term(plan)
            row["term_due"] = money(term.amount_cents - term.paid_cents, case) if term is not None else None
    return [row for _, row in rows]


async def _running_plan(client, case: Case) -> PlanState | None:
    """The case's running plan as the case itself knows it; None if it has none (or Temporal
    cannot be asked: the page then offers what it can)."""
    try:
        state = await workflow_handle(client, case).query(CollectionWorkflow.state, rpc_timeout=QUICK)
    except Exception:
        log.warning("plan of case %s could not be asked", case.id, exc_info=True)
        return None
    return state.plan if state.plan is not None and state.plan.status == "active" else None


async def _term_due(client, case: Case) -> PlanTerm | None:
    plan = await _running_plan(client, case)
    return next_term(plan) if plan is not None else None


def _debtors_case(session: Session, visit: Visit, number: str) -> Case:
    case = session.exec(select(Case).where(Case.invoice_number == number)).first()
    if case is None or case.debtor_id != visit.debtor.id or case.status in FINAL_STATUSES:
        raise ApiError(404, f"no open invoice {number} for this link", where="invoice_number")
    return case


def _message_of_step(session: Session, case_id: str, step: str) -> Message | None:
    if not step:
        return None
    query = select(Message).where(Message.case_id == case_id, Message.step_id == step).order_by(Message.id.desc())
    return session.exec(query).first()


async def _signal_once(session: Session, client, case: Case, key: str, signal: str, payload) -> None:
    if session.exec(select(PendingSignal.id).where(PendingSignal.key == key)).first() is not None:
        return  # the same form sent again (a double click, a reload)
    release(session)
    await queue_and_send(session, client, case.id, signal, payload, key=key)


def _back(visit: Visit, language: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{visit.base}?done={done}&lang={language}", status_code=303)
