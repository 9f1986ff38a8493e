"""A copy of an invoice as a PDF, so "can you send the invoice again?" never needs a person."""

from __future__ import annotations

from fpdf import FPDF

from dunflow.money import format_amount
from dunflow.settings import Settings
from dunflow.store import Debtor, Invoice
from dunflow.templates import TemplateCatalog

LABELS = {
    "nl": {"title": "Factuur (kopie)", "number": "Factuurnummer", "issued": "Factuurdatum", "due": "Vervaldatum",
           "amount": "Bedrag", "open": "Nog te betalen", "pay": "Graag betalen op {iban} ten name van {name}, "
           "onder vermelding van {reference}."},
    "en": {"title": "Invoice (copy)", "number": "Invoice number", "issued": "Invoice date", "due": "Due date",
           "amount": "Amount", "open": "Still to pay", "pay": "Please pay to {iban} in the name of {name}, "
           "quoting {reference}."},
}


def _money(cents: int, currency: str, language: str) -> str:
    # the PDF's built-in fonts know Latin-1 only, which has no euro sign
    return format_amount(cents, currency, language).replace("€", "EUR ")


def invoice_pdf(invoice: Invoice, debtor: Debtor, amount_open_cents: int, settings: Settings, language: str) -> bytes:
    words, dates = LABELS[language], TemplateCatalog(settings.templates_dir)
    pdf = FPDF(format="A4")
    pdf.set_title(f"{words['title']} {invoice.number}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, settings.creditor_name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 5, f"{settings.creditor_email} - {settings.creditor_phone}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.multi_cell(0, 5, "\n".join(filter(None, [debtor.name, debtor.address])), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, words["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    rows = [
        (words["number"], invoice.number),
        (words["issued"], dates.long_date(invoice.issued_on, language)),
        (words["due"], dates.long_date(invoice.due_on, language)),
        (words["amount"], _money(invoice.amount_cents, invoice.currency, language)),
        (words["open"], _money(amount_open_cents, invoice.currency, language)),
    ]
    for label, value in rows:
        pdf.cell(55, 7, label)
        pdf.cell(0, 7, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.multi_cell(0, 5, words["pay"].format(iban=settings.creditor_iban, name=settings.creditor_name,
                                             reference=invoice.number))
    return bytes(pdf.output())
