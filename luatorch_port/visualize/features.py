"""What t-SNE maps: the report's raw image channel, a model's penultimate layer, or k-means features."""

from __future__ import annotations

import os

import torch

from .. import t7
from ..util.errors import A2Error


def raw_channel_features(images: torch.Tensor, channel: int = 1) -> torch.Tensor:
    """The report's input: channel ``channel`` (1-based, as in Lua) of each image, flattened.

    ``images`` N×C×H×W (uint8 or float) -> float64 N×(H·W) on the 0..255 scale of the file.
    """
    if images.dim() != 4:
        raise A2Error(f"t-SNE: expected N×C×H×W images, got shape {tuple(images.shape)}")
    if not 1 <= channel <= images.shape[1]:
        raise A2Error(f"--channel {channel} is out of range: the images have channels 1..{images.shape[1]}")
    return images[:, channel - 1].reshape(images.shape[0], -1).to(torch.float64)


def thumbnails(images: torch.Tensor, size: int) -> torch.Tensor:
    """N×C×H×W (uint8 0..255 or float 0..1) -> float64 N×C×size×size in [0, 1] (area averaging).

    Averaged in float32 (the PNG keeps 8 bits; float64 would quadruple the work on 1,000 full images)."""
    x = images.to(torch.float32)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = torch.nn.functional.adaptive_avg_pool2d(x, size)
    x = x.to(torch.float64)
    return x / 255.0 if images.dtype == torch.uint8 else x


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
        from ..nn import load_model
        from ..train.provider import fit_normalization, normalize
        from ..train.provider import load_norm
        from ..train.run import default_norm_path

        model = load_model(spec)
        norm_path = norm_path or default_norm_path(spec)
        stats = load_norm(norm_path) if norm_path else fit_normalization(images)
        if device is not None:
            model.to(device)
        feats = model_features(model, normalize(images, stats), device=device)
        return feats, f"penultimate layer of {spec} ({feats.shape[1]} values)"
    from ..kmeans import CoatesKMeans

    km = CoatesKMeans.load(spec)
    feats = km.transform(images).to(torch.float64)
    return feats, f"k-means triangle features of {spec} ({feats.shape[1]} values)"
