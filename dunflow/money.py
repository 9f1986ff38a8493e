"""Money is an amount in integer cents plus an ISO 4217 currency code. Never floats."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

# Currencies dunflow accepts, with their symbol. All have two minor digits.
CURRENCY_SYMBOLS: dict[str, str] = {
    "EUR": "€",
    "USD": "$",
    "GBP": "£",
    "CHF": "CHF ",
    "DKK": "DKK ",
    "SEK": "SEK ",
    "NOK": "NOK ",
    "PLN": "PLN ",
    "CZK": "CZK ",
}


def check_currency(code: str) -> str:
    """Return the code when dunflow accepts it, else raise ValueError saying which are accepted."""
    if code not in CURRENCY_SYMBOLS:
        accepted = ", ".join(sorted(CURRENCY_SYMBOLS))
        raise ValueError(f"unknown currency {code!r}: use an ISO 4217 code, one of {accepted}")
    return code


def format_amount(cents: int, currency: str, language: str = "nl") -> str:
    """`€ 1.234,56` in Dutch, `€1,234.56` in English."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    grouped = f"{whole:,}"
    symbol = CURRENCY_SYMBOLS.get(currency, f"{currency} ")
    if language == "nl":
        grouped = grouped.replace(",", ".")
        spacer = "" if symbol.endswith(" ") else " "
        return f"{sign}{symbol}{spacer}{grouped},{part:02d}"
    return f"{sign}{symbol}{grouped}.{part:02d}"


def split_into_terms(total_cents: int, terms: int) -> list[int]:
    """Split an amount into `terms` instalments that add up to the cent; earlier terms carry the rest."""
    if terms < 1:
        raise ValueError("a plan needs at least one term")
    base, rest = divmod(total_cents, terms)
    return [base + (1 if index < rest else 0) for index in range(terms)]


def parse_amount(text: str) -> int:
    """`3000`, `3000.00` or `3000,5` in euros to cents; raise ValueError saying what is expected."""
    match = re.fullmatch(r"(\d+)(?:[.,](\d{1,2}))?", text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an amount: give euros with at most two decimals and no thousands "
                         "separators, e.g. 3000.00")
    whole, part = match.groups()
    return int(whole) * 100 + int((part or "0").ljust(2, "0"))


# Statutory scale for extrajudicial collection costs (Besluit vergoeding voor buitengerechtelijke
# incassokosten, art. 2): (upper bound of the band in cents or None, rate per mille).
COLLECTION_COST_BANDS = ((250_000, 150), (500_000, 100), (1_000_000, 50), (20_000_000, 10), (None, 5))
MAX_AMOUNT_CENTS = 10**14  # a trillion in any currency: far above any invoice, far below the store's limit
COLLECTION_COSTS_MIN_CENTS = 4_000
COLLECTION_COSTS_MAX_CENTS = 677_500
VAT_PER_MILLE = 210  # Dutch standard VAT rate, 21%


@dataclass(frozen=True)
class CostBand:
    """One band of the scale: `per_mille` of the part of the principal between `lower` and `upper`."""

    lower_cents: int
    upper_cents: int | None
    per_mille: int
    base_cents: int
    cents: int


@dataclass(frozen=True)
class CollectionCosts:
    principal_cents: int
    debtor_type: str
    bands: tuple[CostBand, ...]
    rule: str  # scale | minimum | maximum | agreed
    costs_cents: int  # before VAT
    vat_cents: int
    total_cents: int

    def as_dict(self) -> dict:
        return asdict(self) | {"bands": [asdict(band) for band in self.bands]}

    def describe(self, currency: str = "EUR", language: str = "en") -> str:
        """One line for a timeline: the total and how it was reached."""
        money = lambda cents: format_amount(cents, currency, language)  # noqa: E731
        parts = [f"{band.per_mille / 10:g}% of {money(band.base_cents)} = {money(band.cents)}"
                 for band in self.bands if band.base_cents]
        text = f"{money(self.total_cents)} collection costs on {money(self.principal_cents)}: " + "; ".join(parts)
        if self.rule != "scale":
            text += f" ({self.rule} applies: {money(self.costs_cents)})"
        if self.vat_cents:
            text += f" + VAT {money(self.vat_cents)}"
        return text


def _round_per_mille(cents: int, per_mille: int) -> int:
    """`cents * per_mille / 1000`, rounded half up to the cent."""
    return (cents * per_mille + 500) // 1000


def _scale_bands(principal_cents: int) -> tuple[CostBand, ...]:
    bands, lower = [], 0
    for upper, per_mille in COLLECTION_COST_BANDS:
        base = max(0, (principal_cents if upper is None else min(principal_cents, upper)) - lower)
        bands.append(CostBand(lower, upper, per_mille, base, _round_per_mille(base, per_mille)))
        if upper is None:
            break
        lower = upper
    return tuple(bands)


def collection_costs(principal_cents: int, debtor_type: str = "consumer", *, vat: bool = False,
                     agreed_per_mille: int | None = None) -> CollectionCosts:
    """The extrajudicial collection costs for a principal, band by band.

    Consumers never pay more than the scale (minimum 40, maximum 6,775 euros). With a business a
    contract may set another percentage (`agreed_per_mille`); the 40 euro minimum still holds.
    `vat` adds 21% VAT: only when the creditor cannot reclaim the VAT on the costs.
    """
    if principal_cents <= 0:
        return CollectionCosts(principal_cents, debtor_type, (), "scale", 0, 0, 0)
    bands = _scale_bands(principal_cents)
    costs, rule = sum(band.cents for band in bands), "scale"
    if debtor_type == "business" and agreed_per_mille is not None:
        costs, rule = _round_per_mille(principal_cents, agreed_per_mille), "agreed"
    elif costs > COLLECTION_COSTS_MAX_CENTS:
        costs, rule = COLLECTION_COSTS_MAX_CENTS, "maximum"
    if costs < COLLECTION_COSTS_MIN_CENTS:
        costs, rule = COLLECTION_COSTS_MIN_CENTS, "minimum"
    vat_cents = _round_per_mille(costs, VAT_PER_MILLE) if vat else 0
    return CollectionCosts(principal_cents, debtor_type, bands, rule, costs, vat_cents, costs + vat_cents)


def statutory_collection_costs(principal_cents: int) -> int:
    """The statutory collection costs for a principal, before VAT."""
    return collection_costs(principal_cents).costs_cents
