"""Reliability suite: one test (or more) per peer complaint of `research/peers.md` §2 that applies to us,
named `test_complaint_<N>_...` after it.

A package so that its modules import as `reliability.<module>` with `tests/` on `sys.path` (pytest inserts
the first directory above a package), which keeps `tests/_*.py` helpers importable here, in spawned
worker processes, and under mypy.
"""
