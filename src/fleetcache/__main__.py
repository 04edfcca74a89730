"""``python -m fleetcache``: the same as the ``fleetcache`` command."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
