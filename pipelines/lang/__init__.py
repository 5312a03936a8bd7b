"""Languages: words per script and language, stop words, and the per-language threshold table."""
