"""``a2 tsne``: read a split, compute its features, embed them, write the figures and coordinates."""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from ..data import load_split
from ..util.files import atomic_output
from .features import compute_features, thumbnails
from .figures import draw_image_map, save_image, save_scatter
from .tsne import N_ITER, PCA_DIMS, PERPLEXITY, THETA, embed


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


def run_tsne(data_path, out_png, *, features: str = "raw", channel: int = 1, limit=None,
             pca_dims: int = PCA_DIMS, perplexity: float = PERPLEXITY, theta: float = THETA,
             n_iter: int = N_ITER, threads=None, method: str = "auto", map_size: int = 1024,
             thumb: int = 32, device=None, generator=None, progress=None) -> dict:
    """What ``a2 tsne`` does: read a t7b file, embed, write the figures and the coordinates.

    Writes ``out_png`` (scatter by class), ``<stem>_map.png`` (image map), ``<stem>.csv``
    (coordinates); ``progress`` sees the load and the t-SNE iterations. Returns a dict of the numbers (paths, trustworthiness, timings, sizes).
    """
    t_start = time.perf_counter()
    split = load_split(data_path, limit=limit, progress=progress)
    feats, description = compute_features(features, split.images, channel=channel, device=device)
    emb = embed(feats, pca_dims=pca_dims, perplexity=perplexity, theta=theta, n_iter=n_iter,
                threads=threads, method=method, generator=generator, progress=progress)
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
