"""Prefect pipelines as incidents: which finished flow runs Intervene watches (watch.py) and
taking one in (intake.py), shared by the event follower (deployments/prefect_events.py) and
the API's endpoints for servers Intervene cannot subscribe to (api/routes/prefect.py)."""
