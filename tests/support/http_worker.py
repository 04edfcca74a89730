"""One process of the two-process transport test: its own OpenAI SDK client on its own fake
upstream, cached on a shared Redis namespace. Prints one JSON line: upstream calls made, the
``x-fleetcache`` header of each answer and the texts received.

    python -m tests.support.http_worker URL PREFIX MODE

MODE: ``plain`` (one non-streamed call) or ``stream`` (one streamed call).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx2
import openai

from fleetcache import RedisExactCache
from fleetcache.integrations.openai import cached

from .http_fakes import Upstream

MESSAGES: Any = [{"role": "user", "content": "Which city is the capital of France?"}]


def main() -> None:
    url, prefix, mode = sys.argv[1:4]
    up = Upstream()
    with RedisExactCache(url=url, key_prefix=prefix) as cache:
        plain = openai.OpenAI(
            api_key="sk-worker", http_client=httpx2.Client(transport=up.mock(httpx2)), max_retries=0
        )
        client = cached(plain, cache)
        raw: Any = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=mode == "stream"
        )
        if mode == "stream":
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        else:
            text = raw.parse().choices[0].message.content
        print(json.dumps({"calls": up.calls, "status": raw.headers["x-fleetcache"], "text": text}))


if __name__ == "__main__":
    main()
