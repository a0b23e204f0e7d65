"""Runnable example agents (`python -m examples.calculator`)."""
