"""Evaluation of embedding models: zero-shot classification, retrieval, linear probes (pure numpy)."""
