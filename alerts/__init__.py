"""Alerts from the tools a platform already runs: routing rules and intake (docs/alerts.md)."""
