"""Prefect flows of rectransfer: thin wiring of package calls (see prefect.yaml)."""
