"""The checks engine: declared in YAML, evaluated against the warehouse, turned into incidents.

No Prefect: the scheduled check flow (flows/checks/flow.py) and rerun_eval call it.
"""
