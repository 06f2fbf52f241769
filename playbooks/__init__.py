"""The playbook engine: the action catalog, plans, the execute/rollback service, approvals.

No FastAPI, no Prefect: the API and the flows call it, never the other way round.
"""
