"""Package metadata has one source: the version in the installed distribution is the one
``fleetcache.__version__`` states (hatch reads it from ``__init__.py``)."""

from __future__ import annotations

import importlib.metadata

import fleetcache


def test_version_is_written_once() -> None:
    assert fleetcache.__version__ == importlib.metadata.version("fleetcache")
