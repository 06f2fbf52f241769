"""Closed-loop remediation: a check's failure fixed, verified and resolved by Intervene's services
(loop.py), inside guardrails the database keeps (models/services/remediations.py)."""
