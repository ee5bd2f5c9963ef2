"""Port of the starter's nn.BatchFlip (ds-ga-1008-a2 train.lua): flip half the batch left-right.

Lua: ``flip_mask = torch.randperm(bs):le(bs/2)``, then ``image.hflip`` each masked image,
in training mode only. Exactly ``floor(bs/2)`` images are flipped.

Deviations: the mask is drawn from a ``torch.Generator`` (not Torch's global RNG) and the
flip is one vectorised ``torch.where`` instead of a per-image loop; the images chosen are
the same rule, not the same random draws as Lua.
"""

from __future__ import annotations

import torch


def flip_mask(batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """A bool (batch_size,) mask with exactly ``batch_size // 2`` True, uniformly placed."""
    # Lua's randperm gives 1..bs; shift PyTorch's 0..bs-1 up before `le(bs/2)`
    return torch.randperm(batch_size, generator=generator) + 1 <= batch_size / 2


def batch_flip(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Return ``images`` (N, C, H, W) with the rows where ``mask`` is True flipped in W."""
    mask = mask.to(images.device).view(-1, *([1] * (images.dim() - 1)))
    return torch.where(mask, images.flip(-1), images)
