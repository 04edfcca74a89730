"""Bytes per cache entry of a streamed chat answer: the raw SSE against the assembled answer.

A chat answer of ``--chars`` characters (default 1,024) is streamed as the OpenAI API streams
it, one token (``--token-chars`` characters, default 4) per ``chat.completion.chunk`` event,
with the usage chunk and ``[DONE]``. The stream is recorded with
:class:`fleetcache.core.endpoints.StreamRecorder`, and the table compares what an entry would
hold: the raw event bytes, or the assembled ``chat.completion`` JSON packed with msgpack;
each also after zlib (level 6). No server, no network: sizes only, deterministic.

Run: ``.venv/bin/python -m bench.stream_bytes`` (``--json`` for one JSON line).
"""

from __future__ import annotations

import argparse
import json
import zlib
from typing import Any

import msgpack

from fleetcache.core.endpoints import ENDPOINTS, StreamRecorder

_TOP = {
    "id": "chatcmpl-BenchStreamBytes0000000000",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini-2024-07-18",
    "service_tier": "default",
    "system_fingerprint": "fp_0123456789",
    "usage": None,
}


def _frame(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**_TOP, "choices": [choice], "obfuscation": "aBcD"}


def wire(chars: int, token_chars: int) -> bytes:
    """The SSE bytes of a ``chars``-character answer, one ``token_chars`` token per event."""
    words = "The quick brown fox jumps over the lazy dog and keeps on running. "
    text = (words * (chars // len(words) + 1))[:chars]
    tokens = [text[i : i + token_chars] for i in range(0, len(text), token_chars)]
    usage = {
        "prompt_tokens": 42,
        "completion_tokens": len(tokens),
        "total_tokens": 42 + len(tokens),
    }
    frames = [_frame(_chunk({"role": "assistant", "content": "", "refusal": None}))]
    frames += [_frame(_chunk({"content": t})) for t in tokens]
    frames.append(_frame(_chunk({}, "stop")))
    frames.append(_frame({**_TOP, "choices": [], "usage": usage}))
    return b"".join(frames) + b"data: [DONE]\n\n"


def measure(chars: int = 1024, token_chars: int = 4) -> dict[str, int]:
    """Sizes in bytes: raw SSE, assembled msgpack, and each after zlib."""
    raw = wire(chars, token_chars)
    recorder = StreamRecorder(ENDPOINTS["openai.chat"], caller_wants_usage=True)
    recorder.feed(raw)
    recorder.close()
    answer = recorder.finish()
    if answer is None:
        raise RuntimeError("the benchmark stream did not assemble")
    packed = msgpack.packb(answer, use_bin_type=True)
    return {
        "events": recorder.events,
        "sse_bytes": len(raw),
        "sse_zlib_bytes": len(zlib.compress(raw, 6)),
        "assembled_msgpack_bytes": len(packed),
        "assembled_msgpack_zlib_bytes": len(zlib.compress(packed, 6)),
    }


def main() -> None:
    """Print the table (or one JSON line with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=1024, help="answer length (characters)")
    parser.add_argument("--token-chars", type=int, default=4, help="characters per event")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    args = parser.parse_args()
    sizes = measure(args.chars, args.token_chars)
    if args.json:
        print(json.dumps(sizes))
        return
    sse, asm = sizes["sse_bytes"], sizes["assembled_msgpack_bytes"]
    sse_z, asm_z = sizes["sse_zlib_bytes"], sizes["assembled_msgpack_zlib_bytes"]
    print(f"{args.chars}-char chat answer, {sizes['events']} SSE events")
    print(f"{'form':<28}{'bytes':>10}{'zlib':>10}")
    print(f"{'raw SSE events':<28}{sse:>10,}{sse_z:>10,}")
    print(f"{'assembled JSON, msgpack':<28}{asm:>10,}{asm_z:>10,}")
    print(f"{'ratio':<28}{sse / asm:>9.1f}x{sse_z / asm_z:>9.1f}x")


if __name__ == "__main__":
    main()
