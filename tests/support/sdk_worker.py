"""One process of the two-process SDK wrapper tests: its own SDK client on its own fake
upstream, wrapped on a shared Redis namespace. Prints one JSON line: upstream calls made,
hit/miss of each answer, the texts received.

    python -m tests.support.sdk_worker URL PREFIX KIND MODE

KIND: ``openai`` | ``anthropic``. MODE: ``stream`` (one streamed call) or ``both`` (a
non-streamed call, then a streamed one).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from fleetcache import RedisExactCache, cache_info

from .sdk_fakes import Upstream

QUESTION = "Which city is the capital of France?"


def create(kind: str, client: Any, **kw: Any) -> Any:
    messages = [{"role": "user", "content": QUESTION}]
    if kind == "openai":
        return client.chat.completions.create(model="gpt-4o-mini", messages=messages, **kw)
    return client.messages.create(
        model="claude-sonnet-4-5", max_tokens=256, messages=messages, **kw
    )


def text_of(kind: str, response: Any) -> str:
    if kind == "openai":
        return str(response.choices[0].message.content)
    return str(response.content[0].text)


def streamed_text(kind: str, items: list[Any]) -> str:
    if kind == "openai":
        return "".join(c.choices[0].delta.content or "" for c in items if c.choices)
    return "".join(
        e.delta.text
        for e in items
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )


def main() -> None:
    url, prefix, kind, mode = sys.argv[1:5]
    cached = importlib.import_module(f"fleetcache.integrations.{kind}").cached
    upstream = Upstream(kind)
    out: dict[str, Any] = {}
    with RedisExactCache(url=url, key_prefix=prefix) as cache:
        client = cached(upstream.client(), cache)
        if mode == "both":
            response = create(kind, client)
            info = cache_info(response)
            out["hit"] = info.hit if info else None
            out["text"] = text_of(kind, response)
        with create(kind, client, stream=True) as stream:
            items = list(stream)
        info = cache_info(stream)
        out["stream_hit"] = info.hit if info else None
        out["stream_text"] = streamed_text(kind, items)
        out["stream_type"] = type(items[0]).__name__
    out["calls"] = upstream.calls
    print(json.dumps(out))


if __name__ == "__main__":
    main()
