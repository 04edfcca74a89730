"""fleetcache: a fleet-wide exact-match cache for LLM responses on Redis and Valkey.

Server-side Lua scripts read an entry and count the hit in one atomic round trip, keep an
exact entry count under TTL expiry, and store compact msgpack payloads. A drop-in for the
exact cache of the ``ractogateway`` SDK.
"""

from __future__ import annotations

from ._clients import AsyncConnectRetry, ConnectRetry
from .aio import AsyncRedisExactCache
from .cache import RedisExactCache
from .core.canonical import DEFAULT_IGNORE, request_digest
from .core.info import CacheInfo, cache_info
from .core.models import (
    CacheStats,
    FinishReason,
    FleetStats,
    LLMResponse,
    ModelStats,
    ToolCallResult,
)
from .core.ops import ChunkProgress
from .core.request_ops import default_should_store
from .errors import (
    CacheUnavailableError,
    EntryTooLargeError,
    FleetCacheError,
    LayoutMismatchError,
    UnsupportedServerError,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncConnectRetry",
    "DEFAULT_IGNORE",
    "AsyncRedisExactCache",
    "CacheInfo",
    "CacheStats",
    "CacheUnavailableError",
    "ChunkProgress",
    "ConnectRetry",
    "EntryTooLargeError",
    "FinishReason",
    "FleetCacheError",
    "FleetStats",
    "LLMResponse",
    "LayoutMismatchError",
    "ModelStats",
    "RedisExactCache",
    "ToolCallResult",
    "UnsupportedServerError",
    "__version__",
    "cache_info",
    "default_should_store",
    "request_digest",
]
