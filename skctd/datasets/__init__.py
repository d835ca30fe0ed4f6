"""Data loading for skctd (embedded demo set: not yet written)."""

from skctd.datasets._io import read_dataset

__all__ = ["read_dataset"]
