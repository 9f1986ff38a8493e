"""Bank statements: CAMT.053 and MT940 read into credit lines, exact cents, stable ids, safe XML,
and matching that never guesses."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlmodel import Session

from dunflow.statements import (
    StatementError,
    StatementLine,
    match_lines,
    mentioned_keys,
    parse_statement,
    to_cents,
)
from dunflow.store import Case, Debtor, Invoice, Payment

CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
ACCOUNT = "NL91ABNA0417164300"


# --- sample files (also used by tests/api/test_statements.py) -------------------------------


def camt_entry(amount: str, side: str = "CRDT", remittance: str = "", ref: str | None = None,
               end_to_end: str = "NOTPROVIDED", debtor: str = "Jan de Vries", booked: str = "2026-12-01",
               currency: str = "EUR") -> str:
    reference = f"<AcctSvcrRef>{ref}</AcctSvcrRef>" if ref else ""
    return f"""
      <Ntry>
        <Amt Ccy="{currency}">{amount}</Amt>
        <CdtDbtInd>{side}</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>{booked}</Dt></BookgDt>
        <ValDt><Dt>{booked}</Dt></ValDt>
        {reference}
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>{end_to_end}</EndToEndId></Refs>
          <AmtDtls><TxAmt><Amt Ccy="{currency}">{amount}</Amt></TxAmt></AmtDtls>
          <RltdPties><Dbtr><Nm>{debtor}</Nm></Dbtr>
            <DbtrAcct><Id><IBAN>NL02RABO0123456789</IBAN></Id></DbtrAcct></RltdPties>
          <RmtInf><Ustrd>{remittance}</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>"""


def camt053(*entries: str, version: str = "02") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{CAMT_NS.format(version=version)}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>STMT-20261201-001</MsgId><CreDtTm>2026-12-01T18:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>20261201-1</Id>
      <ElctrncSeqNb>335</ElctrncSeqNb>
      <CreDtTm>2026-12-01T18:00:00</CreDtTm>
      <Acct><Id><IBAN>{ACCOUNT}</IBAN></Id><Ccy>EUR</Ccy></Acct>
      <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1000.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-12-01</Dt></Dt></Bal>
      {''.join(entries)}
    </Stmt>
  </BkToCstmrStmt>
</Document>""".encode()


def mt940_file(*transactions: tuple[str, str, str]) -> bytes:
    """transactions: (mark + amount as on :61:, e.g. 'C245,00', bank reference, :86: text)."""
    lines = [":20:STMT20261201", f":25:{ACCOUNT}", ":28C:00335/001", ":60F:C261130EUR1000,00"]
    for amount, reference, details in transactions:
        lines += [f":61:2612011201{amount}NTRFNONREF//{reference}", f":86:{details}"]
    lines.append(":62F:C261201EUR1194,50")
    return ("\r\n".join(lines) + "\r\n").encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Document><BkToCstmrStmt><Stmt><Ntry><Amt Ccy="EUR">&lol4;</Amt></Ntry></Stmt></BkToCstmrStmt></Document>"""


# --- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "cents"), [
    ("1234.5", 123450), ("1234,50", 123450), ("0.01", 1), ("245", 24500), ("19999999.99", 1999999999),
    ("0.29", 29), ("1.10", 110),
])
def test_amounts_become_exact_cents(amount, cents):
    assert to_cents(amount, "here") == cents


@pytest.mark.parametrize("amount", ["1.234", "abc", "-5.00", "NaN", ""])
def test_amounts_that_are_not_whole_cents_are_refused(amount):
    with pytest.raises(StatementError, match="here"):
        to_cents(amount, "here")


@pytest.mark.parametrize("version", ["02", "04", "08"])
def test_camt053_credits_are_lines_and_debits_are_skipped(version):
    statement = parse_statement(camt053(
        camt_entry("1234.5", remittance="Factuur F-2026-001", ref="BANKREF-1"),
        camt_entry("50.00", side="DBIT", remittance="Huur", ref="BANKREF-2"),
        camt_entry("0.29", remittance="onbekend", end_to_end="E2E-77"),
        version=version))
    assert statement.format == "camt.053" and statement.debits == 1
    first, second = statement.lines
    assert first == StatementLine(1, f"{ACCOUNT}:BANKREF-1", 123450, "EUR", date(2026, 12, 1),
                                  "Factuur F-2026-001", "Jan de Vries")
    assert (second.line_no, second.amount_cents, second.remittance) == (3, 29, "onbekend")
    assert "E2E-77" in second.payment_id


def test_camt053_without_references_gets_stable_hashed_ids():
    data = camt053(camt_entry("10.00", remittance="a"), camt_entry("10.00", remittance="a"))
    once, again = parse_statement(data), parse_statement(data)
    assert [line.payment_id for line in once.lines] == [line.payment_id for line in again.lines]
    assert len({line.payment_id for line in once.lines}) == 2  # same data, other line: another payment


def test_camt053_reversed_debit_is_marked():
    entry = camt_entry("10.00", remittance="F-1", ref="R-1").replace("<Sts>", "<RvslInd>true</RvslInd><Sts>")
    (line,) = parse_statement(camt053(entry)).lines
    assert line.reversal


def test_mt940_credits_reversals_and_debits():
    statement = parse_statement(mt940_file(
        ("C1234,5", "BANKREF0001", "/TRTP/SEPA OVERBOEKING/NAME/J. de Vries/REMI/Factuur F-2026-001/"),
        ("D50,00", "BANKREF0002", "Huur december"),
        ("RC12,34", "BANKREF0003", "Storno F-2026-001"),
        ("RD7,00", "BANKREF0004", "Terugboeking incasso"),
        ("C0,29", "NONREF", "zomaar"),
    ))
    assert statement.format == "mt940" and statement.debits == 2  # D, and RC (a reversed credit)
    credit, reversed_debit, unreferenced = statement.lines
    assert (credit.line_no, credit.amount_cents, credit.currency, credit.booked_on) == (1, 123450, "EUR",
                                                                                        date(2026, 12, 1))
    assert credit.payment_id == f"{ACCOUNT}:BANKREF0001" and credit.counterparty == "J. de Vries"
    assert "F-2026-001" in credit.remittance and not credit.reversal
    assert reversed_debit.reversal and reversed_debit.amount_cents == 700
    assert unreferenced.payment_id.startswith(f"{ACCOUNT}:h")
    assert unreferenced.payment_id == parse_statement(mt940_file(
        ("C1234,5", "BANKREF0001", "/TRTP/SEPA OVERBOEKING/NAME/J. de Vries/REMI/Factuur F-2026-001/"),
        ("D50,00", "BANKREF0002", "Huur december"),
        ("RC12,34", "BANKREF0003", "Storno F-2026-001"),
        ("RD7,00", "BANKREF0004", "Terugboeking incasso"),
        ("C0,29", "NONREF", "zomaar"),
    )).lines[2].payment_id


def test_mt940_wrapped_details_are_joined():
    first = "A" * 49 + " Factuur F-20"  # 61 characters: with ":86:" a full 65-character line
    wrapped = mt940_file(("C10,00", "B1", f"{first}\n26-001 dank\nJan de Vries"))
    (line,) = parse_statement(wrapped).lines
    assert line.remittance.endswith("Factuur F-2026-001 dank Jan de Vries")


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "empty"),
    (b"hello world", "neither CAMT.053"),
    (b"<Document><BkToCstmrStmt><Stmt>", "malformed at line 1"),
    (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.054.001.02'><BkToCstmrDbtCdtNtfctn/></Document>",
     "not a CAMT.053"),
    (BILLION_LAUGHS, "refused"),
    (camt053(camt_entry("12.345", remittance="x", ref="R")), r"Ntry\[1\]/Amt"),
    (camt053(camt_entry("12.00", side="BOTH", remittance="x", ref="R")), "CdtDbtInd"),
    (b":20:X\n:25:NL91\n:60F:C261130EUR1,00\n:61:garbage\n", "MT940 line 4"),
])
def test_bad_files_say_what_and_where(data, problem):
    with pytest.raises(StatementError, match=problem):
        parse_statement(data)


# --- matching --------------------------------------------------------------------------------


def test_invoice_numbers_are_whole_words_with_spaces_and_dashes_forgiven():
    assert "F2026001" in mentioned_keys("betaling factuur f 2026 001 dank")
    assert "F2026001" in mentioned_keys("/REMI/F-2026-001/EREF/123")
    assert "F2026001" in mentioned_keys("Factuurnr:F2026-001.")
    assert "F2026001" not in mentioned_keys("F-2026-0011")
    assert "F2026001" not in mentioned_keys("F-2026-001-2")
    assert "F2026001" not in mentioned_keys("XF-2026-001")


def add_case(session: Session, number: str, status: str = "active", currency: str = "EUR") -> Case:
    if session.get(Debtor, "D-1") is None:
        session.add(Debtor(id="D-1", name="Jan"))
    session.add(Invoice(number=number, debtor_id="D-1", amount_cents=1000, currency=currency,
                        issued_on=date(2026, 11, 1), due_on=date(2026, 11, 15)))
    session.commit()  # no relationships declared: insert the parents first
    case = Case(invoice_number=number, debtor_id="D-1", flow_name="standard", flow_version=1, status=status,
                amount_open_cents=1000, currency=currency)
    session.add(case)
    session.commit()
    return case


def line(remittance: str, currency: str = "EUR", payment_id: str = "P") -> StatementLine:
    return StatementLine(1, payment_id, 1000, currency, date(2026, 12, 1), remittance, "")


def test_matching_never_guesses(engine):
    with Session(engine) as session:
        one = add_case(session, "F-2026-001")
        add_case(session, "F-2026-002")
        add_case(session, "F-2026-003", status="paid")
        add_case(session, "USD-7", currency="USD")
        matches = match_lines(session, [
            line("Factuur F 2026 001"), line("F-2026-001 en F-2026-002"), line("F-2026-003"),
            line("geen nummer"), line("USD-7"), line("F-2026-001", currency="USD"),
        ])
    assert (matches[0].case_id, matches[0].invoice_number) == (one.id, "F-2026-001")
    reasons = [match.reason for match in matches[1:]]
    assert all(match.case_id is None for match in matches[1:])
    assert "several open invoices (F-2026-001, F-2026-002)" in reasons[0]
    assert "no invoice number of an open case" in reasons[1] and "no invoice number" in reasons[2]
    assert "is in USD, the payment in EUR" in reasons[3]
    assert "is in EUR, the payment in USD" in reasons[4]


def test_a_line_recorded_before_keeps_its_case(engine):
    with Session(engine) as session:
        case = add_case(session, "F-9", status="paid")
        session.add(Payment(payment_id="BANK-1", case_id=case.id, amount_cents=1000, currency="EUR",
                            paid_at=datetime(2026, 12, 1, tzinfo=timezone.utc)))
        session.commit()
        (match,) = match_lines(session, [line("whatever", payment_id="BANK-1")])
    assert (match.case_id, match.invoice_number) == (case.id, "F-9")
