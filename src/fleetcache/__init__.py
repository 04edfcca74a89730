"""fleetcache: a fleet-wide exact-match cache for LLM responses on Redis and Valkey.

Server-side Lua scripts read an entry and count the hit in one atomic round trip, keep an
exact entry count under TTL expiry, and store compact msgpack payloads. A drop-in for the
exact cache of the ``ractogateway`` SDK.
"""

from __future__ import annotations

from ._clients import AsyncConnectRetry, ConnectRetry
from ._core import ChunkProgress
from ._info import CacheInfo, cache_info
from ._models import CacheStats, FinishReason, FleetStats, LLMResponse, ModelStats, ToolCallResult
from ._reqcore import default_should_store
from ._request import DEFAULT_IGNORE, request_digest
from .aio import AsyncRedisExactCache
from .cache import RedisExactCache
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
