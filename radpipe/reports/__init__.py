"""Radiology reports: readers for JSONL/CSV/Open-i XML, section splitting, rule-based labels."""
