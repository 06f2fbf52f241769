"""Intervene's HTTP API: FastAPI app factory, routes, schemas and the error envelope."""
