"""The case contract: the workflow's input, signal payloads and the state its query returns.

Shared by the API (which starts and signals cases), the workflow and the activities.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from dunflow.flow import ChannelEventKind, ContactHours, DebtorType, FlowDefinition
from dunflow.plans import PlanState, TermNotice, TermSpec

Language = Literal["nl", "en"]

# Where a case stands. The last three are final.
CaseStatus = Literal[
    "active", "paused", "disputed", "promised", "escalated", "in_plan", "paid", "cancelled", "closed"]
FINAL_STATUSES = ("paid", "cancelled", "closed")


class DebtorInfo(BaseModel):
    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    language: Language = "nl"
    type: DebtorType = "consumer"
    time_zone: str = "Europe/Amsterdam"  # contact hours are in this zone


class InvoiceInfo(BaseModel):
    number: str
    amount_cents: int
    currency: str
    issued_on: date
    due_on: date


class CaseInput(BaseModel):
    case_id: str
    flow: FlowDefinition
    flow_version: int
    debtor: DebtorInfo
    invoice: InvoiceInfo
    day_seconds: float | None = None  # pinned at start: one flow day lasts this many seconds
    costs_vat: bool = False  # pinned at start: VAT on collection costs (the creditor cannot reclaim it)
    business_costs_per_mille: int | None = None  # pinned at start: costs agreed with business debtors


# --- signals ---------------------------------------------------------------------------------


class PaymentReceived(BaseModel):
    payment_id: str
    amount_cents: int
    currency: str
    paid_at: datetime


class DisputeOpened(BaseModel):
    reason: str


class DisputeResolved(BaseModel):
    outcome: Literal["upheld", "rejected"]
    note: str = ""


class PromiseToPay(BaseModel):
    promised_on: date
    amount_cents: int


class ChannelEvent(BaseModel):
    event_id: str  # unique per delivery from the provider (or the API): repeats are ignored
    step_id: str
    message_id: int | None = None
    kind: ChannelEventKind
    key: str | None = None  # the digit pressed, for key_pressed


class OperatorAction(BaseModel):
    by: str = "operator"
    note: str = ""


class VersionMove(BaseModel):
    """An operator moves a running case to another version of its flow, at its next wait."""

    flow: FlowDefinition
    version: int
    by: str


# --- state -----------------------------------------------------------------------------------


class HistoryEntry(BaseModel):
    seq: int
    at: datetime
    kind: str
    step: str | None = None
    detail: str = ""


class SentMessage(BaseModel):
    step_id: str
    channel: str
    template: str
    message_id: int | None = None
    status: str
    at: datetime


class NextAction(BaseModel):
    step: str
    description: str
    at: datetime | None = None  # None: waits for a person or a signal


class CaseState(BaseModel):
    case_id: str
    flow_name: str
    flow_version: int
    status: CaseStatus
    outcome: str | None = None
    current_step: str
    next_action: NextAction | None = None
    amount_open_cents: int
    amount_paid_cents: int = 0
    currency: str
    # statutory interest on the principal still open through `interest_on` (the case's last step), not charged
    interest_cents: int = 0
    interest_on: date | None = None
    costs_cents: int = 0  # collection costs charged (in the amount open)
    notice_term_ends: date | None = None  # last day of the 14-day notice's term, once it was sent
    deferred: str | None = None  # the message waiting for its moment (contact rules), and why
    dispute: str | None = None
    promise: PromiseToPay | None = None
    escalation_reason: str | None = None
    plan: PlanState | None = None  # the installment plan the case runs or ran last
    messages: list[SentMessage] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)


# --- activity contracts ----------------------------------------------------------------------


class PlanProposal(BaseModel):
    terms: int
    term_amounts_cents: list[int]


class SendRequest(BaseModel):
    key: str  # workflow id + step id + visit: the idempotency key of this message
    case_id: str
    step_id: str
    channel: str
    template: str
    debtor: DebtorInfo
    invoice: InvoiceInfo
    amount_open_cents: int
    plans: list[PlanProposal] = Field(default_factory=list)
    on: date | None = None  # the flow date of sending: interest and terms are stated as of this day
    at: datetime | None = None  # the flow time of sending: counts toward the weekly maximum of contacts
    combine: bool = False  # the first case of the debtor to send this today sends for all their open cases
    term: TermNotice | None = None  # the plan term a plan reminder is about


class SendResult(BaseModel):
    message_id: int
    status: str  # sent | unconfirmed | failed | combined (into another case's message)
    provider: str
    detail: str = ""
    notice_template: bool = False  # the template is marked as the 14-day notice


class PlanInput(BaseModel):
    """What the plan workflow needs: its terms, whom to remind, and the case's clock."""

    plan_id: str
    case_id: str
    debtor: DebtorInfo
    invoice: InvoiceInfo
    terms: list[TermSpec]
    reminder_channel: Literal["email", "sms"] | None  # None: the debtor can be reached by neither
    reminder_hours: ContactHours | None = None  # the flow's hours for that channel, if it has any
    clock_origin: datetime  # the case's flow clock, so a date means the same moment to both
    day_seconds: float | None = None


class ContactRequest(BaseModel):
    key: str  # the message's key
    debtor_id: str
    channel: str
    at: datetime
    since: datetime  # the start of the week that counts
    limit: int


class ContactDecision(BaseModel):
    allowed: bool
    retry_at: datetime | None = None  # when not allowed: the moment a contact frees up


class ProgressReport(BaseModel):
    case_id: str
    workflow_id: str
    status: str
    current_step: str
    amount_open_cents: int
    entries: list[HistoryEntry]
    flow_version: int | None = None  # the version the case runs now (it changes when moved)
