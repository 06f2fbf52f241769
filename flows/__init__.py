"""Playbook actions and scheduled checks, each a Prefect 3 flow."""
