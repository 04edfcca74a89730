"""The pure core: parsing and pricing with no I/O."""
