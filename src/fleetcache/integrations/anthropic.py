"""The Anthropic SDK on a fleetcache namespace: ``client = cached(Anthropic(), cache)``.

Returns the SDK's own client class (``isinstance(..., anthropic.Anthropic)``), built with
``client.with_options(http_client=...)`` around the transport the client already had (see
:mod:`fleetcache.integrations.openai`, which works the same way). Cached: every POST to
``/v1/messages``: ``messages.create`` (streamed too), ``messages.parse``,
``messages.stream``, ``with_raw_response``. ``anthropic-beta`` and ``anthropic-version``
are part of the key; ``cache_control`` markers are not.

``Anthropic`` takes a ``RedisExactCache``, ``AsyncAnthropic`` an ``AsyncRedisExactCache``.
``cache_info`` works on the objects it builds; per call:
``extra_headers=control_headers(control=..., ttl=...)`` (see the OpenAI module). Needs
the ``anthropic`` package (extra ``anthropic``).
"""

from __future__ import annotations

from .openai import cached  # the two SDKs share their client machinery (Stainless)

__all__ = ["cached"]
