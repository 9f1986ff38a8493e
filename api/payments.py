"""Payment providers behind one small interface: where the portal sends a debtor to pay, and
what a provider's report says happened. With DUNFLOW_MOLLIE_API_KEY set, payments go through
Mollie (its official SDK); without, through the local test provider page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Protocol
from urllib.parse import quote

from mollie.api.client import Client as MollieClient
from mollie.api.error import Error as MollieError
from mollie.api.error import NotFoundError as MollieNotFound

from dunflow.settings import Settings
from dunflow.store import Case


class ProviderUnavailable(RuntimeError):
    """The provider could not be asked; try again later."""


@dataclass(frozen=True)
class ProviderPayment:
    payment_id: str  # dunflow's: "<provider>:<provider's id>", unique per payment
    case_id: str
    amount_cents: int
    currency: str
    paid: bool
    paid_at: datetime | None


class PaymentProvider(Protocol):
    name: str

    def checkout_url(self, case: Case, amount_cents: int, portal_base: str, language: str, attempt: str) -> str:
        """Where the debtor pays `amount_cents` of the case; `attempt` makes a double click one payment."""

    def report(self, provider_id: str) -> ProviderPayment | None:
        """The payment as the provider knows it; None when it knows no such payment."""


def cents_to_value(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def value_to_cents(value: str) -> int:
    return int(Decimal(value) * 100)


class TestPaymentProvider:
    """dunflow's own stand-in: a page where the debtor chooses success or failure."""

    name = "testpay"

    def checkout_url(self, case: Case, amount_cents: int, portal_base: str, language: str, attempt: str) -> str:
        return (f"{portal_base}/testpay?invoice={quote(case.invoice_number)}&amount={amount_cents}"
                f"&payment={attempt}&lang={language}")

    def report(self, provider_id: str) -> ProviderPayment | None:
        return None  # its report arrives signed, with everything in it (see /webhooks/testpay)


class MolliePaymentProvider:
    name = "mollie"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = MollieClient(api_endpoint=settings.mollie_api_base)
        self.client.set_api_key(settings.mollie_api_key)

    def checkout_url(self, case: Case, amount_cents: int, portal_base: str, language: str, attempt: str) -> str:
        public = self.settings.effective_public_url
        try:
            payment = self.client.payments.create({
                "amount": {"currency": case.currency, "value": cents_to_value(amount_cents)},
                "description": f"{self.settings.creditor_name} factuur {case.invoice_number}",
                "redirectUrl": f"{public}{portal_base}?done=returned&lang={language}",
                "webhookUrl": f"{public}/webhooks/mollie",
                "locale": "nl_NL" if language == "nl" else "en_US",
                "metadata": {"case_id": case.id, "invoice_number": case.invoice_number},
            }, idempotency_key=attempt)
        except MollieError as error:
            raise ProviderUnavailable(f"Mollie refused the payment: {error}") from None
        return payment.checkout_url

    def report(self, provider_id: str) -> ProviderPayment | None:
        try:
            payment = self.client.payments.get(provider_id)
        except MollieNotFound:
            return None
        except MollieError as error:
            raise ProviderUnavailable(f"Mollie could not be asked about {provider_id}: {error}") from None
        case_id = (payment.metadata or {}).get("case_id")
        if not case_id:
            return None  # not a payment dunflow made
        paid_at = datetime.fromisoformat(payment.paid_at) if payment.paid_at else None
        return ProviderPayment(
            payment_id=f"mollie:{payment.id}", case_id=case_id, currency=payment.amount["currency"],
            amount_cents=value_to_cents(payment.amount["value"]), paid=payment.is_paid(),
            paid_at=paid_at.astimezone(timezone.utc) if paid_at else None)


def payment_provider(settings: Settings) -> PaymentProvider:
    return MolliePaymentProvider(settings) if settings.mollie_api_key else TestPaymentProvider()
