"""Synthetic MHSDS-style extract generator (no real patient data, ever)."""
