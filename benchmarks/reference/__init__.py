"""Naive one-simulation-at-a-time reference simulators, the baseline of ``simulators.py``."""
