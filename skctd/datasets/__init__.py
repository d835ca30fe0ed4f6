"""Data loading for skctd: a reader for labelled files and the embedded demo set."""

from skctd.datasets._demo import demo_path, load_demo
from skctd.datasets._io import read_dataset

__all__ = ["demo_path", "load_demo", "read_dataset"]
