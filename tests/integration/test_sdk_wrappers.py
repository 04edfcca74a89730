"""The OpenAI and Anthropic SDK wrappers on a real server, with the real SDKs on a fake HTTP
transport (``tests/support/sdk_fakes.py``) that counts upstream calls.

What they prove: identical requests are answered once by the upstream and then from Redis as
the SDK's own objects (``ChatCompletion``, ``Message``, their chunk/event streams), in one
process and across two; a streamed miss reaches the caller chunk by chunk (the first chunk
while the upstream is still holding the rest back) and is stored only when it ended normally
(not after a ``break``/``close()``/early ``with`` exit, an error event, a dropped connection
or a truncated body); every control mode; the ``fleetcache=`` keyword never reaches the
transport; a stopped server means a normal answer from the upstream, sync and async,
streamed too.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from fleetcache import cache_info

from ..support.sdk_fakes import Upstream, completion, message

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

from fleetcache.integrations import anthropic as fc_anthropic  # noqa: E402
from fleetcache.integrations import openai as fc_openai  # noqa: E402

# The wrappers' logic does not depend on the server flavour: run on standalone Redis only.
pytestmark = pytest.mark.backends("redis")

KINDS = ["openai", "anthropic"]
QUESTION = "Which city is the capital of France?"
ROOT = Path(__file__).resolve().parents[2]


def answer(kind: str, text: str, **kw: Any) -> dict[str, Any]:
    return completion(text, **kw) if kind == "openai" else message(text, **kw)


def wrap(kind: str, client: Any, cache: Any, **opts: Any) -> Any:
    return (fc_openai if kind == "openai" else fc_anthropic).cached(client, cache, **opts)


def kwargs(kind: str, question: str = QUESTION, **kw: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": question}]
    if kind == "openai":
        return {"model": "gpt-4o-mini", "messages": messages, **kw}
    return {"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": messages, **kw}


def create(kind: str, client: Any, **kw: Any) -> Any:
    endpoint = client.chat.completions if kind == "openai" else client.messages
    return endpoint.create(**kwargs(kind, **kw))


async def acreate(kind: str, client: Any, **kw: Any) -> Any:
    endpoint = client.chat.completions if kind == "openai" else client.messages
    return await endpoint.create(**kwargs(kind, **kw))


def text_of(kind: str, response: Any) -> str:
    if kind == "openai":
        assert isinstance(response, openai.types.chat.ChatCompletion)
        return str(response.choices[0].message.content)
    assert isinstance(response, anthropic.types.Message)
    return str(response.content[0].text)


def tools_of(kind: str, response: Any) -> list[tuple[str, str, Any]]:
    if kind == "openai":
        calls = response.choices[0].message.tool_calls or []
        return [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls]
    return [(b.id, b.name, b.input) for b in response.content if b.type == "tool_use"]


def streamed(kind: str, items: list[Any]) -> tuple[str, list[tuple[str, str, Any]]]:
    """Concatenate a stream's deltas: (text, tool calls as (id, name, parsed input))."""
    if kind == "openai":
        assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in items)
        text = "".join(c.choices[0].delta.content or "" for c in items if c.choices)
        calls: dict[int, list[str]] = {}
        for c in items:
            for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
                state = calls.setdefault(tc.index, ["", "", ""])
                state[0] = tc.id or state[0]
                state[1] += (tc.function.name or "") if tc.function else ""
                state[2] += (tc.function.arguments or "") if tc.function else ""
        return text, [(i, n, json.loads(a)) for _, (i, n, a) in sorted(calls.items())]
    names = ["Message", "ContentBlock"]
    kinds = ["Start", "Delta", "Stop"]
    event_types = tuple(getattr(anthropic.types, f"Raw{n}{k}Event") for n in names for k in kinds)
    assert all(isinstance(e, event_types) for e in items)
    text = ""
    blocks: dict[int, list[Any]] = {}
    for e in items:
        if e.type == "content_block_start" and e.content_block.type == "tool_use":
            blocks[e.index] = [e.content_block.id, e.content_block.name, ""]
        elif e.type == "content_block_delta" and e.delta.type == "text_delta":
            text += e.delta.text
        elif e.type == "content_block_delta" and e.delta.type == "input_json_delta":
            blocks[e.index][2] += e.delta.partial_json
    return text, [(i, n, json.loads(j)) for _, (i, n, j) in sorted(blocks.items())]


def stream_kwargs(kind: str, usage: bool = True) -> dict[str, Any]:
    if kind == "openai" and usage:
        return {"stream": True, "stream_options": {"include_usage": True}}
    return {"stream": True}


# ------------------------------------------------------------------------- non-streamed


@pytest.mark.parametrize("kind", KINDS)
def test_identical_requests_are_answered_once(kind: str, make_cache: Callable[..., Any]) -> None:
    upstream = Upstream(kind)
    client = wrap(kind, upstream.client(), make_cache())
    first = create(kind, client)
    second = create(kind, client)
    assert upstream.calls == 1
    assert text_of(kind, second) == text_of(kind, first)
    assert tools_of(kind, second) == tools_of(kind, first) != []
    a, b = cache_info(first), cache_info(second)
    assert a is not None and b is not None
    assert (a.hit, a.age_seconds) == (False, None)
    assert b.hit and b.age_seconds is not None and b.age_seconds >= 0
    assert a.digest == b.digest and len(a.digest) == 32
    # a different request is another entry
    other = create(kind, client, question="And of Italy?")
    assert upstream.calls == 2 and not cache_info(other).hit  # type: ignore[union-attr]
    # every other attribute is the real client's
    assert client.models is client.wrapped.models
    assert client.api_key == client.wrapped.api_key
    assert client.with_options(timeout=5.0).wrapped.timeout == 5.0
    assert create(kind, client.with_options(timeout=5.0)) is not None
    assert upstream.calls == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_async_identical_requests_are_answered_once(
    kind: str, make_async_cache: Callable[..., Any]
) -> None:
    upstream = Upstream(kind)
    client = wrap(kind, upstream.async_client(), make_async_cache())
    first = await acreate(kind, client)
    second = await acreate(kind, client)
    assert upstream.calls == 1
    assert text_of(kind, second) == text_of(kind, first)
    assert tools_of(kind, second) == tools_of(kind, first)
    assert cache_info(first).hit is False  # type: ignore[union-attr]
    assert cache_info(second).hit is True  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", KINDS)
def test_single_flight_across_threads(kind: str, make_cache: Callable[..., Any]) -> None:
    """Eight threads, one request, a slow upstream: one upstream call, eight answers."""
    upstream = Upstream(kind)
    gate = threading.Event()
    slow = upstream.handle

    def handle(request: Any) -> Any:
        gate.wait(10)  # hold the first call until every thread has asked
        return slow(request)

    http = httpx2.Client(transport=httpx2.MockTransport(handle))
    sdk = (
        openai.OpenAI(api_key="k", http_client=http, max_retries=0)
        if kind == "openai"
        else anthropic.Anthropic(api_key="k", http_client=http, max_retries=0)
    )
    client = wrap(kind, sdk, make_cache())
    barrier = threading.Barrier(8)
    texts: list[str] = []

    def worker() -> None:
        barrier.wait(10)
        texts.append(text_of(kind, create(kind, client)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    barrier_passed = threading.Timer(0.3, gate.set)  # let the others reach the lease wait
    barrier_passed.start()
    for t in threads:
        t.join(30)
    assert upstream.calls == 1
    assert len(texts) == 8 and len(set(texts)) == 1


# ----------------------------------------------------------------- per-request controls


@pytest.mark.parametrize("kind", KINDS)
def test_every_control_mode(kind: str, make_cache: Callable[..., Any]) -> None:
    texts = [f"answer {i}" for i in range(8)]
    upstream = Upstream(kind, answers=[answer(kind, t) for t in texts])
    client = wrap(kind, upstream.client(), make_cache())

    def ask(control: str | None, question: str = QUESTION) -> tuple[str, bool]:
        kw = {} if control is None else {"fleetcache": {"control": control}}
        r = create(kind, client, question=question, **kw)
        info = cache_info(r)
        assert info is not None
        return text_of(kind, r), info.hit

    assert ask(None) == ("answer 0", False)
    assert ask("default") == ("answer 0", True)
    # no-cache: skip the read, store the fresh answer (a refresh)
    assert ask("no-cache") == ("answer 1", False)
    assert ask(None) == ("answer 1", True)
    # no-store: read (a hit is served), never write
    assert ask("no-store") == ("answer 1", True)
    assert ask("no-store", "new q") == ("answer 2", False)
    assert ask(None, "new q") == ("answer 3", False)  # the no-store answer was not kept
    # bypass: neither read nor write
    assert ask("bypass") == ("answer 4", False)
    assert ask(None) == ("answer 1", True)  # the entry was neither read nor replaced
    assert upstream.calls == 5
    assert all("fleetcache" not in b and "fleetcache_endpoint" not in b for b in upstream.bodies)


@pytest.mark.parametrize("kind", KINDS)
def test_every_control_mode_streamed(kind: str, make_cache: Callable[..., Any]) -> None:
    texts = [f"streamed answer {i}" for i in range(8)]
    upstream = Upstream(kind, answers=[answer(kind, t) for t in texts])
    client = wrap(kind, upstream.client(), make_cache())

    def ask(control: str | None, question: str = QUESTION) -> tuple[str, bool]:
        kw = {} if control is None else {"fleetcache": {"control": control}}
        with create(kind, client, question=question, **kw, **stream_kwargs(kind)) as s:
            items = list(s)
        return streamed(kind, items)[0], cache_info(s).hit  # type: ignore[union-attr]

    assert ask(None) == ("streamed answer 0", False)
    assert ask(None) == ("streamed answer 0", True)
    assert ask("no-cache") == ("streamed answer 1", False)
    assert ask(None) == ("streamed answer 1", True)
    assert ask("no-store") == ("streamed answer 1", True)
    assert ask("no-store", "q2") == ("streamed answer 2", False)
    assert ask(None, "q2") == ("streamed answer 3", False)
    assert ask("bypass") == ("streamed answer 4", False)
    assert ask(None) == ("streamed answer 1", True)
    assert upstream.calls == 5
    assert all("fleetcache" not in b for b in upstream.bodies)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
async def test_control_modes_async(
    kind: str, stream: bool, make_async_cache: Callable[..., Any]
) -> None:
    upstream = Upstream(kind, answers=[answer(kind, f"a{i}") for i in range(5)])
    client = wrap(kind, upstream.async_client(), make_async_cache())

    async def ask(control: str) -> tuple[str, bool]:
        if not stream:
            r = await acreate(kind, client, fleetcache={"control": control})
            return text_of(kind, r), cache_info(r).hit  # type: ignore[union-attr]
        s = await acreate(kind, client, fleetcache={"control": control}, **stream_kwargs(kind))
        async with s:
            items = [item async for item in s]
        return streamed(kind, items)[0], cache_info(s).hit  # type: ignore[union-attr]

    assert await ask("default") == ("a0", False)
    assert await ask("no-cache") == ("a1", False)
    assert await ask("no-store") == ("a1", True)
    assert await ask("bypass") == ("a2", False)
    assert await ask("default") == ("a1", True)
    assert upstream.calls == 3


@pytest.mark.parametrize("kind", KINDS)
def test_per_call_and_wrapper_ttl(kind: str, make_cache: Callable[..., Any], r: Any) -> None:
    cache = make_cache()
    upstream = Upstream(kind)
    client = wrap(kind, upstream.client(), cache, ttl_seconds=3600)

    def pttl(response: Any) -> int:
        digest = cache_info(response).digest  # type: ignore[union-attr]
        keys = cache._core.keys
        return int(r.pttl(keys.entry(keys.shard_of(digest), digest)))

    assert 0 < pttl(create(kind, client, fleetcache={"ttl": 60})) <= 60_000
    assert 60_000 < pttl(create(kind, client, question="q2")) <= 3_600_000
    with create(kind, client, question="q3", fleetcache={"ttl": 30}, stream=True) as s:
        list(s)
    assert 0 < pttl(s) <= 30_000


@pytest.mark.parametrize("kind", KINDS)
def test_bad_fleetcache_options_fail_before_the_upstream(
    kind: str, make_cache: Callable[..., Any]
) -> None:
    upstream = Upstream(kind)
    client = wrap(kind, upstream.client(), make_cache())
    with pytest.raises(ValueError, match="control"):
        create(kind, client, fleetcache={"control": "refresh"})
    with pytest.raises(TypeError, match="unknown fleetcache"):
        create(kind, client, fleetcache={"tll": 5})
    with pytest.raises(ValueError, match="ttl"):
        create(kind, client, fleetcache={"ttl": -1})
    with pytest.raises(TypeError, match="mapping"):
        create(kind, client, fleetcache="no-cache")
    with pytest.raises(TypeError, match=r"messages\[0\]\.content"):
        create(kind, client, question=b"bytes are not JSON")
    assert upstream.calls == 0


@pytest.mark.parametrize("kind", KINDS)
def test_client_and_cache_must_match(
    kind: str, make_cache: Callable[..., Any], make_async_cache: Callable[..., Any]
) -> None:
    upstream = Upstream(kind)
    with pytest.raises(TypeError, match="AsyncRedisExactCache"):
        wrap(kind, upstream.async_client(), make_cache())
    with pytest.raises(TypeError, match="RedisExactCache"):
        wrap(kind, upstream.client(), make_async_cache())
    with pytest.raises(TypeError, match="client must be"):
        wrap(kind, object(), make_cache())
    with pytest.raises(TypeError, match="cache must be"):
        wrap(kind, upstream.client(), {"not": "a cache"})
    with pytest.raises(ValueError, match="control"):
        wrap(kind, upstream.client(), make_cache(), control="sometimes")


@pytest.mark.parametrize("kind", KINDS)
def test_unreusable_answers_are_not_stored_unless_should_store(
    kind: str, make_cache: Callable[..., Any]
) -> None:
    bad = answer(
        kind, "cut off", **({"finish": "length"} if kind == "openai" else {"stop": "max_tokens"})
    )
    upstream = Upstream(kind, answers=[bad])
    client = wrap(kind, upstream.client(), make_cache())
    create(kind, client)
    create(kind, client)
    with create(kind, client, stream=True) as s:
        list(s)
    assert upstream.calls == 3  # never stored, streamed or not
    keep = wrap(kind, upstream.client(), make_cache(), should_store=lambda r: True)
    create(kind, keep, question="q2")
    assert cache_info(create(kind, keep, question="q2")).hit  # type: ignore[union-attr]
    with create(kind, keep, question="q3", stream=True) as s:
        list(s)
    with create(kind, keep, question="q3", stream=True) as s:
        list(s)
    assert cache_info(s).hit  # type: ignore[union-attr]
    assert upstream.calls == 5


# ----------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("kind", KINDS)
def test_stream_miss_is_live_then_replayed(kind: str, make_cache: Callable[..., Any]) -> None:
    hold = threading.Event()
    upstream = Upstream(kind, hold=hold)
    client = wrap(kind, upstream.client(), make_cache())
    stream = create(kind, client, **stream_kwargs(kind))
    assert cache_info(stream).hit is False  # type: ignore[union-attr]
    first = next(stream)
    # The first chunk is in the caller's hands while the upstream still holds the rest.
    assert upstream.sent_first.is_set() and not upstream.finished.is_set()
    hold.set()
    items = [first, *stream]
    assert upstream.finished.is_set()
    expected_text = text_of(kind, create(kind, client))  # a hit on the streamed entry
    assert upstream.calls == 1
    want_tools = tools_of(kind, create(kind, client))
    assert streamed(kind, items) == (expected_text, want_tools)

    # A hit: the SDK's own chunk/event objects, concatenating to the stored answer.
    with create(kind, client, **stream_kwargs(kind)) as replay:
        replayed = list(replay)
    assert upstream.calls == 1
    info = cache_info(replay)
    assert info is not None and info.hit and info.age_seconds is not None
    assert replay.response is None
    assert streamed(kind, replayed) == (expected_text, want_tools)
    if kind == "openai":
        assert replayed[-1].choices == [] and replayed[-1].usage.total_tokens == 18
        with create(kind, client, stream=True) as plain:
            chunks = list(plain)
        assert all(c.usage is None and c.choices for c in chunks)
        assert chunks[-1].choices[0].finish_reason == "stop"
    else:
        assert replayed[0].type == "message_start"
        assert replayed[-2].type == "message_delta" and replayed[-2].usage.output_tokens == 9
        assert replayed[-1].type == "message_stop"


@pytest.mark.parametrize("kind", KINDS)
async def test_async_stream_miss_is_live_then_replayed(
    kind: str, make_async_cache: Callable[..., Any]
) -> None:
    hold = threading.Event()
    upstream = Upstream(kind, hold=hold)
    client = wrap(kind, upstream.async_client(), make_async_cache())
    stream = await acreate(kind, client, **stream_kwargs(kind))
    assert cache_info(stream).hit is False  # type: ignore[union-attr]
    first = await stream.__anext__()
    assert upstream.sent_first.is_set() and not upstream.finished.is_set()
    hold.set()
    items = [first]
    async for item in stream:
        items.append(item)
    assert upstream.finished.is_set()
    async with await acreate(kind, client, **stream_kwargs(kind)) as replay:
        replayed = [item async for item in replay]
    assert upstream.calls == 1
    assert cache_info(replay).hit  # type: ignore[union-attr]
    assert streamed(kind, replayed) == streamed(kind, items)
    assert streamed(kind, items)[0] == text_of(kind, await acreate(kind, client))
    assert upstream.calls == 1


def _is_last(item: Any) -> bool:
    """The last item that carries the answer (a usage chunk or the body's end may follow)."""
    if getattr(item, "type", None) == "message_stop":
        return True
    choices: Any = getattr(item, "choices", None)
    return bool(choices) and choices[0].finish_reason is not None


def _stop_early(stream: Any, how: str) -> Any:
    if how == "with-at-last":  # every answer-carrying item arrived, the stream did not end
        with stream:
            for item in stream:
                if _is_last(item):
                    return item
    if how == "break":
        for item in stream:
            return item
    if how == "close":
        item = next(stream)
        stream.close()
        assert list(stream) == []
        return item
    with stream:  # "with": leave the block after one item
        return next(stream)


@pytest.mark.parametrize("how", ["break", "with-at-last", "close", "with"])
@pytest.mark.parametrize("kind", KINDS)
def test_early_stop_stores_nothing(kind: str, how: str, make_cache: Callable[..., Any]) -> None:
    upstream = Upstream(kind)
    client = wrap(kind, upstream.client(), make_cache())
    assert _stop_early(create(kind, client, **stream_kwargs(kind)), how) is not None
    second = create(kind, client, **stream_kwargs(kind))
    assert cache_info(second).hit is False  # type: ignore[union-attr]
    list(second)  # this one runs to the end and is stored
    assert upstream.calls == 2
    assert cache_info(create(kind, client)).hit  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", KINDS)
async def test_async_early_stop_stores_nothing(
    kind: str, make_async_cache: Callable[..., Any]
) -> None:
    upstream = Upstream(kind)
    client = wrap(kind, upstream.async_client(), make_async_cache())
    stream = await acreate(kind, client, **stream_kwargs(kind))
    async for _ in stream:
        break
    await stream.close()
    async with await acreate(kind, client, **stream_kwargs(kind)) as s:
        await s.__anext__()
    assert upstream.calls == 2
    assert cache_info(await acreate(kind, client)).hit is False  # type: ignore[union-attr]


ERRORS: dict[str, tuple[dict[str, Any], bool]] = {
    "error-event": ({"error_event_after": 3}, True),
    "dropped-connection": ({"fail_after": 3}, True),
    "truncated-body": ({"truncate_after": 3}, False),
}


@pytest.mark.parametrize("fault", sorted(ERRORS))
@pytest.mark.parametrize("kind", KINDS)
def test_stream_error_stores_nothing(kind: str, fault: str, make_cache: Callable[..., Any]) -> None:
    options, raises = ERRORS[fault]
    upstream = Upstream(kind, **options)
    client = wrap(kind, upstream.client(), make_cache())
    got: list[Any] = []
    stream = create(kind, client, **stream_kwargs(kind))
    if raises:
        # (the Anthropic SDK lets a dropped connection's httpx2.ReadError through unwrapped)
        with pytest.raises((openai.APIError, anthropic.APIError, httpx2.TransportError)):
            for item in stream:
                got.append(item)
    else:
        got = list(stream)
    assert got  # the caller saw the chunks that did arrive
    assert cache_info(create(kind, client)).hit is False  # type: ignore[union-attr]
    assert upstream.calls == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_async_stream_error_stores_nothing(
    kind: str, make_async_cache: Callable[..., Any]
) -> None:
    upstream = Upstream(kind, error_event_after=3)
    client = wrap(kind, upstream.async_client(), make_async_cache())
    stream = await acreate(kind, client, **stream_kwargs(kind))
    with pytest.raises((openai.APIError, anthropic.APIError)):
        async for _ in stream:
            pass
    assert cache_info(await acreate(kind, client)).hit is False  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", KINDS)
def test_an_entry_that_cannot_be_replayed_goes_upstream(
    kind: str, make_cache: Callable[..., Any]
) -> None:
    """An entry of another shape under the request's key (written by hand) is not replayed:
    the streamed call goes to the upstream and the caller gets a normal stream."""
    cache = make_cache()
    codec = (fc_openai if kind == "openai" else fc_anthropic).CODEC
    keyed = {**kwargs(kind), "fleetcache_endpoint": codec.endpoint}
    junk = {"choices": "xyz"} if kind == "openai" else {"content": "xyz", "usage": 3}
    cache.put_request(keyed, junk, should_store=lambda r: True)
    assert cache.get_request(keyed) == junk
    upstream = Upstream(kind)
    client = wrap(kind, upstream.client(), cache)
    with create(kind, client, **stream_kwargs(kind)) as s:
        items = list(s)
    assert upstream.calls == 1 and cache_info(s).hit is False  # type: ignore[union-attr]
    assert streamed(kind, items)[0] == text_of(kind, create(kind, client))


# ------------------------------------------------------------------------ fleet and faults


def _worker(url: str, prefix: str, kind: str, mode: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.sdk_worker", url, prefix, kind, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("kind", KINDS)
def test_two_processes_share_hits(kind: str, backend: Any, prefix: str) -> None:
    """Process A streams a miss (stored); process B gets both a non-streamed and a
    streamed hit without calling its own upstream."""
    a = _worker(backend.url, prefix, kind, "stream")
    assert a == {
        "stream_hit": False,
        "stream_text": a["stream_text"],
        "stream_type": a["stream_type"],
        "calls": 1,
    }
    b = _worker(backend.url, prefix, kind, "both")
    assert b["calls"] == 0 and b["hit"] is True and b["stream_hit"] is True
    assert b["text"] == b["stream_text"] == a["stream_text"] != ""
    assert b["stream_type"] == a["stream_type"]


@pytest.mark.parametrize("kind", KINDS)
def test_redis_down_calls_the_upstream(
    kind: str, private_server: Callable[..., Any], make_cache: Callable[..., Any]
) -> None:
    server = private_server()
    url = server.url
    server.stop()
    upstream = Upstream(kind)
    client = wrap(kind, upstream.client(), make_cache(url=url))
    first, second = create(kind, client), create(kind, client)
    assert text_of(kind, first) == text_of(kind, second) != ""
    assert cache_info(second).hit is False  # type: ignore[union-attr]
    with create(kind, client, **stream_kwargs(kind)) as s:
        items = list(s)
    assert streamed(kind, items)[0] == text_of(kind, first)
    assert upstream.calls == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_async_redis_down_calls_the_upstream(
    kind: str, private_server: Callable[..., Any], make_async_cache: Callable[..., Any]
) -> None:
    server = private_server()
    url = server.url
    server.stop()
    upstream = Upstream(kind)
    client = wrap(kind, upstream.async_client(), make_async_cache(url=url))
    first = await acreate(kind, client)
    assert cache_info(first).hit is False  # type: ignore[union-attr]
    stream = await acreate(kind, client, **stream_kwargs(kind))
    items = [item async for item in stream]
    assert streamed(kind, items)[0] == text_of(kind, first)
    second = await asyncio.wait_for(acreate(kind, client), 10)
    assert text_of(kind, second) == text_of(kind, first)
    assert upstream.calls == 3
