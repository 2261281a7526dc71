"""Helpers every layer may use: publishing, destinations, progress, threads, top-k, versions."""
