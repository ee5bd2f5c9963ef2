"""Report part 3.2: a t-SNE map of images (PCA to 50 dimensions, then t-SNE).

Port of the report's use of manifold.embedding.tsne (clementfarabet/manifold, which reduces its
input with PCA before t-SNE) and manifold.draw_image_map; the t-SNE is scikit-learn's
(perplexity 30, PCA initialisation, its optimiser), either as scikit-learn runs it with
Barnes-Hut (θ 0.5) or, up to :data:`tsne_exact.EXACT_MAX_POINTS` points, the same algorithm
with the exact gradient in torch (:mod:`luatorch_port.tsne_exact`).

Deviations: manifold called the bhtsne binary; coordinates differ from a Lua run even for the
same input, only the map's structure is comparable. ``method="auto"`` (the default) uses the
exact gradient for the report's 1,000 val images: the same affinities and optimiser as
Barnes-Hut without its θ approximation, and faster here (docs/visualize.md). The embedding is
scored with scikit-learn's trustworthiness (k = 5 neighbours) against the features given, a
number the report did not have.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import A2Error

# manifold.embedding.tsne reduces to 50 dimensions with PCA first (its `pca` option).
PCA_DIMS = 50
# Settings of the report's run (manifold defaults): perplexity 30, Barnes-Hut theta 0.5.
PERPLEXITY = 30.0
THETA = 0.5
N_ITER = 1000
TRUST_NEIGHBORS = 5
METHODS = ("auto", "exact", "barnes-hut")


@dataclass
class Embedding:
    """The result of :func:`embed`.

    coords : float64 N×2 array; trustworthiness : float in [0, 1]; seconds : wall time per step.
    """

    coords: np.ndarray
    trustworthiness: float
    input_dims: int
    pca_dims: int
    kl_divergence: float
    method: str = "barnes-hut"
    seconds: dict = field(default_factory=dict)


def pca(x: torch.Tensor, dims: int = PCA_DIMS) -> torch.Tensor:
    """Project the rows of ``x`` (N×D) on their first ``dims`` principal components.

    Through the N×N Gram matrix when N < D (1000 images of 9,216 values: one small GEMM and
    an eigendecomposition), else through the D×D covariance. Returns float64 N×min(dims, N, D)
    with components in decreasing order of variance; signs are made deterministic.
    """
    if x.dim() != 2:
        raise A2Error(f"pca: expected an N×D matrix, got shape {tuple(x.shape)}")
    xc = x.to(torch.float64)
    xc = xc - xc.mean(dim=0, keepdim=True)
    n, d = xc.shape
    k = min(dims, n, d)
    if n <= d:
        evals, evecs = torch.linalg.eigh(xc @ xc.T)
        top = evecs[:, -k:].flip(1) * evals[-k:].flip(0).clamp_min(0).sqrt()
    else:
        evals, evecs = torch.linalg.eigh(xc.T @ xc)
        top = xc @ evecs[:, -k:].flip(1)
    # sign convention: the largest-magnitude entry of each component is positive
    idx = top.abs().argmax(dim=0)
    signs = torch.sign(top[idx, torch.arange(k)])
    signs[signs == 0] = 1
    return top * signs


def embed(features, *, pca_dims: int = PCA_DIMS, perplexity: float = PERPLEXITY, theta: float = THETA,
          n_iter: int = N_ITER, trust_neighbors: int = TRUST_NEIGHBORS, threads: int | None = None,
          method: str = "auto", generator: torch.Generator | None = None) -> Embedding:
    """t-SNE of ``features`` (N×D, any float or integer dtype) into 2-D.

    PCA to ``pca_dims`` (skipped when ``pca_dims`` is 0 or D is already that small), then
    t-SNE (``perplexity``, ``n_iter`` iterations, PCA initialisation): ``method="barnes-hut"``
    is scikit-learn's (``angle=theta``, seeded from ``generator``), ``"exact"`` the exact
    gradient of :mod:`luatorch_port.tsne_exact` (deterministic, ``theta`` unused), ``"auto"``
    exact up to ``tsne_exact.EXACT_MAX_POINTS`` points. Trustworthiness is computed against
    ``features`` themselves. ``threads`` caps the threads of the t-SNE step (None: all cores);
    on a shared, busy machine one thread can be several times faster than two.
    """
    from .threads import torch_threads
    from .tsne_exact import EXACT_MAX_POINTS, tsne_exact

    from sklearn.manifold import TSNE, trustworthiness
    from threadpoolctl import threadpool_limits

    x = torch.as_tensor(features)
    if x.dim() != 2:
        raise A2Error(f"t-SNE: expected N×D features, got shape {tuple(x.shape)}")
    n, d = x.shape
    if n <= perplexity:
        raise A2Error(f"t-SNE: {n} points is too few for perplexity {perplexity:g} (needs more points than that; "
                      f"lower --perplexity)")
    if n <= trust_neighbors * 2 + 1:
        raise A2Error(f"t-SNE: {n} points is too few for trustworthiness with {trust_neighbors} neighbours")
    if not bool(torch.isfinite(x).all()):
        raise A2Error("t-SNE: the features contain NaN or infinite values (a diverged model?)")
    if bool((x == x[:1]).all()):
        raise A2Error("t-SNE: every image has the same features; there is nothing to map")
    if method not in METHODS:
        raise A2Error(f"t-SNE method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        method = "exact" if n <= EXACT_MAX_POINTS else "barnes-hut"
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())
    seconds = {}
    t0 = time.perf_counter()
    x64 = x.to(torch.float64)
    reduced = pca(x64, pca_dims) if pca_dims and d > pca_dims else x64
    seconds["pca"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if method == "exact":
        with torch_threads(threads):
            result = tsne_exact(reduced, perplexity=perplexity, n_iter=n_iter)
        coords, kl = result.coords.to(torch.float64).numpy(), result.kl_divergence
    else:
        tsne = TSNE(n_components=2, perplexity=perplexity, angle=theta, max_iter=n_iter, init="pca",
                    learning_rate="auto", method="barnes_hut", random_state=seed)
        with threadpool_limits(limits=threads, user_api="openmp"):
            coords = tsne.fit_transform(reduced.numpy())
        kl = float(tsne.kl_divergence_)
    seconds["tsne"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    trust = float(trustworthiness(x64.numpy(), coords, n_neighbors=trust_neighbors))
    seconds["trustworthiness"] = time.perf_counter() - t0
    return Embedding(coords=np.asarray(coords, dtype=np.float64), trustworthiness=trust, input_dims=d,
                     pca_dims=reduced.shape[1], kl_divergence=kl, method=method, seconds=seconds)


def raw_channel_features(images: torch.Tensor, channel: int = 1) -> torch.Tensor:
    """The report's input: channel ``channel`` (1-based, as in Lua) of each image, flattened.

    ``images`` N×C×H×W (uint8 or float) -> float64 N×(H·W) on the 0..255 scale of the file.
    """
    if images.dim() != 4:
        raise A2Error(f"t-SNE: expected N×C×H×W images, got shape {tuple(images.shape)}")
    if not 1 <= channel <= images.shape[1]:
        raise A2Error(f"--channel {channel} is out of range: the images have channels 1..{images.shape[1]}")
    return images[:, channel - 1].reshape(images.shape[0], -1).to(torch.float64)


def write_coords_csv(path, coords: np.ndarray, labels=None, class_names=None) -> None:
    """``index,x,y[,label,class]`` per point (index 1-based, file order), written atomically."""
    from .t7 import atomic_output

    with atomic_output(path, "w") as f:
        header = "index,x,y" + (",label,class" if labels is not None else "")
        f.write(header + "\n")
        for i, (x, y) in enumerate(coords):
            line = f"{i + 1},{x:.6f},{y:.6f}"
            if labels is not None:
                lab = int(labels[i])
                name = class_names[lab] if class_names is not None and lab < len(class_names) else str(lab + 1)
                line += f",{lab + 1},{name}"
            f.write(line + "\n")


def save_scatter(path, coords: np.ndarray, labels=None, class_names=None, title: str = "",
                 size=(7.0, 6.0), dpi: int = 100) -> tuple[int, int]:
    """Scatter of the 2-D coordinates coloured by class (1..10 legend by name); PNG, atomic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .viz import _save_figure

    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    try:
        if labels is None:
            ax.scatter(coords[:, 0], coords[:, 1], s=6, c="tab:blue")
        else:
            labels = np.asarray(labels)
            cmap = plt.get_cmap("tab10")
            for lab in np.unique(labels):
                pts = coords[labels == lab]
                name = class_names[lab] if class_names is not None and lab < len(class_names) else str(lab + 1)
                ax.scatter(pts[:, 0], pts[:, 1], s=6, color=cmap(int(lab) % 10), label=name)
            ax.legend(markerscale=3, fontsize=8, loc="best")
        ax.set_xticks([])
        ax.set_yticks([])
        if title:
            import textwrap

            ax.set_title(textwrap.fill(title, 90), fontsize=9)
        fig.tight_layout()
        return _save_figure(fig, path, dpi)
    finally:
        plt.close(fig)


def thumbnails(images: torch.Tensor, size: int) -> torch.Tensor:
    """N×C×H×W (uint8 0..255 or float 0..1) -> float64 N×C×size×size in [0, 1] (area averaging)."""
    x = images.to(torch.float64)
    if images.dtype == torch.uint8:
        x = x / 255.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = torch.nn.functional.adaptive_avg_pool2d(x, size)
    return x


def model_features(model: torch.nn.Module, inputs: torch.Tensor, *, batch_size: int = 100,
                   device=None) -> torch.Tensor:
    """The input of ``model``'s last fully connected layer (its penultimate representation).

    ``inputs`` float N×C×H×W, normalised as the model was trained. Runs in eval mode, in
    batches, on ``device`` (default: where the model is). Returns float64 N×F on the CPU.
    """
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise A2Error(f"model {type(model).__name__} has no fully connected layer to take features from")
    captured = []
    handle = linears[-1].register_forward_hook(lambda mod, args, out: captured.append(args[0].detach()))
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    out = []
    try:
        with torch.no_grad():
            for lo in range(0, inputs.shape[0], batch_size):
                captured.clear()
                model(inputs[lo:lo + batch_size].to(device))
                out.append(captured[-1].reshape(captured[-1].shape[0], -1).to("cpu", torch.float64))
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(out)


def feature_kind(spec: str) -> str:
    """``"raw"``, ``"model"`` or ``"kmeans"`` for a ``--features`` value (raw, or a file).

    ``.pt``/``.pth``/``.net`` files are models; a t7 file is a model when it holds an nn
    object and k-means centroids when it is a table with a ``centroids`` field.
    """
    import os

    from . import t7

    if spec == "raw":
        return "raw"
    if not os.path.isfile(spec):
        raise A2Error(f"--features {spec}: expected 'raw', a model file or a centroids.t7 file")
    if spec.endswith((".pt", ".pth", ".net")):
        return "model"
    obj = t7.load(spec)
    if isinstance(obj, t7.LuaObject):
        return "model"
    if isinstance(obj, dict) and "centroids" in obj:
        return "kmeans"
    raise A2Error(f"--features {spec}: neither an nn model nor a table with a 'centroids' field")


def compute_features(spec: str, images: torch.Tensor, *, channel: int = 1, device=None,
                     norm_path=None) -> tuple[torch.Tensor, str]:
    """Features for ``--features spec``: ``(N×D float64, description)``.

    raw: channel ``channel`` of each image (the report). A model: its penultimate layer on the
    images normalised with ``norm_path`` (default: ``norm.t7`` beside the model; without one,
    statistics fitted on these images). Centroids: Coates' triangle encoding, 4 quadrants.
    """
    kind = feature_kind(spec)
    if kind == "raw":
        return raw_channel_features(images, channel), f"raw channel {channel} ({images.shape[-2]}x{images.shape[-1]})"
    if kind == "model":
        from .nn import load_model
        from .provider import fit_normalization, normalize
        from .train.run import default_norm_path, load_norm

        model = load_model(spec)
        norm_path = norm_path or default_norm_path(spec)
        stats = load_norm(norm_path) if norm_path else fit_normalization(images)
        if device is not None:
            model.to(device)
        feats = model_features(model, normalize(images, stats), device=device)
        return feats, f"penultimate layer of {spec} ({feats.shape[1]} values)"
    from .kmeans import CoatesKMeans

    km = CoatesKMeans.load(spec)
    feats = km.transform(images).to(torch.float64)
    return feats, f"k-means triangle features of {spec} ({feats.shape[1]} values)"


def run_tsne(data_path, out_png, *, features: str = "raw", channel: int = 1, limit=None,
             pca_dims: int = PCA_DIMS, perplexity: float = PERPLEXITY, theta: float = THETA,
             n_iter: int = N_ITER, threads=None, method: str = "auto", map_size: int = 1024,
             thumb: int = 32, device=None, generator=None) -> dict:
    """What ``a2 tsne`` does: read a t7b file, embed, write the figures and the coordinates.

    Writes ``out_png`` (scatter by class), ``<stem>_map.png`` (image map), ``<stem>.csv``
    (coordinates). Returns a dict of the numbers (paths, trustworthiness, timings, sizes).
    """
    import os

    from .data import load_split
    from .viz import draw_image_map, save_image

    t_start = time.perf_counter()
    split = load_split(data_path, limit=limit)
    feats, description = compute_features(features, split.images, channel=channel, device=device)
    emb = embed(feats, pca_dims=pca_dims, perplexity=perplexity, theta=theta, n_iter=n_iter,
                threads=threads, method=method, generator=generator)
    stem = os.path.splitext(os.fspath(out_png))[0]
    labels = split.labels.numpy() if split.labels is not None else None
    classes = split.classes if split.labels is not None else None
    title = (f"t-SNE of {len(split)} images of {os.path.basename(os.fspath(data_path))}: {description}; "
             f"trustworthiness {emb.trustworthiness:.3f}")
    save_scatter(out_png, emb.coords, labels, classes, title=title)
    # rows from -y and columns from x, so the map has the scatter's orientation (draw_image_map
    # itself puts the first coordinate on rows, as Lua's does)
    xy = torch.from_numpy(emb.coords)
    canvas = draw_image_map(torch.stack([-xy[:, 1], xy[:, 0]], dim=1), thumbnails(split.images, thumb),
                            map_size=map_size, background=1.0)
    save_image(stem + "_map.png", canvas)
    write_coords_csv(stem + ".csv", emb.coords, labels, classes)
    return {"scatter": os.fspath(out_png), "image_map": stem + "_map.png", "coords_csv": stem + ".csv",
            "n_images": len(split), "features": description, "input_dims": emb.input_dims,
            "pca_dims": emb.pca_dims, "method": emb.method, "trustworthiness": emb.trustworthiness,
            "kl_divergence": emb.kl_divergence, "seconds": dict(emb.seconds,
                                                                total=time.perf_counter() - t_start)}
