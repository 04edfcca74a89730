"""The demo's traffic: numbered prompts, their Zipf-like popularity, and a simulated LLM that
sleeps like a real one and reports token usage (no network)."""

from __future__ import annotations

import hashlib
import random
import time

from ..core.models import LLMResponse

SYSTEM_PROMPT = "You are a concise assistant for a travel company's support desk."
MODELS = ("sim-small", "sim-large")
#: The simulated models' prices, USD per million input and output tokens (given to the
#: cache as ``prices=``, so the demo's money saved is priced like a real model's: a small
#: and a large tier of a typical provider's list).
PRICES: dict[str, tuple[float, float]] = {"sim-small": (0.15, 0.60), "sim-large": (2.50, 10.00)}
_TOPICS = (
    "change my flight",
    "get a refund",
    "add checked luggage",
    "travel with a pet",
    "pick a window seat",
    "cancel a hotel booking",
    "find my booking code",
    "upgrade to business class",
    "use airline miles",
    "report lost luggage",
    "book a rental car",
    "get a visa letter",
)


def prompt_text(k: int) -> str:
    """The user message of prompt number ``k`` (0 = the most popular)."""
    topic = _TOPICS[k % len(_TOPICS)]
    return f"Question {k}: how do I {topic}? (variant {k // len(_TOPICS)})"


def prompt_model(k: int) -> str:
    """Which simulated model prompt ``k`` is sent to (about a third go to the large one)."""
    return MODELS[1] if k % 3 == 0 else MODELS[0]


def simulated_llm(k: int, model: str, latency: float, rng: random.Random) -> LLMResponse:
    """Answer prompt ``k`` like an LLM would: sleep ``latency`` seconds on average (more for
    longer answers and the large model) and report token usage. Deterministic content."""
    h = int.from_bytes(hashlib.blake2b(prompt_text(k).encode(), digest_size=4).digest(), "big")
    prompt_tokens = 30 + h % 50
    completion_tokens = 60 + (h >> 8) % 440
    factor = (0.5 + completion_tokens / 500) * (1.6 if model == MODELS[1] else 1.0)
    time.sleep(max(0.0, latency * factor * rng.uniform(0.8, 1.2)))
    return LLMResponse(
        content=f"[{model}] Here is how to {_TOPICS[k % len(_TOPICS)]}: step 1, step 2, step 3.",
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    )


def zipf_cum_weights(n: int, s: float) -> list[float]:
    """Cumulative weights of ranks 1..n with weight 1/rank**s (for ``random.choices``)."""
    out: list[float] = []
    acc = 0.0
    for rank in range(1, n + 1):
        acc += 1.0 / rank**s
        out.append(acc)
    return out
