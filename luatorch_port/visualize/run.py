"""``a2 tsne``: read a split, compute its features, embed them, write the figures and coordinates."""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from ..data import load_split
from ..util.files import atomic_output
from .features import compute_features, thumbnails
from .figures import draw_image_map, save_image
from .scatter import save_scatter
from .tsne import N_ITER, PCA_DIMS, PERPLEXITY, THETA, embed

FEATURES = "raw"     # the report's 3.2: one channel of each image
CHANNEL = 1          # 1-based, as Lua
MAP_SIZE = 1024      # side of the image map in pixels
THUMB = 32           # side of each thumbnail on the image map

# a2 visualize's figures (report 3.1)
FILTERS_PADDING = 1          # pixels between filters (image.toDisplayTensor's padding)
FILTERS_ZOOM = 8
CENTROIDS_MAX = 400          # Coates' show_centroids.m draws a square of at most this many
CENTROIDS_ZOOM = 4
AUGMENTATION_CLASSES = 8     # seed patches (rows) of the report's Figure 3.1
AUGMENTATION_PER_SEED = 10   # transformations per seed (columns after the seed)
AUGMENTATION_LIMIT = 2000    # images read to draw seeds from
AUGMENTATION_ZOOM = 2


def write_coords_csv(path, coords: np.ndarray, labels=None, class_names=None) -> None:
    """``index,x,y[,label,class]`` per point (index 1-based, file order), written atomically."""
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


def run_tsne(data_path, out_png, *, features: str = FEATURES, channel: int = CHANNEL, limit=None,
             pca_dims: int = PCA_DIMS, perplexity: float = PERPLEXITY, theta: float = THETA,
             n_iter: int = N_ITER, threads=None, method: str = "auto", map_size: int = MAP_SIZE,
             thumb: int = THUMB, device=None, generator=None, progress=None) -> dict:
    """What ``a2 tsne`` does: read a t7b file, embed, write the figures and the coordinates.

    Writes ``out_png`` (scatter by class), ``<stem>_map.png`` (image map), ``<stem>.csv``
    (coordinates); ``progress`` sees the load and the t-SNE iterations. Returns a dict of the
    numbers (paths, trustworthiness, sizes, and ``seconds``: wall time of each step and in total).
    """
    t_start = time.perf_counter()
    seconds = {}
    split = load_split(data_path, limit=limit, progress=progress)
    t = time.perf_counter()
    seconds["load"] = t - t_start
    feats, description = compute_features(features, split.images, channel=channel, device=device)
    seconds["features"] = time.perf_counter() - t
    emb = embed(feats, pca_dims=pca_dims, perplexity=perplexity, theta=theta, n_iter=n_iter,
                threads=threads, method=method, generator=generator, progress=progress)
    seconds.update(emb.seconds)
    t = time.perf_counter()
    stem = os.path.splitext(os.fspath(out_png))[0]
    labels = split.labels.numpy() if split.labels is not None else None
    classes = split.classes if split.labels is not None else None
    title = (f"t-SNE of {len(split)} images of {os.path.basename(os.fspath(data_path))}: {description}; "
             f"trustworthiness {emb.trustworthiness:.3f}")
    save_scatter(out_png, emb.coords, labels, classes, title=title)
    seconds["scatter"] = time.perf_counter() - t
    t = time.perf_counter()
    # rows from -y and columns from x, so the map has the scatter's orientation (draw_image_map
    # itself puts the first coordinate on rows, as Lua's does)
    xy = torch.from_numpy(emb.coords)
    canvas = draw_image_map(torch.stack([-xy[:, 1], xy[:, 0]], dim=1), thumbnails(split.images, thumb),
                            map_size=map_size, background=1.0)
    save_image(stem + "_map.png", canvas)
    seconds["image_map"] = time.perf_counter() - t
    t = time.perf_counter()
    write_coords_csv(stem + ".csv", emb.coords, labels, classes)
    seconds["csv"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start
    return {"scatter": os.fspath(out_png), "image_map": stem + "_map.png", "coords_csv": stem + ".csv",
            "n_images": len(split), "features": description, "input_dims": emb.input_dims,
            "pca_dims": emb.pca_dims, "method": emb.method, "trustworthiness": emb.trustworthiness,
            "kl_divergence": emb.kl_divergence, "seconds": seconds}


def run_filters(model_path, out_png, *, padding: int = FILTERS_PADDING, nrow=None,
                zoom: int = FILTERS_ZOOM) -> dict:
    """What ``a2 visualize filters`` does: the first convolution's filters of the model in
    ``model_path`` as a grid PNG (``image.toDisplayTensor{scaleeach=true}``), ``nrow`` per row
    (None: ceil(sqrt(count))). Returns ``{"filters": weight shape, "png": (width, height)}``."""
    from ..nn import load_model
    from .figures import filter_grid, first_conv_weight

    weight = first_conv_weight(load_model(model_path))
    grid = filter_grid(weight, padding=padding, nrow=nrow)
    size = save_image(out_png, grid, zoom=zoom)
    return {"filters": list(weight.shape), "png": list(size)}


def run_centroids(centroids_path, out_png, *, space: str = "unwhitened", max_count=CENTROIDS_MAX,
                  zoom: int = CENTROIDS_ZOOM) -> dict:
    """What ``a2 visualize centroids`` does: at most ``max_count`` (None: all) k-means
    centroids of ``centroids_path`` as Coates' show_centroids.m grid. Returns the figure's
    numbers and ``"png": (width, height)``."""
    from .figures import centroids_figure

    image, info = centroids_figure(centroids_path, space=space, max_count=max_count)
    size = save_image(out_png, image, zoom=zoom)
    return {**info, "png": list(size)}


def run_curves(run, out_png, *, title: str = "") -> dict:
    """What ``a2 visualize curves`` does: accuracy per epoch from ``run``'s ``val.log`` (or
    the log file ``run`` itself) as a PNG titled ``title`` (default: the folder's name).
    Returns ``{"log", "epochs", "last": {column: value}, "png"}``."""
    from ..util.errors import A2Error
    from .figures import read_logger, save_curves

    run = os.fspath(run)
    log = os.path.join(run, "val.log") if os.path.isdir(run) else run
    if not os.path.exists(log):
        raise A2Error(f"{run}: no val.log in this folder (written by a2 train)")
    columns = read_logger(log)
    if not any(columns.values()):
        raise A2Error(f"{log}: no epochs logged yet")
    size = save_curves(out_png, columns, title=title or os.path.basename(os.path.abspath(run)))
    return {"log": log, "epochs": max(len(v) for v in columns.values()),
            "last": {k: (v[-1] if v else None) for k, v in columns.items()}, "png": list(size)}
