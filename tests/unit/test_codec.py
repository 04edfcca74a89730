"""The envelope codec, pure (no Redis): layout, compression flag, tokens in the header, and
that no byte string makes ``decode`` raise anything but ``CorruptEntry``."""

from __future__ import annotations

import zlib

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetcache import LLMResponse, ToolCallResult
from fleetcache.core.envelope import (
    FLAG_ZLIB,
    HEADER,
    HEADER_V2_SIZE,
    Codec,
    CorruptEntry,
    header_tokens,
    tokens_of,
)


def test_layout() -> None:
    c = Codec(LLMResponse)
    data = c.encode(LLMResponse(content="hi", usage={"total_tokens": 513}))
    magic, version, flags, tokens = HEADER.unpack_from(data)
    assert (magic, version, flags, tokens) == (b"FC", 2, 0, 513)
    assert data.startswith(b"FC\x02")
    assert header_tokens(data) == 513
    assert data[HEADER_V2_SIZE - 6 : HEADER_V2_SIZE] == b"\xff" * 6  # cost unknown: unpriced
    body = data[HEADER_V2_SIZE:]
    assert msgpack.unpackb(body) == {"content": "hi", "usage": {"total_tokens": 513}}


def test_defaults_are_not_stored() -> None:
    c = Codec(LLMResponse)
    assert msgpack.unpackb(c.encode(LLMResponse())[HEADER_V2_SIZE:]) == {}
    assert c.decode(c.encode(LLMResponse())) == LLMResponse()


def test_compression_flag() -> None:
    c = Codec(LLMResponse, compress_threshold=1024)
    big = c.encode(LLMResponse(content="abc" * 5000))
    assert big[3] & FLAG_ZLIB
    assert len(big) < 5000
    assert c.decode(big) == LLMResponse(content="abc" * 5000)
    small = c.encode(LLMResponse(content="abc" * 10))
    assert not small[3] & FLAG_ZLIB
    noisy = bytes(range(256)).hex() * 2  # 1 KB+, compresses poorly but still some
    assert c.decode(c.encode(LLMResponse(content=noisy))) == LLMResponse(content=noisy)
    off = Codec(LLMResponse, compress_threshold=None)
    assert not off.encode(LLMResponse(content="abc" * 5000))[3] & FLAG_ZLIB


@pytest.mark.parametrize(
    ("usage", "tokens"),
    [
        ({"total_tokens": 42, "prompt_tokens": 1}, 42),
        ({"prompt_tokens": 3, "completion_tokens": 4}, 7),
        ({"prompt_tokens": 3}, 3),
        ({}, 0),
        ({"total_tokens": -5}, 0),
        ({"total_tokens": 2**40}, 2**32 - 1),
    ],
)
def test_tokens_of(usage: dict[str, int], tokens: int) -> None:
    assert tokens_of(LLMResponse(usage=usage)) == tokens


def test_tokens_of_model_without_usage() -> None:
    from pydantic import BaseModel

    class NoUsage(BaseModel):
        content: str = ""

    assert tokens_of(NoUsage()) == 0


def test_bad_constructor_args() -> None:
    with pytest.raises(TypeError):
        Codec(dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Codec(LLMResponse, compress_threshold=-1)


def test_encode_refuses_non_models() -> None:
    with pytest.raises(TypeError):
        Codec(LLMResponse).encode({"content": "x"})  # type: ignore[arg-type]


def test_round_trip_tool_calls_and_unicode() -> None:
    c = Codec(LLMResponse)
    resp = LLMResponse(
        content="\x00\ud800 😀",
        tool_calls=[ToolCallResult(id="1", name="f", arguments={"k": ["v", 1, None]})],
        parsed={"a": 1.5},
    )
    assert c.decode(c.encode(resp)) == resp


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"FC",
        b"FC\x01\x00\x00\x00",
        HEADER.pack(b"FC", 3, 0, 0) + msgpack.packb({}),
        HEADER.pack(b"XX", 1, 0, 0) + msgpack.packb({}),
        HEADER.pack(b"FC", 1, 0x02, 0) + msgpack.packb({}),
        HEADER.pack(b"FC", 1, FLAG_ZLIB, 0) + b"nope",
        HEADER.pack(b"FC", 1, FLAG_ZLIB, 0) + zlib.compress(b"\xc1"),
        HEADER.pack(b"FC", 1, 0, 0) + msgpack.packb("a string"),
        HEADER.pack(b"FC", 1, 0, 0) + msgpack.packb({"finish_reason": "??"}),
        HEADER.pack(b"FC", 1, 0, 0) + b"\x81",  # truncated map
        HEADER.pack(b"FC", 1, 0, 0) + msgpack.packb({}) + b"trailing",
    ],
)
def test_decode_rejects(data: bytes) -> None:
    with pytest.raises(CorruptEntry):
        Codec(LLMResponse).decode(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.sampled_from([b"", b"FC\x01\x00", b"FC\x01\x01"]))
def test_decode_never_raises_anything_else(tail: bytes, head: bytes) -> None:
    data = head + tail
    try:
        out = Codec(LLMResponse).decode(data)
    except CorruptEntry:
        return
    assert isinstance(out, LLMResponse)


# -- big ints, bounded inflate, rejected vs corrupt ----------------------------------------


def test_big_ints_round_trip_exactly() -> None:
    from fleetcache.core.envelope import EXT_BIGINT

    codec = Codec(LLMResponse)
    resp = LLMResponse(parsed={"a": 2**64, "b": -(2**64) - 1, "c": [10**40, 2**63 - 1]})
    env = codec.encode(resp)
    assert codec.decode(env) == resp
    assert EXT_BIGINT == 1


def test_inflate_is_bounded_by_max_body_bytes() -> None:
    import zlib

    from fleetcache.core.envelope import HEADER, CorruptEntry

    body = zlib.compress(bytes(4 << 20), 9)
    env = HEADER.pack(b"FC", 1, 1, 0) + body
    with pytest.raises(CorruptEntry, match="inflates beyond"):
        Codec(LLMResponse, max_body_bytes=1 << 20).decode(env)
    with pytest.raises(CorruptEntry, match="truncated"):
        Codec(LLMResponse, max_body_bytes=8 << 20).decode(env[:-10])


def test_a_body_over_max_body_bytes_is_not_encoded() -> None:
    from fleetcache import EntryTooLargeError

    codec = Codec(LLMResponse, 64, max_body_bytes=1000)
    with pytest.raises(EntryTooLargeError):
        codec.encode(LLMResponse(content="x" * 5000))  # compresses well, inflates past it


def test_validation_failure_is_rejected_not_corrupt() -> None:
    import msgpack
    from pydantic import BaseModel

    from fleetcache.core.envelope import HEADER, CorruptEntry, RejectedEntry

    class Strict(BaseModel):
        verdict: str

    env = Codec(LLMResponse).encode(LLMResponse(content="x"))
    with pytest.raises(RejectedEntry):
        Codec(Strict).decode(env)
    not_a_map = HEADER.pack(b"FC", 1, 0, 0) + msgpack.packb([1])
    with pytest.raises(CorruptEntry) as info:
        Codec(Strict).decode(not_a_map)
    assert not isinstance(info.value, RejectedEntry)
