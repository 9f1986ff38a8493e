"""The activities of a collection case: send a message, record the case's progress.

Both are idempotent. A message's key is workflow id + step id + visit, unique in the store, so
a retried activity finds the row of its earlier attempt and never sends twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, or_, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers import ChannelProvider, OutgoingMessage, PermanentSendError, RateLimiter, rate_limits
from dunflow.case import FINAL_STATUSES, ContactDecision, ContactRequest, ProgressReport, SendRequest, SendResult
from dunflow.contacts import note_contact, opted_out, reserve_contact
from dunflow.interest import interest_so_far, rate_label
from dunflow.metrics import MESSAGES_SENT, PROVIDER_SECONDS
from dunflow.money import CollectionCosts, collection_costs, format_amount
from dunflow.outbound import case_facts, emit, history_event
from dunflow.plans import GRACE_DAYS, TermNotice
from dunflow.portal import make_token, portal_secret
from dunflow.settings import Settings
from dunflow.store import Case, CaseEvent, CombinedSend, Invoice, Message, utcnow, workflow_id_for
from dunflow.templates import RenderedMessage, TemplateCatalog

log = logging.getLogger("dunflow.activities")

# A row left in `sending` means an earlier attempt died while talking to the provider: we cannot
# know whether the debtor got it, and sending twice is worse than asking a person to check.
DELIVERED_STATUSES = ("sent", "unconfirmed", "delivered", "opened", "clicked", "answered", "combined")


@dataclass
class CollectionActivities:
    engine: Engine
    settings: Settings
    templates: TemplateCatalog
    providers: dict[str, ChannelProvider]
    limiters: dict[str, RateLimiter] = field(default_factory=dict)  # empty: from the settings

    def __post_init__(self) -> None:
        self.limiters = self.limiters or rate_limits(self.settings)

    def all(self) -> list:
        return [self.send_message, self.record_progress, self.reserve_contact]

    @activity.defn(name="send_message")
    def send_message(self, request: SendRequest) -> SendResult:
        provider = self.providers[request.channel]
        with Session(self.engine) as session:
            if opted_out(session, request.debtor.id, request.channel):
                MESSAGES_SENT.labels(request.channel, provider.name, "opted_out").inc()
                raise ApplicationError(f"the debtor opted out of {request.channel}", type="PermanentSendError",
                                       non_retryable=True)
            combined_into = self._combined_into(session, request) if request.combine else None
        if combined_into is not None:
            return _result(self._record_combined(request, combined_into), False)
        message, retrying = self._claim(request, provider)
        notice = self.templates.is_notice(request.channel, request.template, request.debtor.language)
        if message.status in DELIVERED_STATUSES:
            return _result(message, notice)
        try:
            earlier = self._earlier_attempt(provider, _outgoing(message, request)) if retrying else None
            provider_id = earlier or self._send(provider, _outgoing(message, request))
        except PermanentSendError as error:
            self._mark(message.id, status="failed", error=str(error))
            raise ApplicationError(str(error), type="PermanentSendError", non_retryable=True) from None
        except Exception as error:
            self._mark(message.id, status="failed", error=f"{type(error).__name__}: {error}")
            raise
        message = self._mark(message.id, status="sent", provider_message_id=provider_id, sent_at=utcnow())
        return _result(message, notice)

    def _claim(self, request: SendRequest, provider: ChannelProvider) -> tuple[Message, bool]:
        """The message row for this key (the existing one, or a new one rendered now, noted as a
        contact with the debtor in the same commit), and whether an earlier attempt failed: it may
        have reached the provider all the same."""
        with Session(self.engine) as session:
            existing = session.exec(select(Message).where(Message.key == request.key)).first()
            if existing is not None:
                retrying = existing.status == "failed"
                if existing.status == "sending":
                    existing.status, existing.error = "unconfirmed", "an earlier attempt stopped while sending"
                if retrying:
                    existing.status, existing.error = "sending", None
                session.add(existing)
                session.commit()
                session.refresh(existing)
                return existing, retrying
            rendered = self.render(request)
            message = Message(
                key=request.key, case_id=request.case_id, step_id=request.step_id,
                channel=request.channel, template=request.template, language=request.debtor.language,
                recipient=_recipient(request), subject=rendered.subject, body=rendered.body,
                provider=provider.name, status="sending",
            )
            session.add(message)
            try:
                note_contact(session, request.key, request.debtor.id, request.channel, request.at or utcnow())
                session.flush()
                if provider.records_in_store:
                    message.status, message.sent_at = "sent", utcnow()
                    message.provider_message_id = self._send(provider, _outgoing(message, request))
                session.commit()
            except IntegrityError:  # a concurrent attempt claimed the key first
                session.rollback()
                return self._claim(request, provider)
            session.refresh(message)
            return message, False

    @staticmethod
    def _earlier_attempt(provider: ChannelProvider, outgoing: OutgoingMessage) -> str | None:
        """The provider's id of an earlier, failed attempt it took after all (its answer lost)."""
        found = provider.find_sent(outgoing)
        if found:
            log.warning("%s message %s: an earlier attempt reached %s after all (%s); not sent again",
                        outgoing.channel, outgoing.message_id, provider.name, found,
                        extra={"case_id": outgoing.case_id})
        return found

    def _send(self, provider: ChannelProvider, outgoing: OutgoingMessage) -> str:
        """The provider's send, within its rate limit, timed and counted by outcome."""
        self.limiters.get(provider.name, RateLimiter(0)).wait_turn()
        started, outcome = time.monotonic(), "error"
        try:
            provider_id = provider.send(outgoing)
            outcome = "sent"
            return provider_id
        except PermanentSendError:
            outcome = "refused"
            raise
        finally:
            PROVIDER_SECONDS.labels(outgoing.channel, provider.name).observe(time.monotonic() - started)
            MESSAGES_SENT.labels(outgoing.channel, provider.name, outcome).inc()
            log.info("%s message %s via %s: %s", outgoing.channel, outgoing.message_id, provider.name, outcome,
                     extra={"case_id": outgoing.case_id, "workflow_id": workflow_id_for(outgoing.case_id)})

    def _combined_into(self, session: Session, request: SendRequest) -> str | None:
        """The other case that sends this debtor's message for today, if one does; else this case takes it."""
        key = f"{request.debtor.id}:{request.channel}:{request.template}:{request.on}"
        row = session.exec(select(CombinedSend).where(CombinedSend.key == key)).first()
        if row is None:
            session.add(CombinedSend(key=key, case_id=request.case_id))
            try:
                session.commit()
                return None
            except IntegrityError:  # another case of the debtor took it at the same moment
                session.rollback()
                row = session.exec(select(CombinedSend).where(CombinedSend.key == key)).one()
        return None if row.case_id == request.case_id else row.case_id

    def _record_combined(self, request: SendRequest, other_case_id: str) -> Message:
        with Session(self.engine) as session:
            message = session.exec(select(Message).where(Message.key == request.key)).first() or Message(
                key=request.key, case_id=request.case_id, step_id=request.step_id, channel=request.channel,
                template=request.template, language=request.debtor.language, recipient=_recipient(request),
                body=_combined_body(request.template, other_case_id), provider="combined",
                status="combined", sent_at=utcnow())
            session.add(message)
            session.commit()
            session.refresh(message)
            return message

    def _other_open_invoices(self, request: SendRequest, money) -> list[dict]:
        if not request.combine:
            return []
        combined_here = select(Message.case_id).where(  # they may have ended before this message was written
            Message.status == "combined", Message.body == _combined_body(request.template, request.case_id))
        with Session(self.engine) as session:
            cases = session.exec(select(Case).where(
                Case.debtor_id == request.debtor.id, Case.id != request.case_id,
                or_(Case.status.not_in(FINAL_STATUSES), Case.id.in_(combined_here))).order_by(Case.invoice_number))
            return [{"number": case.invoice_number, "amount_open": money(case.amount_open_cents),
                     "due_date": self.templates.long_date(session.get(Invoice, case.invoice_number).due_on,
                                                          request.debtor.language)}
                    for case in cases]

    @activity.defn(name="reserve_contact")
    def reserve_contact(self, request: ContactRequest) -> ContactDecision:
        with Session(self.engine) as session:
            retry_at = reserve_contact(session, request.key, request.debtor_id, request.channel,
                                       request.at, request.since, request.limit)
        return ContactDecision(allowed=retry_at is None, retry_at=retry_at)

    def _mark(self, message_id: int, **changes) -> Message:
        with Session(self.engine) as session:
            message = session.get(Message, message_id)
            for name, value in changes.items():
                setattr(message, name, value)
            session.add(message)
            session.commit()
            session.refresh(message)
            return message

    def render(self, request: SendRequest) -> RenderedMessage:
        return self.templates.render(request.channel, request.template, request.debtor.language, self.context(request))

    def portal_link(self, request: SendRequest) -> str:
        """The debtor's portal, through a redirect that records the click for this step's message."""
        token = make_token(portal_secret(self.settings), request.case_id, utcnow(), self.settings.portal_link_days,
                           step=request.step_id)
        return f"{self.settings.effective_public_url}/p/{token}"

    def context(self, request: SendRequest) -> dict:
        language, invoice = request.debtor.language, request.invoice
        on = request.on or date.today()
        principal = max(0, min(request.amount_open_cents, invoice.amount_cents))
        interest = interest_so_far(principal, invoice.due_on, on, request.debtor.type)
        money = lambda cents: format_amount(cents, invoice.currency, language)  # noqa: E731
        settings = self.settings
        portal_link = self.portal_link(request)
        pay_link = settings.pay_url_template.format(
            invoice_number=invoice.number, case_id=request.case_id, amount_cents=request.amount_open_cents,
        ) if settings.pay_url_template else portal_link
        return {
            "debtor": request.debtor,
            "invoice": invoice,
            "amount_open": money(request.amount_open_cents),
            "amount_invoice": money(invoice.amount_cents),
            "due_date": self.templates.long_date(invoice.due_on, language),
            "issue_date": self.templates.long_date(invoice.issued_on, language),
            "creditor": {"name": settings.creditor_name, "iban": settings.creditor_iban,
                         "email": settings.creditor_email, "phone": settings.creditor_phone},
            "reference": invoice.number,
            "pay_link": pay_link,
            "portal_link": portal_link,
            "collection_costs": money(self.costs(request.debtor.type, principal).total_cents),
            "other_invoices": self._other_open_invoices(request, money),
            "interest": money(interest.cents),
            "interest_cents": interest.cents,
            "interest_rate": rate_label(interest.kind, on),
            "plans": [
                {"terms": plan.terms, "schedule": [money(cents) for cents in plan.term_amounts_cents],
                 "first_term": money(plan.term_amounts_cents[0])}
                for plan in request.plans
            ],
            "term": self._term(request.term, money, language),
            "grace_days": GRACE_DAYS,
        }

    def _term(self, term: TermNotice | None, money, language: str) -> dict | None:
        if term is None:
            return None
        return {"number": term.number, "of": term.of, "amount": money(term.amount_cents),
                "due_date": self.templates.long_date(term.due_on, language)}

    def costs(self, debtor_type: str, principal_cents: int) -> CollectionCosts:
        settings = self.settings
        return collection_costs(principal_cents, debtor_type, vat=not settings.creditor_reclaims_vat,
                                agreed_per_mille=settings.business_costs_per_mille)

    @activity.defn(name="record_progress")
    def record_progress(self, report: ProgressReport) -> None:
        keys = [f"{report.workflow_id}:{entry.seq}" for entry in report.entries]
        with Session(self.engine) as session:
            known = set(session.exec(select(CaseEvent.key).where(CaseEvent.key.in_(keys))))
            case = session.get(Case, report.case_id)
            for key, entry in zip(keys, report.entries):
                if key not in known:
                    detail = f"{entry.step}: {entry.detail}" if entry.step and entry.detail else entry.step or entry.detail
                    session.add(CaseEvent(key=key, case_id=report.case_id, kind=entry.kind, detail=detail, at=entry.at))
                    outbound = history_event(entry.kind, entry.detail)
                    if outbound is not None:  # a new entry only, so each event is emitted once
                        event_type, data = outbound
                        emit(session, event_type, report.case_id, case_facts(case, report.amount_open_cents) | data)
            if case is not None:
                case.status, case.current_step = report.status, report.current_step
                case.amount_open_cents, case.updated_at = report.amount_open_cents, utcnow()
                case.flow_version = report.flow_version or case.flow_version
                session.add(case)
            session.commit()


def _combined_body(template: str, sending_case_id: str) -> str:
    return f"combined into the {template} of case {sending_case_id}"


def _recipient(request: SendRequest) -> str:
    debtor = request.debtor
    if request.channel == "email":
        return debtor.email or ""
    if request.channel == "letter":
        return f"{debtor.name}\n{debtor.address or ''}".strip()
    return debtor.phone or ""


def _outgoing(message: Message, request: SendRequest) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message.id, case_id=request.case_id, channel=request.channel,
        recipient=message.recipient, subject=message.subject, body=message.body, language=message.language,
    )


def _result(message: Message, notice_template: bool) -> SendResult:
    return SendResult(message_id=message.id, status=message.status, provider=message.provider,
                      detail=message.error or "", notice_template=notice_template)
