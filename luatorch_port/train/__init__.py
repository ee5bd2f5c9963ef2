"""Training, evaluation and prediction: a port of the starter's train.lua, reusable.

``fit`` is the loop (see :mod:`.loop`); ``TrainConfig`` its settings; ``predict`` /
``predict_scores`` / ``evaluate`` run a trained model; ``ConfusionMatrix`` and ``Logger``
port optim's classes; ``distributed`` holds the torchrun/DDP plumbing; ``run.run_train``
(in :mod:`.run`) is what ``a2 train`` calls: t7b files in, a run folder out.
"""

from .batchflip import batch_flip, flip_mask
from .checkpoint import load_checkpoint, save_checkpoint
from .confusion import ConfusionMatrix
from .distributed import DistContext
from .logger import Logger, read_log
from .loop import (FitResult, StepInfo, TensorData, TrainConfig, cross_entropy, evaluate, fit,
                   predict, predict_scores)

__all__ = ["TrainConfig", "fit", "evaluate", "predict", "predict_scores", "FitResult",
           "StepInfo", "TensorData", "cross_entropy", "ConfusionMatrix", "Logger", "read_log",
           "DistContext", "batch_flip", "flip_mask", "save_checkpoint", "load_checkpoint"]
