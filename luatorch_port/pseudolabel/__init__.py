"""Report parts 2.3 and 2.4: pseudo-labels (Lee 2013) and k-means features + self-training."""

from .schedule import alpha_schedule
from .select import select_pseudo_labels

__all__ = ["alpha_schedule", "select_pseudo_labels"]
