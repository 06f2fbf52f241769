"""One module per action: its Params, plan() and preflight(), all pure of Prefect."""
