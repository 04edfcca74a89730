"""Inputs for the core's unit tests: a ``Core`` with test defaults, requests, envelopes
(good and corrupt) and the key names a request must use (DESIGN.md's key layout)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from fleetcache.core.envelope import ACCEPT_PREFIX, HEADER
from fleetcache.core.instructions import Call
from fleetcache.core.keys import digest_of, normalise_request
from fleetcache.core.models import LLMResponse
from fleetcache.core.ops import DEFAULT_MAX_ENTRY_BYTES, Core

from .script_driver import ScriptedOp

PREFIX = "t"
FIELDS = ("What is a lease?", "Be brief.", "m1", 0.0, 64)


def make_core(**kw: Any) -> Core:
    """A ``Core`` on namespace ``t``, 1 shard, no TTL, ``LLMResponse`` (override any)."""
    kw.setdefault("key_prefix", PREFIX)
    kw.setdefault("shards", 1)
    kw.setdefault("ttl_seconds", None)
    kw.setdefault("response_model", LLMResponse)
    kw.setdefault("compress_threshold", 4096)
    kw.setdefault("max_entry_bytes", DEFAULT_MAX_ENTRY_BYTES)
    return Core(**kw)


def request(i: int, model: str = "m1") -> tuple[str, str, str, float, int]:
    """Request number ``i`` (distinct user messages)."""
    return (f"question {i}", "Be brief.", model, 0.0, 64)


def digest(fields: tuple[Any, ...] = FIELDS) -> str:
    return digest_of(normalise_request(*fields))


def entry_keys(core: Core, fields: tuple[Any, ...] = FIELDS) -> tuple[str, str, str]:
    """``({P:s}:e:<digest>, {P:s}:i, {P:s}:s)`` of a request, spelled out from the layout."""
    d = digest(fields)
    s = core.keys.shard_of(d)
    p = core.keys.prefix
    return f"{{{p}:{s}}}:e:{d}", f"{{{p}:{s}}}:i", f"{{{p}:{s}}}:s"


def lease_key(core: Core, fields: tuple[Any, ...] = FIELDS) -> str:
    d = digest(fields)
    return f"{{{core.keys.prefix}:{core.keys.shard_of(d)}}}:l:{d}"


def answer(text: str = "A lease is a short lock.", tokens: int = 42) -> LLMResponse:
    return LLMResponse(content=text, usage={"total_tokens": tokens})


def envelope(core: Core, response: LLMResponse) -> bytes:
    return core.codec.encode(response)


def corrupt_envelopes(tokens: int = 5) -> dict[str, bytes]:
    """Bytes the Lua side accepts (right magic and version) whose body does not decode."""
    head = HEADER.pack(ACCEPT_PREFIX[:2], ACCEPT_PREFIX[2], 0, tokens)
    return {
        "bad msgpack": head + b"\xc1\xc1",
        "not a map": head + b"\x93\x01\x02\x03",
        "unknown flag": HEADER.pack(ACCEPT_PREFIX[:2], ACCEPT_PREFIX[2], 0x80, tokens) + b"\x80",
        "bad zlib": HEADER.pack(ACCEPT_PREFIX[:2], ACCEPT_PREFIX[2], 1, tokens) + b"not zlib",
    }


def contents(results: Sequence[BaseModel | None]) -> list[str | None]:
    """The ``content`` of each response (``None`` for a miss)."""
    return [r.content if isinstance(r, LLMResponse) else None for r in results]


def meta_key(core: Core) -> str:
    """``{P}:meta``: where the namespace's layout is recorded."""
    return f"{{{core.keys.prefix}}}:meta"


def expect_put(op: ScriptedOp[Any], core: Core, name: str = "put") -> Call:
    """The pending step must be a put (script ``name``) batched after the layout
    re-assertion: ``layout-1`` on ``{P}:meta`` with this cache's layout in write mode "1"
    (record it if the record vanished), in the same round trip. Returns the put call."""
    layout, put = op.expect_batch("layout", name).calls
    assert layout.keys == (meta_key(core),)
    assert layout.args == (core.layout, "1")
    return put


def layout_ok(core: Core, written: int = 0) -> list[Any]:
    """``layout-1``'s reply when this cache's layout is recorded (``{recorded, written}``)."""
    return [core.layout.encode(), written]
