"""Writing: the final Parquet shards, publishing, and the data card."""
