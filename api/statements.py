"""Import a bank statement: every matched credit becomes a payment of its case, the rest goes
to an operator with a reason. Shared by `POST /api/statements` and `dunflow import-statement`."""

from __future__ import annotations

import logging

from sqlmodel import Session
from temporalio.client import Client

from api.errors import ApiError
from api.schemas import PaymentIn
from api.signalling import record_payment
from dunflow.statements import Match, booked_at, match_lines, parse_statement
from dunflow.store import Case

log = logging.getLogger("dunflow.statements")


async def import_statement(session: Session, client: Client, raw: bytes) -> dict:
    """Parse, match and record. Raises StatementError when the file cannot be read at all."""
    statement = parse_statement(raw)
    summary = {"format": statement.format, "lines": len(statement.lines) + statement.debits,
               "paid": [], "duplicates": [], "unmatched": [], "skipped_debits": statement.debits}
    for match in match_lines(session, statement.lines):
        if match.case_id is None:
            summary["unmatched"].append(_unmatched(match, match.reason))
            continue
        result = await _record(session, client, match)
        if "reason" in result:
            summary["unmatched"].append(result)
        else:
            summary["duplicates" if result["status"] == "duplicate" else "paid"].append(result)
    return summary


async def _record(session: Session, client: Client, match: Match) -> dict:
    """One line's payment; its failure is reported on the line and never stops the others."""
    line = match.line
    try:
        payment = PaymentIn(payment_id=line.payment_id, amount_cents=line.amount_cents, currency=line.currency,
                            paid_at=booked_at(line))
        status = await record_payment(session, client, session.get(Case, match.case_id), payment)
    except ValueError as invalid:  # pydantic's ValidationError
        return _unmatched(match, f"invoice {match.invoice_number}: {invalid}")
    except ApiError as error:
        session.rollback()
        return _unmatched(match, f"invoice {match.invoice_number}: {error.message}")
    except Exception:
        session.rollback()
        log.exception("statement line %s (payment %s) could not be recorded", line.line_no, line.payment_id)
        return _unmatched(match, f"invoice {match.invoice_number}: an internal error (logged); import the file "
                                 "again later, recorded lines are not repeated")
    return {"line_no": line.line_no, "payment_id": line.payment_id, "case_id": match.case_id,
            "invoice_number": match.invoice_number, "amount_cents": line.amount_cents, "status": status}


def _unmatched(match: Match, reason: str) -> dict:
    line = match.line
    return {"line_no": line.line_no, "payment_id": line.payment_id, "amount_cents": line.amount_cents,
            "currency": line.currency, "booked_on": line.booked_on.isoformat(), "remittance": line.remittance,
            "counterparty": line.counterparty, "reason": reason}
