"""Port of the patch sampling in Coates' ``kmeans_demo.m``: downsample, then random rf×rf×3 patches.

``kmeans_demo.m`` draws patch ``i`` from image ``mod(i-1, N) + 1`` (the image index cycles)
at a uniformly random position ``r, c ∈ 1..(dim − rfSize + 1)``. For STL-10, Coates et al.
(2011) downsampled the 96×96 images to 32×32 first.

A patch is a vector in torch's layout: channel, then row, then column, so
``patch.view(3, rf, rf)`` is an upright image patch (and ``F.unfold`` gives the same order).

Deviations: MATLAB's ``patch(:)`` is column-major (row index fastest) and Coates' CIFAR
reshape transposes the image; the order of the 108 coordinates is a fixed permutation that
contrast normalisation, whitening and k-means are all equivariant to. Downsampling is an
area average (3×3 block mean for 96 → 32; MATLAB ``imresize`` would be bicubic).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..util.errors import A2Error

COATES_STL_SIZE = 32    # Coates, Lee & Ng (2011): STL-10 images downsampled to 32x32
RESIZE_CHUNK = 512      # images resized per step (bounds the float copy of 96x96 images)


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 or float (N, C, H, W) images -> float32 (N, C, size, size), values kept in 0..255.

    Area averaging (``F.interpolate(mode="area")``); a no-op resize just converts.
    """
    if images.dim() != 4:
        raise A2Error(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    if size < 1:
        raise A2Error(f"image size must be >= 1, got {size}")
    out = torch.empty(n, c, size, size, dtype=torch.float32, device=images.device)
    for lo in range(0, n, RESIZE_CHUNK):
        chunk = images[lo:lo + RESIZE_CHUNK].float()
        if (h, w) != (size, size):
            chunk = F.interpolate(chunk, size=(size, size), mode="area")
        out[lo:lo + RESIZE_CHUNK] = chunk
    return out


def _checked_shape(images: torch.Tensor, rf: int, image_size: int | None) -> tuple:
    """(N, C, side_h, side_w) of ``images`` once resized to ``image_size``; A2Error when there
    are none or an rf×rf patch does not fit."""
    if images.dim() != 4:
        raise A2Error(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    n_img, c, h, w = images.shape
    if n_img == 0:
        raise A2Error("no images to draw patches from")
    size_h, size_w = (h, w) if image_size is None else (image_size, image_size)
    if rf < 1 or rf > min(size_h, size_w):
        raise A2Error(f"rf={rf} does not fit in {size_h}x{size_w} images")
    return n_img, c, size_h, size_w


def random_patches(images: torch.Tensor, n_patches: int, rf: int, image_size: int | None = None,
                   generator: torch.Generator | None = None, progress=None) -> torch.Tensor:
    """``n_patches`` random rf×rf patches, float32 (n_patches, C·rf·rf), pixel values 0..255.

    Parameters
    ----------
    images : uint8 or float (N, C, H, W) tensor.
    n_patches : int; patch ``i`` comes from image ``i mod N`` (as ``kmeans_demo.m``).
    rf : receptive field (patch side), Coates: 6.
    image_size : resize each image to this side first (None: keep H×W). Images are resized
        in chunks, so a large uint8 set is never copied whole as float.
    generator : torch.Generator for the positions.
    progress : optional callable ``progress(n_images_done)``.
    """
    n_img, c, size_h, size_w = _checked_shape(images, rf, image_size)
    rows = torch.randint(0, size_h - rf + 1, (n_patches,), generator=generator)
    cols = torch.randint(0, size_w - rf + 1, (n_patches,), generator=generator)
    owner = torch.arange(n_patches) % n_img
    out = torch.empty(n_patches, c * rf * rf, dtype=torch.float32)
    for lo in range(0, n_img, RESIZE_CHUNK):
        hi = min(lo + RESIZE_CHUNK, n_img)
        chunk = images[lo:hi]
        chunk = resize_images(chunk, image_size) if image_size is not None else chunk.float()
        ids = torch.nonzero((owner >= lo) & (owner < hi)).flatten()
        if ids.numel():
            # (N, C, P, P, rf, rf) view of every window; indexing dims 0, 2, 3 gives (n, C, rf, rf)
            windows = chunk.cpu().unfold(2, rf, 1).unfold(3, rf, 1)
            out[ids] = windows[owner[ids] - lo, :, rows[ids], cols[ids]].reshape(ids.numel(), -1)
        if progress is not None:
            progress(hi - lo)
    return out


def grid_patches(images: torch.Tensor, rf: int, stride: int, image_size: int | None = None,
                 n_patches: int | None = None, generator: torch.Generator | None = None,
                 progress=None) -> torch.Tensor:
    """Every rf×rf patch on the stride grid of each image, float32 (n, C·rf·rf), 0..255.

    The report's sampling: 22×22 patches at stride 24 give a 4×4 grid, 16 patches per 96×96
    image. images : uint8 or float (N, C, H, W); image_size : resize first (None: keep);
    n_patches : keep a random subset of that many (``generator``), None or more than there
    are: all of them, in image order. progress(n_images_done) per chunk.
    """
    n_img, c, size_h, size_w = _checked_shape(images, rf, image_size)
    if stride < 1:
        raise A2Error(f"stride={stride} should be >= 1")
    per_image = ((size_h - rf) // stride + 1) * ((size_w - rf) // stride + 1)
    total = n_img * per_image
    keep = None
    if n_patches is not None and n_patches < total:
        keep = torch.randperm(total, generator=generator)[:n_patches].sort().values
    out = torch.empty(total if keep is None else keep.numel(), c * rf * rf, dtype=torch.float32)
    done = 0
    for lo in range(0, n_img, RESIZE_CHUNK):
        hi = min(lo + RESIZE_CHUNK, n_img)
        chunk = images[lo:hi]
        chunk = resize_images(chunk, image_size) if image_size is not None else chunk.float()
        rows = image_patches(chunk.cpu(), rf, stride).reshape(-1, c * rf * rf)
        if keep is None:
            out[lo * per_image:hi * per_image] = rows
        else:
            sel = keep[(keep >= lo * per_image) & (keep < hi * per_image)] - lo * per_image
            out[done:done + sel.numel()] = rows[sel]
            done += sel.numel()
        if progress is not None:
            progress(hi - lo)
    return out


def image_patches(images: torch.Tensor, rf: int, stride: int = 1) -> torch.Tensor:
    """Every rf×rf patch at ``stride``: float (N, C, S, S) -> (N, P, P, C·rf·rf),
    P = (S − rf) // stride + 1 (stride 1: S − rf + 1, Coates).

    Port of ``im2col(..., [rfSize rfSize])`` in ``extract_features.m``; positions are
    (row, column) of the patch's top-left corner. One strided copy (``F.unfold`` is an order
    of magnitude slower on CPU for these shapes).
    """
    n, c, h, w = images.shape
    pr, pc = (h - rf) // stride + 1, (w - rf) // stride + 1
    windows = images.unfold(2, rf, stride).unfold(3, rf, stride)  # (N, C, pr, pc, rf, rf) view
    return windows.permute(0, 2, 3, 1, 4, 5).reshape(n, pr, pc, c * rf * rf)
