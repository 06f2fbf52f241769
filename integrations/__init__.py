"""Clients of the outside: the warehouse (and its demo data), Elasticsearch, GitHub issues,
and the rules a webhook target must follow."""
