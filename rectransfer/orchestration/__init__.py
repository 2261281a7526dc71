"""What the Prefect flows run: per-retailer tasks, task runners, staleness of saved models and the
run report."""
