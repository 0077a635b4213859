"""Benchmarks: each module measures one thing and returns figures; ``python -m bench`` runs all."""
