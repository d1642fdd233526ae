"""Benchmarks of blindmatch: the ``blindmatch bench`` harness, RSS measurement and comparisons.

Each protocol side runs in its own (spawned) process so that the peak RSS reported for
the holder and for the requester is that side's own, measured from ``/proc/self/status``.
"""
