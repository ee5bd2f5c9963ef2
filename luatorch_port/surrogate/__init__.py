"""Report part 2.1: surrogate classes (Exemplar-CNN, Dosovitskiy et al. 2014).

``transforms`` (random parameters, presets, batched affine warps, colour jitter), ``build``
(the surrogate dataset file), ``train`` (patch normalisation, held-out split), ``features``
(4-quadrant max-pooled responses of every layer), ``run`` (what each command does:
``run_build``, ``run_train``, ``run_eval``), ``settings`` (settings that work on photographs).
"""

from .build import (PATCH, PER_SEED, N_SEEDS, SurrogateSet, augmentation_examples,
                    build_surrogate, load, render, seed_windows)
from .transforms import COLUMNS, DEFAULT_PRESET, PRESETS, TransformRanges, preset, sample_params, warp

__all__ = ["PATCH", "PER_SEED", "N_SEEDS", "SurrogateSet", "augmentation_examples", "build_surrogate",
           "load", "render", "seed_windows", "COLUMNS", "DEFAULT_PRESET", "PRESETS", "TransformRanges",
           "preset", "sample_params", "warp"]
