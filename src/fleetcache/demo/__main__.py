"""``python -m fleetcache.demo``: the same as ``fleetcache demo``."""

from __future__ import annotations

import sys

from .run import main

sys.exit(main())
