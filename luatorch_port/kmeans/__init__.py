"""Coates, Lee & Ng (2011) k-means features (report part 2.2), after Coates' kmeans_demo.

One module per file of the original: ``patches`` (random patches, downsampling),
``whitening`` (contrast normalisation, ZCA), ``lloyd`` (``run_kmeans.m``), ``encoder``
(``extract_features.m``: triangle / hard encoding, 4-quadrant sum pooling), ``coates``
(the ``CoatesKMeans`` estimator and ``centroids.t7``), ``svm`` (``train_svm.m``: the
standardiser, the L2-SVM, choosing C on val), ``run`` (what ``a2 kmeans fit`` / ``eval`` do).
"""

from .coates import (COATES_ITERATIONS, COATES_K, COATES_PATCHES, COATES_RF, CoatesKMeans)
from .encoder import ENCODERS, encode, pool_quadrants, quadrant_half
from .lloyd import KMeansResult, assign, run_kmeans
from .patches import COATES_STL_SIZE, image_patches, random_patches, resize_images
from .run import Evaluation, evaluate, run_eval, run_fit
from .svm import C_GRID, Classifier, SVMFit, accuracy, fit_classifier, fit_svm, select_C
from .whitening import CONTRAST_VAR_REG, ZCA_EPS, apply_zca, contrast_normalize, fit_zca

__all__ = ["CoatesKMeans", "COATES_K", "COATES_RF", "COATES_PATCHES", "COATES_ITERATIONS",
           "COATES_STL_SIZE", "ENCODERS", "encode", "pool_quadrants", "quadrant_half",
           "KMeansResult", "run_kmeans", "assign", "image_patches", "random_patches",
           "resize_images", "Classifier", "Evaluation", "evaluate", "fit_classifier",
           "run_fit", "run_eval", "C_GRID", "accuracy", "select_C", "fit_svm", "SVMFit",
           "CONTRAST_VAR_REG", "ZCA_EPS", "apply_zca", "contrast_normalize", "fit_zca"]
