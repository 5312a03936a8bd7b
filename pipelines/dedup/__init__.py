"""Deduplication: exact, URL and MinHash near-duplicates, decided on small records."""
