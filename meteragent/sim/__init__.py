"""Simulations built from the real agent (demo fleet)."""
