"""Clients of what Intervene works on: the warehouse (and its demo data), Elasticsearch."""
