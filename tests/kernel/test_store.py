"""The store on SQLite and on a real PostgreSQL server: uniqueness that idempotency relies on."""

from __future__ import annotations

import os
from datetime import date, datetime, timezone

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from api.intake import store_case
from api.schemas import CaseIn
from dunflow.flows import latest_flow, publish_shipped_flows
from dunflow.store import Case, CaseEvent, Message, Payment, as_utc, create_schema, make_engine
from dunflow.templates import TemplateCatalog


def _postgres_url() -> str:
    url = os.environ.get("DUNFLOW_TEST_POSTGRES_URL")
    if not url:
        pytest.fail("DUNFLOW_TEST_POSTGRES_URL is not set: run the tests with `bash scripts/test.sh`, "
                    "which installs and starts PostgreSQL, or point it at a PostgreSQL database you can wipe")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path, settings):
    url = f"sqlite:///{tmp_path}/store.db" if request.param == "sqlite" else _postgres_url()
    engine = make_engine(url)
    SQLModel.metadata.drop_all(engine)
    create_schema(engine)
    publish_shipped_flows(engine, settings.flows_dir, TemplateCatalog(settings.templates_dir))
    yield engine
    SQLModel.metadata.drop_all(engine)
    engine.dispose()


def case_body(number: str = "F-1", amount_cents: int = 12_345) -> CaseIn:
    return CaseIn.model_validate({
        "debtor": {"id": "D-1", "name": "Jan", "email": "jan@example.nl"},
        "invoice": {"number": number, "amount_cents": amount_cents, "currency": "EUR",
                    "issued_on": "2026-11-01", "due_on": "2026-11-15"},
    })


def test_the_same_invoice_opens_one_case(store):
    with Session(store) as session:
        first = store_case(session, case_body())
        again = store_case(session, case_body())
        assert first.created and not again.created
        assert first.case.id == again.case.id
        assert len(session.exec(select(Case)).all()) == 1


def test_shipped_flows_are_published_once(store, settings):
    publish_shipped_flows(store, settings.flows_dir, TemplateCatalog(settings.templates_dir))
    with Session(store) as session:
        assert latest_flow(session, "standard").version == 1
        assert latest_flow(session, "gentle").version == 1


def test_payment_ids_and_message_keys_are_unique(store):
    with Session(store) as session:
        case_id = store_case(session, case_body()).case.id
        paid_at = datetime(2026, 11, 20, 10, 30, tzinfo=timezone.utc)
        session.add(Payment(payment_id="P-1", case_id=case_id, amount_cents=100, currency="EUR", paid_at=paid_at))
        session.commit()
        session.add(Payment(payment_id="P-1", case_id=case_id, amount_cents=100, currency="EUR", paid_at=paid_at))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        row = session.get(Payment, "P-1")
        assert as_utc(row.paid_at) == paid_at

        def message() -> Message:
            return Message(key="case-1:send_invoice:1", case_id=case_id, step_id="send_invoice", channel="email",
                           template="invoice", language="nl", recipient="jan@example.nl", body="...", provider="outbox")

        session.add(message())
        session.commit()
        session.add(message())
        with pytest.raises(IntegrityError):
            session.commit()


def test_amounts_are_whole_cents_and_dates_stay_dates(store):
    with Session(store) as session:
        case = store_case(session, case_body(amount_cents=999_999_999)).case
        session.expire_all()
        stored = session.get(Case, case.id)
        assert stored.amount_open_cents == 999_999_999
        from dunflow.store import Invoice

        assert session.get(Invoice, "F-1").due_on == date(2026, 11, 15)


def test_event_keys_are_unique(store):
    with Session(store) as session:
        case_id = store_case(session, case_body()).case.id
        session.add(CaseEvent(key="case-1:1", case_id=case_id, kind="started"))
        session.commit()
        session.add(CaseEvent(key="case-1:1", case_id=case_id, kind="started"))
        with pytest.raises(IntegrityError):
            session.commit()
