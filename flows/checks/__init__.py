"""Scheduled checks: declared in YAML, evaluated against the warehouse, turned into incidents."""
