"""Request bodies of the API, validated before anything is written."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StrictInt, field_validator, model_validator

from dunflow.flow import ChannelEventKind
from dunflow.money import MAX_AMOUNT_CENTS, check_currency

# A store id: a positive 64-bit integer (larger numbers name nothing and the database refuses them).
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]

E164 = r"^\+[1-9][0-9]{6,14}$"
Currency = Annotated[str, AfterValidator(check_currency), Field(description="ISO 4217 code, e.g. EUR")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DebtorIn(_Body):
    id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, description="international format, e.g. +31612345678")
    address: str | None = Field(default=None, max_length=500, description="postal address, lines separated by newlines")
    language: Literal["nl", "en"] = "nl"
    type: Literal["consumer", "business"] = "consumer"

    @field_validator("phone")
    @classmethod
    def _international(cls, phone: str | None) -> str | None:
        if phone is None:
            return None
        compact = phone.replace(" ", "").replace("-", "")
        if not re.match(E164, compact):
            raise ValueError(f"phone {phone!r} must be in international format, e.g. +31612345678")
        return compact


class InvoiceIn(_Body):
    number: str = Field(min_length=1, max_length=100)
    amount_cents: StrictInt = Field(gt=0, le=MAX_AMOUNT_CENTS, description="the amount in cents: 12345 is 123.45")
    currency: Currency
    issued_on: date
    due_on: date

    @model_validator(mode="after")
    def _due_after_issue(self) -> "InvoiceIn":
        if self.due_on < self.issued_on:
            raise ValueError(f"due_on {self.due_on} is before issued_on {self.issued_on}")
        return self


class CaseIn(_Body):
    debtor: DebtorIn
    invoice: InvoiceIn
    flow: str | None = Field(default=None, description="flow name; default: standard")


class PaymentIn(_Body):
    payment_id: str = Field(min_length=1, max_length=200)
    amount_cents: StrictInt = Field(gt=0, le=MAX_AMOUNT_CENTS)
    currency: Currency
    paid_at: datetime


class DisputeIn(_Body):
    reason: str = Field(min_length=1, max_length=1000)


class DisputeResolutionIn(_Body):
    outcome: Literal["upheld", "rejected"]
    note: str = Field(default="", max_length=1000)


class PromiseIn(_Body):
    promised_on: date
    amount_cents: StrictInt = Field(gt=0, le=MAX_AMOUNT_CENTS)


class PlanTermIn(_Body):
    due_on: date
    amount_cents: StrictInt = Field(gt=0, le=MAX_AMOUNT_CENTS)


class PlanIn(_Body):
    """A plan for the amount open: its terms, or a number of monthly terms the flow allows."""

    plan_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                                description="your id for this plan: the same id again changes nothing")
    terms: list[PlanTermIn] | None = Field(default=None, min_length=1, max_length=36)
    term_count: int | None = Field(default=None, ge=2, le=36)
    by: str = Field(default="operator", min_length=1, max_length=100)

    @model_validator(mode="after")
    def _terms_or_count(self) -> "PlanIn":
        if (self.terms is None) == (self.term_count is None):
            raise ValueError("give either `terms` or `term_count`")
        return self


class OperatorActionIn(_Body):
    by: str = Field(default="operator", min_length=1, max_length=100)
    note: str = Field(default="", max_length=1000)


class ChannelEventIn(_Body):
    message_id: RowId
    kind: ChannelEventKind
    key: str | None = Field(default=None, pattern=r"^[0-9*#]$")
    event_id: str | None = Field(default=None, max_length=200, description="the provider's event id; repeats are ignored")

    @model_validator(mode="after")
    def _key_with_key_pressed(self) -> "ChannelEventIn":
        if (self.kind == "key_pressed") != (self.key is not None):
            raise ValueError("`key` is required with kind key_pressed and only there")
        return self
