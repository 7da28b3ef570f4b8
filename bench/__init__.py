"""hookd's benchmarks: real ``hookd`` processes on 127.0.0.1, figures as ratios to a baseline.

``python -m bench`` runs them all; ``python -m bench.<name> [--quick]`` runs one. See
docs/benchmarks.md for the latest figures and the commands that made them.
"""
