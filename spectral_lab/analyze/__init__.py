"""Analyzers: pure functions over arrays (float64) plus streaming versions over trajectory files."""
