"""The pure core shared by the sync and async caches: every operation is a generator that
yields I/O instructions (``Call``: run one script; ``Batch``: run several in one round trip)
and receives their results. The sync and async clients only drive these generators, so both
have exactly the same behaviour (sans-I/O, like h11/httpx).

One shape for every operation of the core: a free function ``op_<name>(core, ...)`` that
returns the generator (here, in ``batch``, ``request_ops``), and ``Flight`` (``flight``)
for single-flight, a class built by its ``__init__`` because the facade reads its state
after a fault. ``Core`` holds one cache's configuration and the builders of its script
calls (``get_call``, ``put_call``...); it runs nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from .._lua import script
from ..errors import EntryTooLargeError, LayoutMismatchError
from .envelope import (
    FLAG_MAC,
    MAGIC,
    Codec,
    CorruptEntry,
    EntryMeta,
    RejectedEntry,
    UnstorableResponse,
    entry_meta,
    usage_data,
)
from .instructions import Batch, Call, Op
from .keys import KeySpace, RequestFields, RequestKey, digest_of, model_arg, normalise_request
from .models import FleetStats, decode_text, parse_counters
from .prices import Prices
from .signing import ForgedEntry, Signer, check_signing_key
from .validate import byte_count, ttl_ms, upstream_ms

T = TypeVar("T")

#: Expired index members a put removes at most (bounded work per call).
PRUNE_PER_PUT = 64
#: Entries one clear/reconcile script call handles (bounded work per call, <= 1000).
CHUNK = 500
#: What makes a put refuse a response (``ErrorPolicy.refused``: a logged skip with "miss"):
#: an envelope over ``max_entry_bytes``, or fields that cannot be serialised.
UNSTORABLE = (EntryTooLargeError, UnstorableResponse)
#: Default largest envelope a put stores (bytes).
DEFAULT_MAX_ENTRY_BYTES = 8 * 1024 * 1024
#: Largest ``max_entries`` accepted (a Redis sorted set holds up to 2**32 - 1 members).
MAX_ENTRIES_LIMIT = 2**32 - 1

_GET = script("get")
_LAYOUT = script("layout")


@dataclass(frozen=True, slots=True)
class ChunkProgress:
    """Where a chunked ``clear``/``reconcile`` walk is, after one script call.

    ``shard`` (0-based) of ``shards`` is the shard just worked on; ``calls`` counts script
    calls so far. ``clear`` fills ``left`` (index members that shard still holds);
    ``reconcile`` fills ``checked`` and ``removed`` (running totals over all shards).
    """

    shard: int
    shards: int
    calls: int
    left: int = 0
    checked: int = 0
    removed: int = 0


#: A progress callback for ``clear``/``reconcile`` (called once per script call).
ProgressFn = Callable[[ChunkProgress], None]


def check_max_entries(max_entries: object, shards: int) -> int | None:
    """``None`` (no cap) or an ``int`` from ``shards`` to 2**32 - 1 (each shard holds at
    least one entry)."""
    if max_entries is None:
        return None
    if isinstance(max_entries, bool) or not isinstance(max_entries, int):
        raise TypeError(f"max_entries must be int or None, not {type(max_entries).__name__}")
    if not shards <= max_entries <= MAX_ENTRIES_LIMIT:
        raise ValueError(
            f"max_entries must be between shards ({shards}) and {MAX_ENTRIES_LIMIT}, "
            f"not {max_entries}"
        )
    return max_entries


def shard_caps(max_entries: int | None, shards: int) -> tuple[int, ...]:
    """Live entries each shard may hold: ``max_entries`` split as evenly as possible (shard
    ``s`` gets ``N // S``, plus one for ``s < N % S``), so the shards add up to exactly N;
    all 0 (no cap) without ``max_entries``."""
    if max_entries is None:
        return (0,) * shards
    q, r = divmod(max_entries, shards)
    return tuple(q + (1 if s < r else 0) for s in range(shards))


def drop_mode(exc: Exception) -> str:
    """The drop scripts' mode: "1" = delete an undecodable entry, "0" = keep one that only
    this process's response model rejects."""
    return "0" if isinstance(exc, RejectedEntry) else "1"


class Core:
    """Configuration of one cache object and the script calls it builds (no I/O); the
    operations are the ``op_*`` functions taking it."""

    __slots__ = (
        "caps",
        "codec",
        "ignore",
        "keys",
        "layout",
        "layout_checked",
        "max_entries",
        "max_entry_bytes",
        "on_hit",
        "prices",
        "should_store",
        "signer",
        "ttl_ms",
    )

    def __init__(
        self,
        *,
        key_prefix: str,
        shards: int,
        ttl_seconds: float | None,
        response_model: type[BaseModel],
        compress_threshold: int | None,
        max_entry_bytes: int,
        signing_key: bytes | Sequence[bytes] | None = None,
        max_entries: int | None = None,
        ignore: frozenset[str] | None = None,
        should_store: Callable[[dict[str, Any]], bool] | None = None,
        prices: object = None,
    ) -> None:
        self.keys = KeySpace(key_prefix, shards)
        #: prices answers when they are written (the ``prices=`` mapping, then genai-prices)
        self.prices = Prices(prices)
        #: request-path fields left out of the key (None: ``DEFAULT_IGNORE``)
        self.ignore = ignore
        #: request-path rule for what is stored (None: ``default_should_store``)
        self.should_store = should_store
        self.max_entries = check_max_entries(max_entries, self.keys.shards)
        #: per-shard live-entry caps passed to the put scripts (0 = none)
        self.caps = shard_caps(self.max_entries, self.keys.shards)
        #: the layout recorded in {P}:meta: shards, and the cap when there is one
        self.layout = self.keys.layout + (
            "" if self.max_entries is None else f";max_entries={self.max_entries}"
        )
        keys = check_signing_key(signing_key)
        #: signs what this cache writes and verifies what it reads (None: no signing key)
        self.signer = Signer(keys, self.keys.prefix, FLAG_MAC) if keys else None
        self.ttl_ms = ttl_ms(ttl_seconds)
        self.max_entry_bytes = byte_count(max_entry_bytes, "max_entry_bytes", minimum=64)
        self.codec = Codec(response_model, compress_threshold, self.max_entry_bytes)
        self.layout_checked = False
        #: called with ``(digest, entry bytes)`` after each hit decodes (None: nothing is);
        #: the facades' tracing sets it, the core only calls it
        self.on_hit: Callable[[str, bytes], None] | None = None

    # -- layout -------------------------------------------------------------------------

    def layout_call(self, write: bool) -> Call:
        """Read the namespace's recorded layout; ``write``: record ours if none is."""
        return Call(_LAYOUT, (self.keys.meta,), (self.layout, "1" if write else "0"))

    def check_layout_reply(self, reply: Sequence[Any]) -> None:
        """Raise ``LayoutMismatchError`` if the recorded layout is not ours; mark the layout
        checked when it is ours (recorded, or written by this call)."""
        recorded = reply[0]
        if recorded is None or recorded is False:
            return  # nothing recorded (read only, or the write was refused at OOM)
        text = decode_text(recorded)
        if text != self.layout:
            self.layout_checked = False
            raise LayoutMismatchError(
                f"namespace {self.keys.prefix!r} was created with layout {text!r}, "
                f"this cache uses {self.layout!r}: open it with the same shards= and "
                "max_entries= (or clear it with the old settings first)"
            )
        self.layout_checked = True

    def put_batch(self, put: Call) -> Batch:
        """A put together with the layout re-assertion (one round trip): every put records
        the layout again if its record vanished, and notices another layout."""
        return Batch((self.layout_call(True), put))

    # -- request-level helpers ----------------------------------------------------------

    def key_of_fields(self, fields: tuple[Any, ...]) -> tuple[RequestFields, RequestKey]:
        """Normalised fields and the key of a five-field request (``TypeError``/``ValueError``
        for a bad field)."""
        req, digest, _shard = self.request(fields)
        return req, RequestKey(self.keys, digest, req[2])

    def request(self, fields: tuple[Any, ...]) -> tuple[RequestFields, str, int]:
        """Normalised fields, digest and shard of a request."""
        req = normalise_request(*fields)
        digest = digest_of(req)
        return req, digest, self.keys.shard_of(digest)

    def get_call(self, req: RequestFields, digest: str, shard: int) -> Call:
        return Call(_GET, self.keys.entry_keys(shard, digest), (digest, model_arg(req[2]), MAGIC))

    def meta(self, data: Any, models: tuple[str, ...], upstream_ms_: object = None) -> EntryMeta:
        """What a hit on this answer saves: its usage (parsed from ``data``, the response's
        JSON data), its cost priced for the first of ``models`` with a price, and the
        upstream's duration ``upstream_ms_`` (int ms >= 0, or None: not measured).

        The entry point of every writer: the HTTP transport passes the response data, the
        request's model (and the response's ``model`` as a fallback) and the round trip's
        duration, then hands the result to ``encode``/``encode_entry``."""
        ms = None if upstream_ms_ is None else upstream_ms(upstream_ms_)
        return entry_meta(data, models, self.prices, ms)

    def put_call(self, digest: str, shard: int, payload: bytes, ttl_ms: int) -> Call:
        k = self.keys
        return Call(
            script("put"),
            k.entry_keys(shard, digest),
            (digest, payload, ttl_ms, PRUNE_PER_PUT, self.caps[shard]),
        )

    def encode(
        self, response: BaseModel, digest: str, model: str = "", upstream_ms_: object = None
    ) -> bytes:
        """Envelope bytes for the entry of ``digest`` (signed when the cache has a signing
        key), refusing ones over ``max_entry_bytes``. A response whose ``raw`` field makes
        it too large is stored without ``raw`` (logged once) before the limit decides:
        ``raw`` never costs the answer itself. Its header records the usage, the cost for
        ``model`` and ``upstream_ms_`` (see ``meta``)."""
        meta = self.meta(usage_data(response), (model,), upstream_ms_)
        try:
            payload = self.codec.encode(response, meta=meta)
        except EntryTooLargeError:
            if not self.codec.has_raw(response):
                raise
            payload = self.codec.encode(response, without_raw=True, meta=meta)
        else:
            if len(payload) > self.max_entry_bytes and self.codec.has_raw(response):
                payload = self.codec.encode(response, without_raw=True, meta=meta)
        return self.seal(digest, payload)

    def seal(self, digest: str, payload: bytes) -> bytes:
        """``payload`` (an envelope of either path) as stored for ``digest``: signed when the
        cache has a signing key, then ``EntryTooLargeError`` if over ``max_entry_bytes``."""
        if self.signer is not None:
            payload = self.signer.sign(digest, payload)
        if len(payload) > self.max_entry_bytes:
            raise EntryTooLargeError(
                f"encoded response is {len(payload)} bytes, over max_entry_bytes="
                f"{self.max_entry_bytes}; it was not stored"
            )
        return payload

    def entry_ttl(self, ttl_seconds: object) -> int:
        """TTL in ms for one put: the per-call one if given, else the cache's."""
        return self.ttl_ms if ttl_seconds is None else ttl_ms(ttl_seconds)

    def decode(self, raw: bytes, digest: str) -> BaseModel:
        """The response in the entry of ``digest``. With a signing key the MAC is checked
        first (``ForgedEntry``), before anything parses the body; then ``CorruptEntry`` if
        the body does not decode."""
        if self.signer is not None:
            self.signer.verify(digest, raw)
        response = self.codec.decode(raw)
        if self.on_hit is not None:
            self.on_hit(digest, raw)
        return response

    def drop_bad_call(
        self,
        exc: ForgedEntry | CorruptEntry,
        req: RequestFields,
        digest: str,
        shard: int,
        raw: bytes,
        *,
        coalesced: bool = False,
    ) -> Call:
        """The script call that takes back what the read of ``raw`` credited and counts it
        as ``forged`` (a ``ForgedEntry``: dropped), ``corrupt`` (dropped) or ``rejected``
        (a ``RejectedEntry``: decodes, but not as our model; kept)."""
        return self.drop_bad_model_call(
            exc, model_arg(req[2]), digest, shard, raw, coalesced=coalesced
        )

    def drop_bad_model_call(
        self,
        exc: Exception,
        model: bytes,
        digest: str,
        shard: int,
        raw: bytes,
        *,
        coalesced: bool = False,
    ) -> Call:
        """``drop_bad_call`` by the model-name argument (both request shapes)."""
        if isinstance(exc, ForgedEntry):
            return Call(
                script("drop_forged"),
                self.keys.entry_keys(shard, digest),
                (digest, model, raw, "coalesced" if coalesced else "hit"),
            )
        if coalesced:
            return Call(
                script("drop_coalesced"),
                self.keys.entry_keys(shard, digest),
                (digest, model, raw, drop_mode(exc)),
            )
        return self.drop_corrupt_model_call(model, digest, shard, raw, exc)

    def drop_corrupt_call(
        self, req: RequestFields, digest: str, shard: int, raw: bytes, exc: Exception
    ) -> Call:
        """Undo the hit ``raw`` was counted as and count a miss; drop the entry and count it
        corrupt, or (``RejectedEntry``: it decodes, but not as our model) keep it and count
        it rejected."""
        return self.drop_corrupt_model_call(model_arg(req[2]), digest, shard, raw, exc)

    def drop_corrupt_model_call(
        self, model: bytes, digest: str, shard: int, raw: bytes, exc: Exception
    ) -> Call:
        """``drop_corrupt_call`` by the model-name argument (both request shapes)."""
        return Call(
            script("drop_corrupt"),
            self.keys.entry_keys(shard, digest),
            (digest, model, raw, drop_mode(exc)),
        )


# -- operations: free functions of a Core ---------------------------------------------


def op_check_layout(core: Core, write: bool = True) -> Op[None]:
    """Check this namespace's layout; ``write`` (data calls): record it if absent.

    Looking (``write=False``: stats, len, the CLI, the metrics) never writes. A write
    the server refuses (maxmemory with noeviction) is not an error: the layout stays
    unrecorded, and every put records it again (``put_batch``), so a fleet that lost
    its record (a restart without persistence, an eviction) re-asserts it.
    """
    reply = yield core.layout_call(write)
    core.check_layout_reply(reply)
    if write and not core.layout_checked:
        core.layout_checked = True  # refused at OOM: puts re-assert it


def decode_hit(
    core: Core, raw: bytes, req: RequestFields, digest: str, shard: int
) -> Op[BaseModel | None]:
    """Decode a hit; a bad MAC or body turns the counted hit into a counted miss: forged
    or corrupt (the entry is dropped), or rejected by this response model (kept)."""
    try:
        return core.decode(raw, digest)
    except (ForgedEntry, CorruptEntry) as exc:
        yield core.drop_bad_call(exc, req, digest, shard, raw)
        return None


def _each_shard(core: Core, name: str, keys: Any, *args: str | int) -> Batch:
    """One call of script ``name`` per shard; ``keys(shard)`` gives its KEYS."""
    s = script(name)
    return Batch(tuple(Call(s, keys(i), args) for i in range(core.keys.shards)))


def op_get(core: Core, fields: tuple[Any, ...]) -> Op[BaseModel | None]:
    req, digest, shard = core.request(fields)
    raw = yield core.get_call(req, digest, shard)
    if raw is None:
        return None
    return (yield from decode_hit(core, raw, req, digest, shard))


def op_put(
    core: Core,
    fields: tuple[Any, ...],
    response: BaseModel,
    ttl_seconds: object = None,
    upstream_ms_: object = None,
) -> Op[None]:
    req, digest, shard = core.request(fields)
    ttl_ms = core.entry_ttl(ttl_seconds)
    payload = core.encode(response, digest, req[2], upstream_ms_)
    layout, _added = yield core.put_batch(core.put_call(digest, shard, payload, ttl_ms))
    core.check_layout_reply(layout)


def op_invalidate(core: Core, fields: tuple[Any, ...]) -> Op[bool]:
    _req, digest, shard = core.request(fields)
    k = core.keys
    n = yield Call(
        script("invalidate"),
        k.entry_keys(shard, digest),
        (digest,),
    )
    return bool(n)


def op_size(core: Core) -> Op[int]:
    k = core.keys
    results = yield _each_shard(core, "size", lambda i: (k.index(i),))
    return sum(int(r) for r in results)


def op_fleet_stats(core: Core) -> Op[FleetStats]:
    k = core.keys
    results = yield _each_shard(core, "stats", lambda i: (k.index(i), k.stats(i)))
    out = FleetStats()
    for size, flat in results:
        out.size += int(size)
        parse_counters(flat, out)
    return out


def op_reset_stats(core: Core) -> Op[None]:
    k = core.keys
    yield _each_shard(core, "reset_stats", lambda i: (k.stats(i),))


def op_clear(core: Core, chunk: int = CHUNK, progress: ProgressFn | None = None) -> Op[int]:
    """Delete every entry, shard by shard, ``chunk`` entries a script call.

    Returns the number of script calls made. Each shard's walk is bounded (about twice
    the calls its size needs), so writers racing with ``clear()`` cannot keep it going
    forever; entries they write during the clear may survive it. ``progress`` (optional)
    is called after every script call with a ``ChunkProgress`` (``left`` = index members
    the shard still holds).
    """
    k = core.keys
    s = script("clear")
    calls = 0
    for shard in range(k.shards):
        keys = (k.index(shard), k.stats(shard))
        left = int((yield Call(s, keys, (chunk,))))
        calls += 1
        if progress is not None:
            progress(ChunkProgress(shard, k.shards, calls, left=left))
        budget = 2 * (left // chunk) + 10
        while left and budget:
            left = int((yield Call(s, keys, (chunk,))))
            calls += 1
            budget -= 1
            if progress is not None:
                progress(ChunkProgress(shard, k.shards, calls, left=left))
    return calls


def op_reconcile(core: Core, chunk: int = CHUNK, progress: ProgressFn | None = None) -> Op[int]:
    """Walk every shard's index and drop members whose entry is gone; returns removed.

    ``progress`` (optional) is called after every script call with a ``ChunkProgress``
    (``checked`` and ``removed`` are running totals over all shards).
    """
    k = core.keys
    s = script("reconcile")
    removed = 0
    checked_total = 0
    calls = 0
    for shard in range(k.shards):
        keys = (k.index(shard), k.stats(shard))
        start = 0
        while True:
            nxt, gone, checked = yield Call(s, keys, (start, chunk))
            calls += 1
            removed += int(gone)
            checked_total += int(checked)
            start = int(nxt)
            if progress is not None:
                progress(
                    ChunkProgress(shard, k.shards, calls, checked=checked_total, removed=removed)
                )
            if int(checked) < chunk:
                break
    return removed
