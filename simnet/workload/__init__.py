"""Workloads: offline datasets, the model zoo, and K workers' real gradients (torch)."""

from .datasets import Dataset, load_dataset  # noqa: F401
from .models import build_model  # noqa: F401
from .workers import Workers  # noqa: F401
