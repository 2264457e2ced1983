"""Prefect flows: thin orchestration over the radpipe library."""
