"""What an answer cost, in integer nano-dollars (1e-9 USD). Pure: no I/O.

A :class:`Prices` object prices a :class:`~fleetcache.core.usage.Usage` for a model name:

1. the user's ``prices=`` mapping first: ``{model: (usd_per_million_input,
   usd_per_million_output[, usd_per_million_cache_read[, usd_per_million_cache_write]])}``
   (an exact model name; a missing cache-read or cache-write price is the input price);
2. else the ``genai-prices`` library (the ``fleetcache[prices]`` extra), when installed: its
   bundled price data for every major provider, cached-input and tiered prices included;
3. else the cost is unknown (``None``): stored as unknown, and its hits are counted
   ``unpriced_hits``, never as $0.

Costs are computed when an entry is written, with the prices of that moment, and rounded to
the nearest nano-dollar (so a 10-token embedding is not rounded to zero).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .usage import Usage

__all__ = ["Prices", "check_prices"]

#: A user's price row: USD per million tokens (input, output, cache read, cache write).
PriceRow = tuple[Decimal, Decimal, Decimal, Decimal]
_NANO_PER_USD = Decimal(1_000_000_000)
_NANO_PER_PER_MILLION = Decimal(1000)  # (USD per 1e6 tokens) -> nano-USD per token


def check_prices(prices: object) -> dict[str, PriceRow]:
    """The ``prices=`` option as exact rows; ``TypeError``/``ValueError`` for a bad one."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise TypeError(
            "prices must be a mapping {model: (usd_per_million_input, "
            f"usd_per_million_output[, cache_read[, cache_write]])}}, not {type(prices).__name__}"
        )
    out: dict[str, PriceRow] = {}
    for model, row in prices.items():
        if not isinstance(model, str):
            raise TypeError(f"prices keys must be model names (str), not {type(model).__name__}")
        if isinstance(row, (str, bytes)) or not isinstance(row, (tuple, list)):
            raise TypeError(
                f"prices[{model!r}] must be a tuple of 2 to 4 numbers (USD per million "
                f"tokens), not {type(row).__name__}"
            )
        if not 2 <= len(row) <= 4:
            raise ValueError(f"prices[{model!r}] must have 2 to 4 numbers, not {len(row)}")
        nums: list[Decimal] = []
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
                raise TypeError(
                    f"prices[{model!r}] must hold numbers (USD per million tokens), "
                    f"not {type(v).__name__}"
                )
            if (isinstance(v, float) and not math.isfinite(v)) or v < 0:
                raise ValueError(f"prices[{model!r}] must hold finite numbers >= 0, not {v!r}")
            nums.append(Decimal(str(v)) if isinstance(v, float) else Decimal(v))
        inp, outp = nums[0], nums[1]
        read = nums[2] if len(nums) > 2 else inp
        write = nums[3] if len(nums) > 3 else inp
        out[model] = (inp, outp, read, write)
    return out


def _nano(usd: Decimal) -> int:
    return int((usd * _NANO_PER_USD).to_integral_value(ROUND_HALF_EVEN))


def _library() -> Callable[[Usage, str], Decimal | None] | None:
    """The genai-prices pricer, or None when the library is not installed."""
    try:
        import genai_prices
    except ImportError:
        return None

    def price(usage: Usage, model: str) -> Decimal | None:
        u = genai_prices.Usage(
            input_tokens=usage.input + usage.cache_read + usage.cache_write,
            output_tokens=usage.output,
            cache_read_tokens=usage.cache_read,
            cache_write_tokens=usage.cache_write,
        )
        try:
            calc = genai_prices.calc_price(u, model)
        except LookupError:
            return None
        total: Any = calc.total_price
        return Decimal(total)

    return price


class Prices:
    """Prices a usage for a model name (see the module docstring).

    ``table``: the user's ``prices=`` mapping (checked by :func:`check_prices`);
    ``library`` [True]: fall back to ``genai-prices`` when it is installed.
    """

    __slots__ = ("_library", "_unknown", "table")

    def __init__(self, table: object = None, *, library: bool = True) -> None:
        self.table = check_prices(table)
        self._library = _library() if library else None
        #: model names the library does not know (a lookup miss is not cheap)
        self._unknown: set[str] = set()

    def cost_nanousd(self, model: str, usage: Usage | None) -> int | None:
        """The answer's cost in integer nano-USD, or ``None`` when unknown (no usage, or
        no price for ``model``)."""
        if usage is None or not model:
            return None
        row = self.table.get(model)
        if row is not None:
            inp, outp, read, write = row
            per_m = (
                usage.input * inp
                + usage.output * outp
                + usage.cache_read * read
                + usage.cache_write * write
            )
            return int((per_m * _NANO_PER_PER_MILLION).to_integral_value(ROUND_HALF_EVEN))
        if self._library is None or model in self._unknown:
            return None
        usd = self._library(usage, model)
        if usd is None:
            if len(self._unknown) < 1000:
                self._unknown.add(model)
            return None
        return _nano(usd)

    def cost_of(self, models: tuple[str, ...], usage: Usage | None) -> int | None:
        """The cost by the first of ``models`` that has a price (the request's model, then
        the response's own model name), else ``None``."""
        for m in models:
            c = self.cost_nanousd(m, usage)
            if c is not None:
                return c
        return None
