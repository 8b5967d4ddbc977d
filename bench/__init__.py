"""Benchmarks (`make bench`): each compares side by side in one run and records its results."""
