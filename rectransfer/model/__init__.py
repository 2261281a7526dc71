"""The model a backend holds: its configuration, the ranker with what it needs to serve, and the
model directory on disk."""
