"""Money, in one place: integer nano-dollars (1 USD = 10**9), never floats.

Why nano-dollars: provider prices are quoted per million tokens with up to three decimals
(e.g. $0.075 / 1M), which is a whole number of nano-dollars per token, so per-token cost
is exact. Rounding rule: a computed charge that is not whole is rounded up to the next
nano-dollar (ceil), once per charge. Decimal is used only at the edges (parsing operator
input, Stripe amounts, display).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
NANOS_PER_CENT = NANOS_PER_USD // 100


def usd_to_nanos(amount: Decimal | str | int) -> int:
    """A dollar amount as nano-dollars, exactly (a fraction of a nano-dollar rounds up, as a
    charge does); refuses floats so binary rounding cannot creep in."""
    if isinstance(amount, float):
        raise TypeError("money is never a float; pass a Decimal or a string")
    value = Decimal(amount) * NANOS_PER_USD
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def nanos_to_usd(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS_PER_USD


def usd_plain(nanos: int) -> str:
    """Dollars as the shortest exact decimal string ("0.000035", "12.5", "3"), in integers:
    the gateway writes one per call (the x-nexeon-cost header)."""
    whole, fraction = divmod(abs(nanos), NANOS_PER_USD)
    digits = f"{fraction:09d}".rstrip("0")
    sign = "-" if nanos < 0 else ""
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def cents_to_nanos(cents: int) -> int:
    return cents * NANOS_PER_CENT


def format_usd(nanos: int, places: int = 2) -> str:
    quantum = Decimal(1).scaleb(-places)
    return f"${nanos_to_usd(nanos).quantize(quantum):,}"


def parse_usd(text: str, *, name: str = "the amount") -> Decimal:
    """Operator input (a command's argument) as exact dollars; ValueError says what is wrong."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{name} must be an amount such as 10 or 2.50, not {text!r}") from None
    if not amount.is_finite():
        raise ValueError(f"{name} must be an amount such as 10 or 2.50, not {text!r}")
    return amount
