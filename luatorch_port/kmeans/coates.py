"""Port of Coates' ``kmeans_demo.m`` as an estimator: learn the dictionary, encode images.

``fit``: random patches from unlabelled images -> contrast normalisation -> ZCA -> k-means.
``transform``: triangle (or hard) encoding and 4-quadrant sum pooling -> (N, 4k) features.
``save``/``load``: ``centroids.t7``, a Lua table Torch7 can ``torch.load``::

    {centroids = FloatTensor k x d, M = FloatTensor d, P = FloatTensor d x d,
     rfSize = 6, imageSize = 32, channels = 3, whiten = true, encoder = "triangle",
     objective = DoubleTensor (per iteration)}

``d = channels·rfSize·rfSize`` in (channel, row, column) order, so
``centroids[i]:view(3, rfSize, rfSize)`` is an image patch. Without whitening ``M`` and
``P`` are absent.

Deviations: see ``patches`` (coordinate order, area downsampling), ``lloyd`` (empty
clusters re-seeded) and ``encoder`` (chunked encoding).
"""

from __future__ import annotations

import os
import time

import torch

from .. import t7
from ..util.errors import A2Error
from .encoder import DEFAULT_PRECISION, ENCODERS, encode
from .lloyd import PRECISIONS, run_kmeans
from .patches import COATES_STL_SIZE, grid_patches, random_patches, resize_images
from .whitening import apply_zca, contrast_normalize, fit_zca

COATES_K = 1600          # kmeans_demo.m: numCentroids = 1600
COATES_RF = 6            # kmeans_demo.m: rfSize = 6
COATES_PATCHES = 400000  # kmeans_demo.m: numPatches = 400000
COATES_ITERATIONS = 50   # kmeans_demo.m: run_kmeans(patches, numCentroids, 50)
SAMPLINGS = ("random", "grid")
FIT_PRECISION = "fp32"   # the k-means assignment's scores (see lloyd.run_kmeans and docs/kmeans.md)

# The two settings `a2 kmeans fit --preset` names. "coates": kmeans_demo.m with Coates et al.'s
# STL-10 downsampling; every image of the file, patch i from image i mod N at a random place.
# "report": the course report's section 2.2 ("The size of patches is 22x22, and the gap between
# patches is 2, and therefore we can get 16 patches from each of input figure" ... "16 patches
# from total of 20000 unlabeled figures"): 22x22 patches at stride 24 on the 96x96 images (a
# 4x4 grid), all 16 of each of 20,000 images drawn at random = 320,000 patches, 1600 centroids.
# The report gives no iteration count; Coates' 50 is kept.
PRESETS = {
    "coates": {"k": COATES_K, "rf": COATES_RF, "stride": 1, "n_patches": COATES_PATCHES,
               "iterations": COATES_ITERATIONS, "image_size": COATES_STL_SIZE,
               "sampling": "random", "limit": None},
    "report": {"k": 1600, "rf": 22, "stride": 24, "n_patches": 20000 * 16,
               "iterations": COATES_ITERATIONS, "image_size": 96, "sampling": "grid",
               "limit": 20000},
}


class CoatesKMeans:
    """Coates, Lee & Ng (2011) single-layer k-means features.

    Parameters
    ----------
    k : centroids (1600). rf : patch side (6). n_patches : training patches (400,000).
    iterations : k-means iterations (50). image_size : images are resized to this side
        (32, as Coates for STL-10; None keeps the input size). whiten : ZCA (True).
    init : k-means start, ``"randn"`` (Coates) or ``"patches"``. encoder : ``"triangle"``
        or ``"hard"``. stride : step between encoded patches (1, Coates). sampling : training
        patches at ``"random"`` places (Coates) or every patch of the stride ``"grid"``
        (the report), of which ``n_patches`` are kept at random. precision : the k-means
        assignment's scores, ``"fp32"`` (default, :data:`FIT_PRECISION`) or ``"bf16"``
        (see :func:`~luatorch_port.kmeans.lloyd.run_kmeans`).

    Attributes after :meth:`fit` (or :meth:`load`): ``centroids_`` (k, d), ``zca_mean_``
    (d,) and ``zca_matrix_`` (d, d) or None, ``objective_`` (list of float),
    ``channels_``; after :meth:`fit` also ``inertia_``, ``reseeded_``, ``rescored_`` and
    ``seconds_`` (wall seconds of each stage: ``patches``, ``normalize``, ``whiten``, and
    k-means' ``setup``, ``iterations``, ``final``).
    """

    def __init__(self, k: int = COATES_K, rf: int = COATES_RF, n_patches: int = COATES_PATCHES,
                 iterations: int = COATES_ITERATIONS, image_size: int | None = COATES_STL_SIZE,
                 whiten: bool = True, init: str = "randn", encoder: str = "triangle",
                 stride: int = 1, sampling: str = "random", precision: str = FIT_PRECISION):
        if precision not in PRECISIONS:
            raise A2Error(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if encoder not in ENCODERS:
            raise A2Error(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        if sampling not in SAMPLINGS:
            raise A2Error(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if stride < 1:
            raise A2Error(f"stride={stride} should be >= 1")
        self.stride, self.sampling, self.precision = stride, sampling, precision
        self.k, self.rf, self.n_patches, self.iterations = k, rf, n_patches, iterations
        self.image_size, self.whiten, self.init, self.encoder = image_size, whiten, init, encoder

    def config(self) -> dict:
        return {"k": self.k, "rf": self.rf, "n_patches": self.n_patches,
                "iterations": self.iterations, "image_size": self.image_size,
                "whiten": self.whiten, "init": self.init, "encoder": self.encoder,
                "stride": self.stride, "sampling": self.sampling, "precision": self.precision}

    def fit(self, images: torch.Tensor, *, generator: torch.Generator | None = None,
            device: torch.device | str = "cpu", on_images=None, on_iteration=None) -> "CoatesKMeans":
        """Learn the dictionary from uint8 (N, C, H, W) unlabelled images.

        generator : torch.Generator for patch positions and the k-means start.
        device : where k-means runs. on_images(n) / on_iteration(i, objective) : progress.
        """
        if images.dim() != 4:
            raise A2Error(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
        if self.n_patches < self.k:
            raise A2Error(f"n_patches={self.n_patches} should be >= k={self.k}")
        seconds, t = {}, time.perf_counter()
        if self.sampling == "grid":
            patches = grid_patches(images, self.rf, self.stride, self.image_size, self.n_patches,
                                   generator=generator, progress=on_images)
            if patches.shape[0] < self.k:
                raise A2Error(f"{patches.shape[0]} grid patches should be >= k={self.k}")
        else:
            patches = random_patches(images, self.n_patches, self.rf, self.image_size,
                                     generator=generator, progress=on_images)
        self.n_patches_used_ = patches.shape[0]
        seconds["patches"], t = time.perf_counter() - t, time.perf_counter()
        contrast_normalize(patches, out=patches)
        seconds["normalize"], t = time.perf_counter() - t, time.perf_counter()
        if self.whiten:
            self.zca_mean_, self.zca_matrix_ = fit_zca(patches)
            patches = apply_zca(patches, self.zca_mean_, self.zca_matrix_, out=patches)
        else:
            self.zca_mean_ = self.zca_matrix_ = None
        seconds["whiten"] = time.perf_counter() - t
        result = run_kmeans(patches.to(device), self.k, self.iterations, init=self.init,
                            generator=generator, precision=self.precision, callback=on_iteration)
        self.centroids_ = result.centroids.cpu()
        self.objective_ = list(result.objective)
        self.inertia_ = result.inertia
        self.reseeded_ = list(result.reseeded)
        self.rescored_ = list(result.rescored)
        self.seconds_ = {**seconds, **result.seconds}
        self.channels_ = images.shape[1]
        return self

    def _check_fitted(self):
        if not hasattr(self, "centroids_"):
            raise A2Error("the k-means dictionary is not fitted: call fit() or load() first")

    def transform(self, images: torch.Tensor, *, device: torch.device | str = "cpu",
                  precision: str = DEFAULT_PRECISION, progress=None) -> torch.Tensor:
        """Features of uint8 (N, C, H, W) images: float32 (N, 4k); progress(n) per chunk.

        precision : the distance GEMM's, ``"bf16"`` (default) or ``"fp32"`` (see ``encoder``).
        """
        self._check_fitted()
        if images.dim() != 4 or images.shape[1] != self.channels_:
            raise A2Error(f"expected images of shape (N, {self.channels_}, H, W), "
                          f"got {tuple(images.shape)}")
        if self.image_size is not None and tuple(images.shape[2:]) != (self.image_size,) * 2:
            images = resize_images(images, self.image_size)
        dev = torch.device(device)
        mean = None if self.zca_mean_ is None else self.zca_mean_.to(dev)
        p = None if self.zca_matrix_ is None else self.zca_matrix_.to(dev)
        return encode(images, self.centroids_.to(dev), self.rf, mean, p, encoder=self.encoder,
                      precision=precision, stride=self.stride, progress=progress)

    def to_t7(self) -> dict:
        """The Lua table written by :meth:`save`."""
        self._check_fitted()
        table = {"centroids": self.centroids_.float().contiguous()}
        if self.zca_matrix_ is not None:
            table["M"] = self.zca_mean_.float().contiguous()
            table["P"] = self.zca_matrix_.float().contiguous()
        table.update({
            "rfSize": self.rf, "imageSize": 0 if self.image_size is None else self.image_size,
            "channels": self.channels_, "whiten": self.zca_matrix_ is not None,
            "encoder": self.encoder, "init": self.init, "iterations": self.iterations,
            "numPatches": self.n_patches, "stride": self.stride, "sampling": self.sampling,
            "objective": torch.tensor(getattr(self, "objective_", []), dtype=torch.float64),
        })
        return table

    def save(self, path) -> None:
        """Write ``centroids.t7`` (atomically) for Lua Torch or :meth:`load`."""
        t7.save(self.to_t7(), path)

    @classmethod
    def from_t7(cls, table, name: str = "centroids.t7") -> "CoatesKMeans":
        if not isinstance(table, dict):
            raise A2Error(f"{name}: expected a table with 'centroids', got {type(table).__name__}")

        def field(key, required=True):
            if key not in table:
                if required:
                    raise A2Error(f"{name}: missing field '{key}'")
                return None
            return table[key]

        cents = field("centroids")
        if not isinstance(cents, torch.Tensor) or cents.dim() != 2:
            raise A2Error(f"{name}: field 'centroids' should be a k x d tensor")
        rf, channels = int(field("rfSize")), int(field("channels"))
        if cents.shape[1] != channels * rf * rf:
            raise A2Error(f"{name}: centroids are {cents.shape[0]}x{cents.shape[1]}, expected "
                          f"d = channels*rfSize^2 = {channels * rf * rf}")
        whiten = bool(field("whiten", required=False) if "whiten" in table else "P" in table)
        size = int(field("imageSize"))
        model = cls(k=cents.shape[0], rf=rf, image_size=size or None, whiten=whiten,
                    encoder=str(field("encoder", required=False) or "triangle"),
                    init=str(field("init", required=False) or "randn"),
                    iterations=int(field("iterations", required=False) or 0),
                    n_patches=int(field("numPatches", required=False) or 0),
                    stride=int(field("stride", required=False) or 1),
                    sampling=str(field("sampling", required=False) or "random"))
        model.centroids_ = cents.float()
        model.channels_ = channels
        if whiten:
            m, p = field("M"), field("P")
            d = cents.shape[1]
            if not isinstance(m, torch.Tensor) or m.numel() != d:
                raise A2Error(f"{name}: field 'M' should hold {d} values")
            if not isinstance(p, torch.Tensor) or tuple(p.shape) != (d, d):
                raise A2Error(f"{name}: field 'P' should be a {d}x{d} tensor")
            model.zca_mean_, model.zca_matrix_ = m.float().reshape(d), p.float()
        else:
            model.zca_mean_ = model.zca_matrix_ = None
        obj = field("objective", required=False)
        model.objective_ = [] if obj is None else [float(v) for v in torch.as_tensor(obj).reshape(-1)]
        return model

    @classmethod
    def load(cls, path) -> "CoatesKMeans":
        """Read a ``centroids.t7`` written by :meth:`save` (or by Lua with the same fields)."""
        return cls.from_t7(t7.load(path), name=os.fspath(path))
