"""Helpers every layer may use: atomic publishing of files and folders, threads, top-k, versions."""
