"""The jobs a user runs (curate, and later mix and shards) and the `refinery` CLI."""

__version__ = "0.1.0"
