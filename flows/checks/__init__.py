"""The Prefect flow of the scheduled checks (the engine is the checks package)."""
