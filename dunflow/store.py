"""The store: the system of record for debtors, invoices, cases, payments, messages and events.

SQLite file by default; `DUNFLOW_DATABASE_URL` points it at PostgreSQL.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import Column, DateTime, Text, UniqueConstraint, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool
from sqlmodel import Field, Session, SQLModel, create_engine, select


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; everything dunflow stores is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def _timestamp(nullable: bool = False, **kwargs):
    return Field(sa_column=Column(DateTime(timezone=True), nullable=nullable), **kwargs)


class Debtor(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=100)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=500)
    language: str = Field(default="nl", max_length=2)
    type: str = Field(default="consumer", max_length=10)
    sms_opt_out: bool = False  # the debtor answered STOP


class Invoice(SQLModel, table=True):
    number: str = Field(primary_key=True, max_length=100)
    debtor_id: str = Field(foreign_key="debtor.id", index=True)
    amount_cents: int
    currency: str = Field(max_length=3)
    issued_on: date
    due_on: date


def new_case_id() -> str:
    """Random, so ids never repeat across databases (and Temporal keeps old `case-<id>` histories)."""
    return secrets.token_hex(8)


class Case(SQLModel, table=True):
    id: str = Field(default_factory=new_case_id, primary_key=True, max_length=32)
    invoice_number: str = Field(foreign_key="invoice.number", unique=True)
    debtor_id: str = Field(foreign_key="debtor.id", index=True)
    flow_name: str = Field(max_length=100)
    flow_version: int
    status: str = Field(default="starting", max_length=30)
    current_step: str = Field(default="", max_length=100)
    amount_open_cents: int
    currency: str = Field(max_length=3)
    workflow_started: bool = False
    created_at: datetime = _timestamp(default_factory=utcnow)
    updated_at: datetime = _timestamp(default_factory=utcnow)

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.id)


def workflow_id_for(case_id: str) -> str:
    return f"case-{case_id}"


class FlowVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, index=True)
    version: int
    definition_yaml: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _timestamp(default_factory=utcnow)


class FlowDraft(SQLModel, table=True):
    """A flow being designed: saved freely, as sent (BPMN keeps its layout), valid or not."""

    name: str = Field(primary_key=True, max_length=100)
    source: str = Field(sa_column=Column(Text, nullable=False))
    format: str = Field(max_length=4)  # yaml | bpmn | json
    saved_by: str = Field(max_length=100)
    saved_at: datetime = _timestamp(default_factory=utcnow)


class FlowPublication(SQLModel, table=True):
    """Who published a flow version, when, from where, and what changed against the one before."""

    flow_version_id: int = Field(primary_key=True, foreign_key="flowversion.id")
    published_by: str = Field(max_length=100)
    source: str = Field(max_length=10)  # file (flows/*.yaml at start-up) | designer
    diff: str = Field(default="", sa_column=Column(Text, nullable=False))
    diagram: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # BPMN as designed


class CaseMove(SQLModel, table=True):
    """An operator moved a running case to another version of its flow (logged, never silent)."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="case.id", index=True)
    flow_name: str = Field(max_length=100)
    from_version: int
    to_version: int
    moved_by: str = Field(max_length=100)
    note: str = Field(default="", max_length=300)
    at: datetime = _timestamp(default_factory=utcnow)


class Payment(SQLModel, table=True):
    payment_id: str = Field(primary_key=True, max_length=200)
    case_id: str = Field(foreign_key="case.id", index=True)
    amount_cents: int
    currency: str = Field(max_length=3)
    paid_at: datetime = _timestamp()
    received_at: datetime = _timestamp(default_factory=utcnow)


class Message(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)  # workflow id + step id + visit: one send per key
    case_id: str = Field(foreign_key="case.id", index=True)
    step_id: str = Field(max_length=100)
    channel: str = Field(max_length=10)
    template: str = Field(max_length=100)
    language: str = Field(max_length=2)
    recipient: str = Field(max_length=320)
    subject: str = Field(default="", max_length=500)
    body: str = Field(sa_column=Column(Text, nullable=False))
    provider: str = Field(max_length=20)
    provider_message_id: str | None = Field(default=None, max_length=200, index=True)
    status: str = Field(default="sending", max_length=20)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _timestamp(default_factory=utcnow)
    sent_at: datetime | None = _timestamp(nullable=True, default=None)


class CaseEvent(SQLModel, table=True):
    __tablename__ = "event"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    case_id: str = Field(foreign_key="case.id", index=True)
    kind: str = Field(max_length=50)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    message_id: int | None = Field(default=None, foreign_key="message.id")
    at: datetime = _timestamp(default_factory=utcnow)


class ChannelEventRecord(SQLModel, table=True):
    """Every verified webhook event, once: the provider's event id is unique, so a replay is a no-op."""

    __tablename__ = "channel_event"
    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=300)
    provider: str = Field(max_length=20)
    kind: str = Field(max_length=30)  # dunflow's kind, or the provider's when dunflow has none
    key: str | None = Field(default=None, max_length=5)
    message_id: int | None = Field(default=None, index=True)
    case_id: str | None = Field(default=None, index=True)
    outcome: str = Field(max_length=30)  # signalled | recorded | unknown_message | case_closed
    payload: str = Field(default="", sa_column=Column(Text, nullable=False))
    received_at: datetime = _timestamp(default_factory=utcnow)


class PendingSignal(SQLModel, table=True):
    """A signal the API accepted, stored before it is sent, so one Temporal could not take is sent later."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)  # e.g. payment:<payment id>: stored once
    case_id: str = Field(foreign_key="case.id", index=True)
    signal: str = Field(max_length=50)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _timestamp(default_factory=utcnow)
    delivered_at: datetime | None = _timestamp(nullable=True, default=None)
    outcome: str | None = Field(default=None, max_length=30)  # delivered | case_closed
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ApiKey(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=12)  # the start of the key, to recognise it in a list
    key_hash: str = Field(unique=True, max_length=64)
    scopes: str = Field(max_length=200)  # space-separated
    created_at: datetime = _timestamp(default_factory=utcnow)
    revoked_at: datetime | None = _timestamp(nullable=True, default=None)


class Subscriber(SQLModel, table=True):
    """Another system (an ERP, a ledger) that gets dunflow's outbound events by HTTP POST."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=200)  # signs every delivery; shown once, when registered
    events: str = Field(max_length=500)  # space-separated event types, or "*" for all
    active: bool = True
    created_at: datetime = _timestamp(default_factory=utcnow)


class OutboundEvent(SQLModel, table=True):
    """Something that happened, stored with the change that caused it, for the subscribers."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=32)  # uuid hex: receivers deduplicate on it
    type: str = Field(max_length=50, index=True)
    case_id: str | None = Field(default=None, foreign_key="case.id", index=True)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the event's data, JSON
    created_at: datetime = _timestamp(default_factory=utcnow)


class EventDelivery(SQLModel, table=True):
    """One event to one subscriber: pending until a 2xx answer, failed after the last attempt."""

    __table_args__ = (UniqueConstraint("outbound_event_id", "subscriber_id"),)
    id: int | None = Field(default=None, primary_key=True)
    outbound_event_id: int = Field(foreign_key="outboundevent.id", index=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    status: str = Field(default="pending", max_length=10, index=True)  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = _timestamp(default_factory=utcnow)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delivered_at: datetime | None = _timestamp(nullable=True, default=None)


class Contact(SQLModel, table=True):
    """A message to a debtor at its flow time, once per message key: counts toward the weekly maximum."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    debtor_id: str = Field(index=True, max_length=100)
    channel: str = Field(max_length=10)
    at: datetime = _timestamp()


class CombinedSend(SQLModel, table=True):
    """The case whose message went out for all open cases of a debtor: debtor, channel, template, day."""

    __tablename__ = "combined_send"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    case_id: str = Field(max_length=32)


class ContactOptOut(SQLModel, table=True):
    """The debtor does not want to be reached on this channel (SMS STOP, or an operator's note)."""

    __tablename__ = "contact_opt_out"
    __table_args__ = (UniqueConstraint("debtor_id", "channel"),)
    id: int | None = Field(default=None, primary_key=True)
    debtor_id: str = Field(index=True, max_length=100)
    channel: str = Field(max_length=10)
    reason: str = Field(default="", max_length=200)
    at: datetime = _timestamp(default_factory=utcnow)


def release(session: Session) -> None:
    """End the session's transaction (committing what it holds), so no pooled connection and no
    SQLite lock is kept while async code awaits Temporal. Call it before every such await: a
    request that blocks on the pool or a lock blocks the event loop, and with it the request that
    holds what it waits for. Objects stay readable when the session was made with
    expire_on_commit=False, as the API's sessions are."""
    session.commit()


def _use_wal(dbapi_connection, _record) -> None:
    """Readers and one writer side by side; kept in the file, so set once per engine."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _enable_sqlite_concurrency(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Connections are kept for reuse (opening one costs more than most queries), and the pool
        # never makes anyone wait for one: nothing to wait for while the event loop runs.
        pooling = {"poolclass": QueuePool, "pool_size": 20, "max_overflow": -1} if path and path != ":memory:" else {}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, **pooling)
        event.listen(engine, "first_connect", _use_wal)
        event.listen(engine, "connect", _enable_sqlite_concurrency)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=30)


def create_schema(engine: Engine) -> None:
    """The tables straight from the models (tests, tools). A new store is marked as at the newest
    migration, which makes the same tables; servers run dunflow.migrations.upgrade instead."""
    from dunflow.migrations import mark_newest

    new = not inspect(engine).get_table_names()
    SQLModel.metadata.create_all(engine)
    if new:
        mark_newest(engine)


def messages_of_case(session: Session, case_id: str) -> list[Message]:
    return list(session.exec(select(Message).where(Message.case_id == case_id).order_by(Message.id)))


def events_of_case(session: Session, case_id: str) -> list[CaseEvent]:
    return list(session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))
