"""Extraction: HTML main text, PDF text layers and OCR, each in a sandboxed child process."""
