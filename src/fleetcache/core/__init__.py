"""The pure core: everything fleetcache decides, with no I/O (no sockets, no Redis client,
no event loop). Operations are generators that yield instructions; the sync and async
stores (``_store.py``/``_astore.py``) run them, so both flavours behave the same.

- ``instructions``: the vocabulary an operation yields (``Call``, ``Batch``, ``Sleep``,
  ``Compute``) and the ``Op``/``StepOp`` generator types.
- ``ops``: ``Core``, one cache's configuration and call builders, and the five-field
  operations ``op_get(core, ...)``, ``op_put``, ... (every op is such a free function).
- ``batch``: ``get_many``/``put_many`` planning and ops.
- ``flight``: ``Flight`` (single-flight ``get_or_compute``), built from a ``RequestKey``.
- ``request_ops``: the whole-request path (``get_request``, ``put_request``,
  ``get_or_compute_request`` = one ``RequestFlight`` whatever its control).
- ``canonical``: RFC 8785 canonical JSON of a request and its digest.
- ``keys``: key names, hash tags and shards of a namespace; the five-field digest;
  ``RequestKey`` (digest, shard, model) of any keyed path.
- ``envelope``: response <-> stored bytes (header, msgpack body, compression), for both
  the five-field and the request-path (``FLAG_JSON``) entries.
- ``signing``: the HMAC that signs and verifies entries.
- ``models``: the response and stats models, and ``COUNTERS`` (the one counter list).
- ``info``: ``cache_info``, hit or miss attached to each returned response.
- ``usage``: token usage of any provider's response JSON (input, output, cache read/write).
- ``prices``: what an answer cost (integer nano-USD), from ``prices=`` or ``genai-prices``.
- ``validate``: the argument checks (seconds, TTLs, byte counts, timeouts) and the
  per-call controls (``CONTROLS``), for the caches and every integration.
- ``http_key``: the caching HTTP transport's key (what is sent and to whom, no credential).
- ``sse``: an incremental server-sent-events parser (any chunking) and encoder.
- ``endpoints``: the cacheable LLM endpoints and, per provider, stream recording, stream
  replay, the default storing rule and model names (``_openai_sse``/``_anthropic_sse``
  hold the OpenAI and Anthropic stream shapes).

Nothing here imports redis, asyncio, socket, a store or a facade, nor threading except
``info``'s lock around its table (``tests/unit/test_core_imports.py`` checks it). The Lua
scripts the calls name are read once per process by ``fleetcache._lua`` (package data).
"""
