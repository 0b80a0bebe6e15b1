"""Robustness suite: bad input, damaged files, false matches, concurrency, determinism."""
