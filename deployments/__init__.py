"""How flows are served and scheduled; `prefect.yaml` at the root declares the deployments."""
