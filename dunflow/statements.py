"""Bank statements in, payment candidates out: CAMT.053 (ISO 20022 XML) and MT940.

Only credits are payment candidates. A line is matched to a case when its remittance text
names the invoice number of exactly one open case; anything else goes to an operator with a
reason. Amounts are integer cents (Decimal on the way, never float).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException
from sqlmodel import Session, select

from dunflow.case import FINAL_STATUSES
from dunflow.store import Case, Payment

NO_REFERENCE = {"", "NOTPROVIDED", "NONREF", "NONE"}
MT940_TAG = re.compile(r"^:(20|25|28C?|60[FM]|61|86):", re.MULTILINE)
SWIFT_LINE_WIDTH = 65  # MT940 wraps :86: text hard at this width


class StatementError(ValueError):
    """The file is not a statement dunflow can read; the message says what and where."""


@dataclass(frozen=True)
class StatementLine:
    """One credit on a statement. `line_no`: the transaction's position in the file (1-based)."""

    line_no: int
    payment_id: str
    amount_cents: int
    currency: str
    booked_on: date
    remittance: str
    counterparty: str
    reversal: bool = False  # a reversed debit: money back, not a debtor's payment


@dataclass
class Statement:
    format: str  # camt.053 | mt940
    lines: list[StatementLine] = field(default_factory=list)
    debits: int = 0  # debits (and reversed credits) skipped


@dataclass(frozen=True)
class Match:
    line: StatementLine
    case_id: str | None = None
    invoice_number: str | None = None
    reason: str = ""  # why there is no case, for an operator


# --- reading ---------------------------------------------------------------------------------


def parse_statement(raw: bytes) -> Statement:
    """Read a CAMT.053 or MT940 file, telling them apart by their content."""
    body = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not body:
        raise StatementError("the file is empty")
    if body.startswith(b"<"):
        return parse_camt053(body)
    text = _decode(body)
    if MT940_TAG.search(text) or text.startswith("{1:"):
        return parse_mt940(text)
    raise StatementError("the file is neither CAMT.053 XML (starts with '<') nor MT940 (tags like :20: and :61:)")


def to_cents(amount: str, where: str) -> int:
    """'1234.5' or '1234,5' → 123450, exactly; more than two decimals is an error."""
    try:
        value = Decimal(amount.strip().replace(",", "."))
    except InvalidOperation:
        raise StatementError(f"{where}: {amount!r} is not an amount") from None
    cents = value * 100
    if not value.is_finite() or value < 0 or cents != cents.to_integral_value():
        raise StatementError(f"{where}: {amount!r} is not an amount in whole cents")
    return int(cents)


def fallback_payment_id(account: str, booked_on: date, cents: int, remittance: str, line_no: int) -> str:
    """For a line without a bank reference: the same file gives the same id every time."""
    source = "|".join([account, booked_on.isoformat(), str(cents), remittance, str(line_no)])
    return f"{account}:h{hashlib.sha256(source.encode()).hexdigest()[:24]}"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# --- CAMT.053 --------------------------------------------------------------------------------


def parse_camt053(data: bytes) -> Statement:
    root = _read_xml(data)
    report = _child(root, "BkToCstmrStmt")
    if _local(root.tag) != "Document" or report is None:
        found = _local(root[0].tag) if len(root) else _local(root.tag)
        raise StatementError(f"element {found}: this XML is not a CAMT.053 statement (no Document/BkToCstmrStmt)")
    statement = Statement(format="camt.053")
    counter = itertools.count(1)  # transactions in file order
    for s_index, stmt in enumerate(_children(report, "Stmt"), 1):
        account = _text(stmt, "Acct", "Id", "IBAN") or _text(stmt, "Acct", "Id", "Othr", "Id")
        for e_index, entry in enumerate(_children(stmt, "Ntry"), 1):
            _read_entry(statement, entry, account, f"Stmt[{s_index}]/Ntry[{e_index}]", counter)
    return statement


def _read_xml(data: bytes) -> Element:
    try:
        return safe_xml.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as refused:
        raise StatementError(f"the XML was refused: it declares a DTD or entities ({type(refused).__name__}); "
                             "bank statements never do") from None
    except ParseError as error:
        line, column = error.position
        raise StatementError(f"the XML is malformed at line {line}, column {column}: {error}") from None


def _read_entry(statement: Statement, entry: Element, account: str, where: str, counter) -> None:
    side = _text(entry, "CdtDbtInd")
    if side not in ("CRDT", "DBIT"):
        raise StatementError(f"element {where}/CdtDbtInd: expected CRDT or DBIT, found {side!r}")
    details = _children_path(entry, "NtryDtls", "TxDtls")
    parts = [d for d in details if _amount_element(d) is not None] if len(details) > 1 else []
    if side == "DBIT" or not parts:
        line_no = next(counter)
        if side == "DBIT":
            statement.debits += 1
            return
        statement.lines.append(_camt_line(entry, details[0] if details else None, account, where, line_no))
        return
    for t_index, detail in enumerate(parts, 1):  # a batch: one line per transaction
        statement.lines.append(_camt_line(entry, detail, account, f"{where}/NtryDtls/TxDtls[{t_index}]",
                                          next(counter), batch_index=t_index))


def _camt_line(entry: Element, detail: Element | None, account: str, where: str, line_no: int,
               batch_index: int | None = None) -> StatementLine:
    amount = _amount_element(detail) if batch_index else _child(entry, "Amt")
    if amount is None or not (amount.text or "").strip():
        raise StatementError(f"element {where}/Amt: the amount is missing")
    currency = (amount.get("Ccy") or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise StatementError(f"element {where}/Amt: the Ccy attribute is missing or not a currency code")
    cents = to_cents(amount.text, f"element {where}/Amt")
    booked_on = _camt_date(entry, where)
    remittance = _camt_remittance(detail, entry)
    reference = _camt_reference(entry, detail, batch_index)
    if reference:
        payment_id = f"{account}:{reference}"
    else:
        payment_id = fallback_payment_id(account, booked_on, cents, remittance, line_no)
    reversal = (_text(entry, "RvslInd") or "").lower() == "true"
    return StatementLine(line_no, payment_id, cents, currency, booked_on, remittance,
                         _camt_counterparty(detail), reversal)


def _camt_reference(entry: Element, detail: Element | None, batch_index: int | None) -> str:
    """The bank's reference; an end-to-end id (the payer's own) only together with amount and date."""
    entry_ref = _usable(_text(entry, "AcctSvcrRef"))
    detail_ref = _usable(_text(detail, "Refs", "AcctSvcrRef")) if detail is not None else ""
    if batch_index:
        own = detail_ref or (f"{entry_ref}/{batch_index}" if entry_ref else "")
    else:
        own = entry_ref or detail_ref
    if own:
        return own
    end_to_end = _usable(_text(detail, "Refs", "EndToEndId")) if detail is not None else ""
    if end_to_end:
        amount = _amount_element(detail) if batch_index else _child(entry, "Amt")
        return f"e2e:{end_to_end}:{_text(amount)}:{_text(entry, 'BookgDt', 'Dt')}"
    return ""


def _usable(reference: str) -> str:
    return "" if reference.upper() in NO_REFERENCE else reference


def _camt_date(entry: Element, where: str) -> date:
    for path in (("BookgDt", "Dt"), ("BookgDt", "DtTm"), ("ValDt", "Dt"), ("ValDt", "DtTm")):
        value = _text(entry, *path)
        if value:
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                raise StatementError(f"element {where}/{'/'.join(path)}: {value!r} is not a date") from None
    raise StatementError(f"element {where}/BookgDt: the booking date is missing")


def _camt_remittance(detail: Element | None, entry: Element) -> str:
    texts: list[str] = []
    if detail is not None:
        texts += [t.text.strip() for t in _descendants(detail, "Ustrd") if t.text and t.text.strip()]
        for creditor_ref in _descendants(detail, "CdtrRefInf"):
            texts.append(_text(creditor_ref, "Ref"))
    if not texts:
        texts.append(_text(entry, "AddtlNtryInf"))
    return " ".join(t for t in texts if t)


def _camt_counterparty(detail: Element | None) -> str:
    if detail is None:
        return ""
    debtor = _child(detail, "RltdPties", "Dbtr")
    name = (_text(debtor, "Nm") or _text(debtor, "Pty", "Nm")) if debtor is not None else ""
    return name or _text(detail, "RltdPties", "DbtrAcct", "Id", "IBAN")


def _amount_element(detail: Element | None) -> Element | None:
    if detail is None:
        return None
    amount = _child(detail, "Amt")  # an Element without children is falsy: compare with None
    return amount if amount is not None else _child(detail, "AmtDtls", "TxAmt", "Amt")


# XML helpers that match on local names, so every camt.053.001.xx namespace works.


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name]


def _children_path(element: Element, *names: str) -> list[Element]:
    found = [element]
    for name in names:
        found = [child for parent in found for child in _children(parent, name)]
    return found


def _child(element: Element | None, *names: str) -> Element | None:
    found = _children_path(element, *names) if element is not None else []
    return found[0] if found else None


def _text(element: Element | None, *names: str) -> str:
    found = _child(element, *names) if names else element
    return (found.text or "").strip() if found is not None else ""


def _descendants(element: Element, name: str) -> list[Element]:
    return [node for node in element.iter() if _local(node.tag) == name]


# --- MT940 -----------------------------------------------------------------------------------


def parse_mt940(text: str) -> Statement:
    import mt940  # the PyPI package mt-940
    from mt940.options import Options

    options = Options(reversal_sign=True, case_insensitive_marks=True, merge_keeps_values=True)
    statement = Statement(format="mt940")
    line_no = 0
    for block in re.split(r"(?m)^(?=:20:)", text.replace("\r\n", "\n")):
        if not block.lstrip().startswith(":20:"):
            continue
        transactions = mt940.models.Transactions(options=options)
        with _quiet("mt940"):
            try:
                transactions.parse(block)
            except Exception as error:  # the library raises bare RuntimeErrors and ValueErrors
                raise StatementError(_mt940_problem(text, error)) from None
        account = str(transactions.data.get("account_identification") or "").strip()
        for transaction in transactions:
            line_no += 1
            _read_mt940_transaction(statement, transaction.data, account, line_no, text)
    return statement


def _read_mt940_transaction(statement: Statement, data: dict, account: str, line_no: int, text: str) -> None:
    mark = str(data.get("status") or "").upper()
    if mark not in ("C", "RD"):  # D is a debit, RC a reversed credit: money out
        statement.debits += 1
        return
    where = f"line {_line_of(text, ':61:', line_no)} (:61: number {line_no})"
    currency = str(data.get("currency") or "").upper()
    if not currency:
        raise StatementError(f"{where}: no currency; the statement lacks an opening balance (:60F:)")
    cents = to_cents(str(abs(data["amount"].amount)), where)
    booked_on = _plain_date(data.get("entry_date") or data["date"])
    remittance = _join_wrapped(str(data.get("transaction_details") or ""))
    reference = _usable(str(data.get("bank_reference") or "").strip())
    if reference:
        payment_id = f"{account}:{reference}"
    else:
        payment_id = fallback_payment_id(account, booked_on, cents, remittance, line_no)
    statement.lines.append(StatementLine(line_no, payment_id, cents, currency, booked_on, remittance,
                                         _mt940_counterparty(remittance), reversal=mark == "RD"))


def _join_wrapped(details: str) -> str:
    """:86: lines wrap hard at 65 characters (the first holds the tag too); a shorter line ended a word."""
    lines = details.split("\n")
    joined = lines[0]
    for index, line in enumerate(lines[1:]):
        full = SWIFT_LINE_WIDTH - (len(":86:") if index == 0 else 0)
        joined += ("" if len(lines[index]) >= full else " ") + line
    return joined.strip()


def _mt940_counterparty(remittance: str) -> str:
    found = re.search(r"/NAME/([^/]*)", remittance)
    return found.group(1).strip() if found else ""


def _plain_date(value) -> date:
    return date(value.year, value.month, value.day)


def _mt940_problem(text: str, error: Exception) -> str:
    args = getattr(error, "args", ())
    fragment = args[2] if len(args) >= 3 and isinstance(args[2], str) else ""
    tag_name = type(args[1]).__name__ if len(args) >= 2 else ""
    if fragment:
        line = _line_of(text, fragment.split("\n")[0], 1)
        return f"MT940 line {line}: cannot read {tag_name or 'this tag'} from {fragment.splitlines()[0]!r}"
    return f"MT940 could not be read: {error}"


def _line_of(text: str, needle: str, occurrence: int) -> int:
    """The 1-based line of the n-th occurrence of `needle` in `text` (0 when not found)."""
    start = -1
    for _ in range(occurrence):
        start = text.find(needle, start + 1)
        if start < 0:
            return 0
    return text.count("\n", 0, start) + 1


@contextmanager
def _quiet(logger_name: str):
    """The mt940 library logs every failed match at ERROR; our message says it better."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


# --- matching --------------------------------------------------------------------------------

WORD = re.compile(r"[A-Z0-9]+(?:[-._][A-Z0-9]+)*")
MAX_WORDS = 6  # an invoice number typed with spaces: "F 2026 001"


def compact(text: str) -> str:
    """An invoice number as compared: upper case, letters and digits only."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def mentioned_keys(remittance: str) -> set[str]:
    """Every compact form of one or more whole words in a row (joined by spaces or slashes)."""
    text = remittance.upper()
    words = list(WORD.finditer(text))
    keys: set[str] = set()
    for start in range(len(words)):
        key = ""
        for end in range(start, min(start + MAX_WORDS, len(words))):
            if end > start and text[words[end - 1].end():words[end].start()].strip(" /\t\n") != "":
                break
            key += compact(words[end].group())
            keys.add(key)
    return keys


def match_lines(session: Session, lines: list[StatementLine]) -> list[Match]:
    """Each line with its case, or with the reason an operator must look at it. Never a guess."""
    open_cases = _open_cases_by_key(session)
    return [_match_line(session, line, open_cases) for line in lines]


def _open_cases_by_key(session: Session) -> dict[str, list[Case]]:
    by_key: dict[str, list[Case]] = {}
    for case in session.exec(select(Case).where(Case.status.not_in(FINAL_STATUSES))):
        key = compact(case.invoice_number)
        if key:
            by_key.setdefault(key, []).append(case)
    return by_key


def _match_line(session: Session, line: StatementLine, open_cases: dict[str, list[Case]]) -> Match:
    recorded = session.get(Payment, line.payment_id)
    if recorded is not None:  # imported before: the same case again, whatever its status now
        case = session.get(Case, recorded.case_id)
        return Match(line, case.id, case.invoice_number)
    if line.reversal:
        return Match(line, reason="a reversed debit (money back), not a payment of an invoice")
    if line.amount_cents <= 0:
        return Match(line, reason="the amount is zero")
    candidates = {case.id: case for key in mentioned_keys(line.remittance) for case in open_cases.get(key, [])}
    if not candidates:
        return Match(line, reason="no invoice number of an open case found in the remittance information")
    if len(candidates) > 1:
        numbers = ", ".join(sorted(case.invoice_number for case in candidates.values()))
        return Match(line, reason=f"the remittance names several open invoices ({numbers}); which one is unclear")
    case = next(iter(candidates.values()))
    if case.currency != line.currency:
        return Match(line, reason=f"invoice {case.invoice_number} is in {case.currency}, the payment in {line.currency}")
    return Match(line, case.id, case.invoice_number)


def booked_at(line: StatementLine) -> datetime:
    """The booking date as a moment: midnight UTC."""
    return datetime.combine(line.booked_on, time(0), tzinfo=timezone.utc)
