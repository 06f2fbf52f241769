"""Intervene's storage and business rules: tables, the incident state machine, services.

`models` imports neither FastAPI nor Prefect; the API and the flows both build on it.
"""
