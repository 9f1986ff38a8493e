"""Bulk intake: many cases from one CSV or JSON-lines file, as the ERP exports them.

Every row is validated on its own, so a bad row is reported with its number and reason and
never stops the good ones. Rows are stored like single cases (the invoice number is unique, so
a file imported twice starts nothing twice); their workflows start with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from api.errors import ApiError
from api.intake import case_input, flow_for, invoice_conflicts, start_workflow
from api.schemas import CaseIn
from dunflow.case import CaseInput, DebtorInfo, InvoiceInfo
from dunflow.flows import PublishedFlow
from dunflow.outbound import emit_many, started_facts
from dunflow.settings import Settings
from dunflow.store import Case, Debtor, Invoice

MAX_ROWS = 100_000
START_CONCURRENCY = 64  # workflow starts in flight at once
CHUNK = 500  # rows stored, then started, per round
DEBTOR_COLUMNS = {"debtor_id": "id", "debtor_name": "name", "email": "email", "phone": "phone",
                  "address": "address", "language": "language", "debtor_type": "type"}
INVOICE_COLUMNS = {"invoice_number": "number", "amount_cents": "amount_cents", "currency": "currency",
                   "issued_on": "issued_on", "due_on": "due_on"}


@dataclass
class BulkSummary:
    rows: int = 0
    started: int = 0
    existing: int = 0
    rejected: list[dict] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # cases of this file, to count a repeated row once

    def as_dict(self) -> dict:
        return {"rows": self.rows, "started": self.started, "existing": self.existing,
                "rejected_count": len(self.rejected), "rejected": self.rejected}


class BulkFileError(ValueError):
    pass


# --- reading rows ------------------------------------------------------------------------


def read_rows(raw: bytes, content_type: str = "") -> Iterator[tuple[int, dict | str]]:
    """(row number, case body or the reason it cannot be read). CSV rows count from 2 (1 is the header)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BulkFileError("the file is not UTF-8 text; export it as UTF-8 CSV or JSON lines") from None
    is_jsonl = "json" in content_type or text.lstrip().startswith("{")
    return _json_lines(text) if is_jsonl else _csv_rows(text)


def _json_lines(text: str) -> Iterator[tuple[int, dict | str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as error:
            yield number, f"not valid JSON: {error}"


def _csv_rows(text: str) -> Iterator[tuple[int, dict | str]]:
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    missing = {"invoice_number", "currency", "issued_on", "due_on", "debtor_id", "debtor_name"} - set(reader.fieldnames or [])
    if not {"amount_cents", "amount"} & set(reader.fieldnames or []):
        missing.add("amount_cents (or amount)")
    if missing:
        raise BulkFileError(f"the CSV header lacks column(s): {', '.join(sorted(missing))}")
    for number, row in enumerate(reader, start=2):
        try:
            yield number, _case_from_csv(row)
        except ValueError as error:
            yield number, str(error)


def _case_from_csv(row: dict) -> dict:
    def value(column: str) -> str | None:
        text = (row.get(column) or "").strip()
        return text or None

    debtor = {field_name: value(column) for column, field_name in DEBTOR_COLUMNS.items() if value(column) is not None}
    invoice = {field_name: value(column) for column, field_name in INVOICE_COLUMNS.items() if value(column) is not None}
    if "amount_cents" in invoice:
        invoice["amount_cents"] = _whole_number(invoice["amount_cents"], "amount_cents")
    elif value("amount") is not None:
        invoice["amount_cents"] = _cents(value("amount"))
    body = {"debtor": debtor, "invoice": invoice}
    if value("flow"):
        body["flow"] = value("flow")
    return body


def _whole_number(text: str, column: str) -> int:
    if not text.lstrip("-").isdigit():
        raise ValueError(f"{column}: {text!r} is not a whole number of cents")
    return int(text)


def _cents(text: str) -> int:
    """`123.45` or `123,45` (no thousands separators) to 12345, exactly or not at all."""
    try:
        amount = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"amount: {text!r} is not an amount like 123.45") from None
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"amount: {text!r} has more than two decimals")
    return int(cents)


# --- importing ---------------------------------------------------------------------------


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg'].removeprefix('Value error, ')}"
                         for item in error.errors())
    return error.message if isinstance(error, ApiError) else str(error)


def _validated(rows: list[tuple[int, dict | str]], summary: BulkSummary) -> list[tuple[int, CaseIn]]:
    valid = []
    for number, body in rows:
        try:
            if isinstance(body, str):
                raise ValueError(body)
            valid.append((number, CaseIn.model_validate(body)))
        except (ValidationError, ValueError) as error:
            summary.rejected.append({"row": number, "reason": _reason(error)})
    return valid


def _store_chunk(engine: Engine, settings: Settings, rows: list[tuple[int, dict | str]],
                 summary: BulkSummary) -> list[CaseInput]:
    """Store a chunk in one transaction: one query each for the invoices, cases and debtors that
    exist, the new rows added together, one commit."""
    valid = _validated(rows, summary)
    with Session(engine) as session:
        numbers = [body.invoice.number for _, body in valid]
        known = {i.number: i for i in session.exec(select(Invoice).where(Invoice.number.in_(numbers)))}
        cases = {c.invoice_number: c for c in session.exec(select(Case).where(Case.invoice_number.in_(numbers)))}
        debtors = {d.id: d for d in session.exec(
            select(Debtor).where(Debtor.id.in_({body.debtor.id for _, body in valid})))}
        new: _NewRows = _NewRows()
        to_start: list[CaseInput] = []
        for number, body in valid:
            try:
                case, flow = _existing_or_new(session, body, known, cases, debtors, new)
            except ApiError as error:
                summary.rejected.append({"row": number, "reason": error.message})
                continue
            if case.workflow_started or case.id in summary.seen:
                summary.existing += 1
                continue
            summary.seen.add(case.id)
            to_start.append(_input_for(body, case, flow, settings) if flow else case_input(session, case, settings))
        new.save(session)
    return to_start


@dataclass
class _NewRows:
    debtors: dict[str, Debtor] = field(default_factory=dict)
    invoices: list[Invoice] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    flows: dict[str | None, PublishedFlow] = field(default_factory=dict)

    def save(self, session: Session) -> None:
        for batch in (list(self.debtors.values()), self.invoices, self.cases):  # in the order they must exist
            session.add_all(batch)
            session.flush()
        session.commit()


def _existing_or_new(session: Session, body: CaseIn, known: dict, cases: dict, debtors: dict,
                     new: _NewRows) -> tuple[Case, PublishedFlow | None]:
    """The case of this row: the stored one (flow None), or a new one with the flow it pins."""
    wanted = Invoice(debtor_id=body.debtor.id, **body.invoice.model_dump())
    if wanted.number in known:
        conflicts = invoice_conflicts(known[wanted.number], wanted)
        if conflicts:
            raise ApiError(409, f"invoice {wanted.number} already exists with other data: {'; '.join(conflicts)}")
        stored = cases[wanted.number]
        return stored, None
    if body.flow not in new.flows:
        new.flows[body.flow] = flow_for(session, body.flow)
    flow = new.flows[body.flow]
    debtor = debtors.get(body.debtor.id) or Debtor(id=body.debtor.id, name=body.debtor.name)
    for name, value in body.debtor.model_dump(exclude={"id"}).items():
        setattr(debtor, name, value)
    debtors[debtor.id] = new.debtors[debtor.id] = debtor
    case = Case(invoice_number=wanted.number, debtor_id=wanted.debtor_id, flow_name=flow.name,
                flow_version=flow.version, amount_open_cents=wanted.amount_cents, currency=wanted.currency)
    new.invoices.append(wanted)
    new.cases.append(case)
    known[wanted.number], cases[wanted.number] = wanted, case
    return case, flow


def _input_for(body: CaseIn, case: Case, flow: PublishedFlow, settings: Settings) -> CaseInput:
    return CaseInput(
        case_id=case.id, flow=flow.definition, flow_version=flow.version,
        debtor=DebtorInfo(**body.debtor.model_dump()), invoice=InvoiceInfo(**body.invoice.model_dump()),
        day_seconds=settings.day_seconds,
    )


async def _start_all(client: Client, settings: Settings, engine: Engine, cases: list[CaseInput]) -> int:
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def start(case: CaseInput) -> None:
        async with gate:
            await start_workflow(client, settings, case)

    await asyncio.gather(*(start(case) for case in cases))
    ids = [c.case_id for c in cases]
    with Session(engine) as session:
        session.exec(update(Case).where(Case.id.in_(ids)).values(workflow_started=True, status="active"))
        started = session.exec(select(Case).where(Case.id.in_(ids)))
        emit_many(session, "case.started", [started_facts(case) for case in started])  # in the same commit
        session.commit()
    return len(cases)


async def import_cases(engine: Engine, client: Client, settings: Settings, raw: bytes, content_type: str = "",
                       progress: Callable[[int], None] | None = None) -> BulkSummary:
    """Import a whole file. Temporal being unreachable stops the import (rows stored so far start
    when the same file is imported again); anything wrong with a row only rejects that row."""
    rows = list(read_rows(raw, content_type))
    if len(rows) > MAX_ROWS:
        raise BulkFileError(f"the file has {len(rows):,} rows, more than {MAX_ROWS:,}; split it")
    summary = BulkSummary(rows=len(rows))
    chunks = [rows[start:start + CHUNK] for start in range(0, len(rows), CHUNK)]
    starting = None  # the previous chunk's starts run while the next chunk is stored
    for chunk in chunks:
        to_start = await asyncio.to_thread(_store_chunk, engine, settings, chunk, summary)
        if starting is not None:
            await _finish(starting, summary, progress)
        starting = (asyncio.create_task(_start_all(client, settings, engine, to_start)), len(chunk))
    if starting is not None:
        await _finish(starting, summary, progress)
    return summary


async def _finish(starting: tuple[asyncio.Task, int], summary: BulkSummary, progress) -> None:
    task, rows = starting
    summary.started += await task
    if progress is not None:
        progress(rows)
