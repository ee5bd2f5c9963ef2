"""Report part 2.1: surrogate classes (Exemplar-CNN, Dosovitskiy et al. 2014).

``transforms`` (random parameters, batched affine warps, colour jitter), ``build`` (the
surrogate dataset file), ``features`` (4-quadrant max-pooled responses of every layer).
"""

from .build import (PATCH, PER_SEED, N_SEEDS, SurrogateSet, augmentation_examples,
                    build_surrogate, load, render, seed_windows)
from .transforms import COLUMNS, TransformRanges, sample_params, warp

__all__ = ["PATCH", "PER_SEED", "N_SEEDS", "SurrogateSet", "augmentation_examples", "build_surrogate",
           "load", "render", "seed_windows", "COLUMNS", "TransformRanges", "sample_params",
           "warp"]
