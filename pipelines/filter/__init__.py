"""Filtering: opt-outs, PII masking, language ID, heuristic rules, decontamination, quality classifiers."""
