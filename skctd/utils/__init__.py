"""Helpers shared by every layer: input validation and optional imports."""
