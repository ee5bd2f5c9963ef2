"""Build an Exemplar-CNN surrogate dataset: seed patches from unlabelled images, each one a class.

Port of the data generation of Dosovitskiy et al. 2014 (section 2; "Exemplar-CNN"), as
the 2016 report (part 2.1) set it up: 4000 seed images from extra.t7b, one seed patch
each at a random position and scale, 100 random transformations per seed, 400,000
32x32 patches in 4000 classes.

The output is one t7 table, loadable by Lua Torch (``torch.load``), written in this key
order while the patches are generated (the pixels are never all in memory at once)::

    data              ByteTensor  N x 3 x P x P   (N = seeds * per_seed, seed-major order)
    labels            LongTensor  N               1-based surrogate class (= seed number)
    seeds             LongTensor  S               1-based index of each seed image in extra
    boxes             DoubleTensor S x 3          seed window (x0, y0, size), 0-based pixels
    transforms        FloatTensor N x 12          the parameters of each patch, columns:
    transform_columns {"angle", "scale", "tx", "ty", "flip", "hue",
                       "s_pow", "s_mul", "s_add", "v_pow", "v_mul", "v_add"}
    preset            string                      the transformation preset ("report" or
                                                  "exemplar", :data:`transforms.PRESETS`)

Seed windows are squares of a random integer side in ``window`` (default 32..64 source
pixels) at a random integer position. With gradient sampling (the default, as the paper:
"we sample only from regions containing considerable gradients") ``GRADIENT_CANDIDATES``
random windows are drawn per seed image and one is picked with probability proportional
to the square of its mean squared intensity gradient (``GRADIENT_POWER``).

Rendering (:func:`render`) works in chunks of ``CHUNK_PATCHES`` patches: one
``grid_sample`` per chunk, the fused colour jitter in place on its output, rounding to
uint8 through int32; :func:`render_reference` is the same computation written out plainly
in float64 (the oracle: uint8 results agree to 1 grey level, 3e-5 of values differ).
Reflection padding is done by padding the source images with mirrored pixels
(:func:`mirror_margin`) and sampling them with border padding, which is cheaper than
``grid_sample``'s own reflection; the colour jitter takes its logarithms with numpy on the
CPU (faster than torch's). Both round differently in the last bit, so files differ from
those of earlier versions of this port in a few values per 100,000, by one grey level.

Deviations: the paper does not say how strongly it favoured high-gradient regions; the
candidate scheme above is this port's choice. Patches are resampled bilinearly without
anti-aliasing (a 64-pixel window shrunk to 32 aliases slightly, as nearest-neighbour
pyramids in the paper's era did). Colour-jittered values are rounded half up (geometry
only: half to even), in float32.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..util.errors import A2Error
from ..util.files import atomic_output
from ..t7 import load as t7_load
from ..t7.writer import Writer
from ..util.progress import Counter, Progress
from ..util.threads import torch_threads
from . import transforms as T

PATCH = 32             # paper: 32x32 patches
MAX_PATCH = 256        # largest patch side asked for (8x the paper's): 4000x100 such patches are 79 GB
N_SEEDS = 4000         # report: 4000 seed images
PER_SEED = 100         # report: 100 transformations per seed
WINDOW = (32, 64)      # seed window side in source pixels (this port's choice)
GRADIENT_CANDIDATES = 16
GRADIENT_POWER = 2     # candidate weight = (mean squared gradient) ** 2 (this port's choice)
SEEDS_PER_GROUP = 8    # seed images per worker task
CHUNK_PATCHES = 200    # patches per grid_sample call and jitter pass: 0.8 MB planes stay in cache
_ENERGY_BLOCK = 16     # source images per block of the gradient-energy maps
_MAX_MIRROR = 2         # widest mirrored margin, in image sides (beyond: grid_sample's reflection)
_ROUND_MAGIC = 12582912.0  # 1.5 * 2**23: x + it rounds x in [0, 2**22) to an integer in its low bits


@dataclass
class SurrogateSet:
    """A surrogate dataset in Python conventions (0-based labels and seeds)."""

    images: torch.Tensor      # uint8 (N, 3, P, P)
    labels: torch.Tensor      # int64 (N,), 0-based class = seed number
    seeds: torch.Tensor       # int64 (S,), 0-based index into the source split
    boxes: torch.Tensor       # float64 (S, 3): x0, y0, size
    transforms: torch.Tensor  # float32 (N, 12), columns transforms.COLUMNS
    preset: Optional[str] = None  # transformation preset (None: a file without the field)

    @property
    def n_classes(self) -> int:
        return len(self.seeds)


def seed_windows(images: torch.Tensor, generator: torch.Generator, *, window=WINDOW,
                 gradient: bool = True, candidates: int = GRADIENT_CANDIDATES,
                 map_fn: Optional[Callable] = None) -> torch.Tensor:
    """One square seed window per image.

    Parameters
    ----------
    images : uint8 or float tensor (b, C, H, W)
    window : (min, max) side in pixels, inclusive
    gradient : pick among ``candidates`` random windows with probability proportional to
        their mean squared gradient to the power ``GRADIENT_POWER`` (False: the first,
        i.e. uniform position and size)
    map_fn : optional ``map`` to spread the gradient-energy blocks over threads (e.g. a
        ``ThreadPoolExecutor``'s); the result does not depend on it

    Returns
    -------
    float64 tensor (b, 3): ``(x0, y0, size)``, integers, the window inside the image.
    """
    b, _, h, w = images.shape
    lo, hi = int(window[0]), int(window[1])
    if not 2 <= lo <= hi <= min(h, w):
        raise A2Error(f"seed window sides {lo}..{hi} must satisfy 2 <= min <= max <= "
                      f"image side {min(h, w)}")
    k = candidates if gradient else 1
    size = torch.randint(lo, hi + 1, (b, k), generator=generator)
    x0 = (torch.rand(b, k, generator=generator, dtype=torch.float64) * (w - size + 1)).long()
    y0 = (torch.rand(b, k, generator=generator, dtype=torch.float64) * (h - size + 1)).long()
    pick = torch.zeros(b, dtype=torch.long)
    if gradient:
        images = images.cpu()  # the generator is on the CPU
        y1, x1 = y0 + size - 1, x0 + size - 1
        total = torch.empty(b, k, dtype=torch.float64)

        def block(i):  # cache-sized blocks of images: the same values as all at once
            j = min(b, i + _ENERGY_BLOCK)
            grey = images[i:j].sum(1, dtype=torch.float64).div_(3.0)  # = .double().mean(1)
            dx, dy = grey.diff(dim=2)[:, :-1, :], grey.diff(dim=1)[:, :, :-1]
            energy = dx.mul_(dx).addcmul_(dy, dy)  # squared gradient, (h-1) x (w-1)
            integral = torch.zeros(j - i, h, w, dtype=torch.float64)  # padded by a zero row/col
            torch.cumsum(energy.cumsum_(1), 2, out=integral[:, 1:, 1:])
            rows = torch.arange(j - i).unsqueeze(1)
            ya, yb, xa, xb = y0[i:j], y1[i:j], x0[i:j], x1[i:j]
            total[i:j] = (integral[rows, yb, xb] - integral[rows, ya, xb] - integral[rows, yb, xa]
                          + integral[rows, ya, xa])

        for _ in (map_fn or map)(block, range(0, b, _ENERGY_BLOCK)):
            pass
        mean = total / ((size - 1) ** 2).double()
        weights = mean ** GRADIENT_POWER
        weights += 1e-12 + 1e-9 * weights.amax(1, keepdim=True)  # flat images: uniform
        pick = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    sel = torch.arange(b)
    return torch.stack([x0[sel, pick], y0[sel, pick], size[sel, pick]], dim=1).double()


class RenderBuffers:
    """Work buffers :func:`render` reuses between calls (one set per thread)."""

    def __init__(self, n_patches: int, patch: int, device="cpu", channels: int = 3):
        """n_patches: the most patches of one chunk (see :func:`chunking`)."""
        self.n_patches, self.patch, self.channels = n_patches, patch, channels
        self.device = torch.device(device)
        self.grid = torch.empty(n_patches * 2 * patch * patch, device=device)
        self.ints = torch.empty(n_patches * channels * patch * patch, dtype=torch.int32,
                                device=device)
        self.jitter = T.ColorJitter(n_patches * patch * patch, torch.float32, device)
        self._source = None

    def source(self, like: torch.Tensor) -> torch.Tensor:
        """``like`` as float32 in a buffer kept between calls (grown when too small): a
        fresh group-sized tensor per call cost page faults."""
        n = like.numel()
        if self._source is None or self._source.numel() < n:
            self._source = torch.empty(n, device=self.device)
        return self._source[:n].view(like.shape).copy_(like)

    def fits(self, n_patches, patch, device, channels=3) -> bool:
        return (self.n_patches >= n_patches and self.patch == patch and self.device == device
                and self.channels >= channels)


def chunking(b: int, k: int, chunk: Optional[int] = None):
    """(images, patches) per chunk for ``b`` images of ``k`` patches: whole images while
    ``k <= chunk`` (default ``CHUNK_PATCHES``), else ``chunk`` patches of one image."""
    chunk = CHUNK_PATCHES if chunk is None else chunk
    if k <= chunk:
        return max(1, min(b, chunk // max(k, 1))), max(k, 1)
    return 1, chunk


def render(images: torch.Tensor, boxes: torch.Tensor, params: torch.Tensor, patch: int = PATCH,
           color: bool = True, out: Optional[torch.Tensor] = None,
           buffers: Optional[RenderBuffers] = None, theta: Optional[torch.Tensor] = None,
           constants: Optional[T.JitterConstants] = None, stage=None,
           margin: Optional[int] = None) -> torch.Tensor:
    """Transformed uint8 patches of a group of source images.

    Works in chunks of about ``CHUNK_PATCHES`` patches: one ``grid_sample`` per chunk (the
    grids of one image's transformations stacked into one tall grid), the colour jitter in
    place on its output, then uint8 (through int32: a direct float-to-uint8 cast is slower;
    geometry alone rounds by adding ``_ROUND_MAGIC`` and casting the float's bits).

    Parameters
    ----------
    images : uint8 (b, C, H, W), on the device the work runs on (C = 3 for ``color``)
    boxes : (b, 3) seed windows; params : (b, k, 12) transformations
    color : apply the colour jitter columns of ``params``
    out : optional contiguous uint8 (b, k, C, patch, patch) to write into
    buffers : optional reusable :class:`RenderBuffers`
    theta, constants : optional precomputed ``affine_thetas`` (b, k, 2, 3) of ``boxes`` and
        ``params`` and ``JitterConstants(params, 255.0)`` (the build computes them for all
        patches at once: per group, their many small ops cost more than the rendering)
    stage : optional callable, called with a stage's name ("grid terms", "compose grids",
        "grid_sample", "colour jitter", "uint8") as each one ends (the benchmark's timer)
    margin : mirrored pixels to pad the sources by (default: :func:`mirror_margin` of
        ``theta``; the build passes that of all its patches, so grouping changes no byte)

    Returns
    -------
    uint8 (b, k, C, patch, patch) on ``images.device``: rounded bilinear samples; with
    ``color``, ``255 * jitter(samples / 255)`` rounded half up.
    """
    if images.dtype != torch.uint8:
        raise A2Error(f"render: expected uint8 source images, got {images.dtype}")
    b, ch, h, w = images.shape
    if color and ch != 3:
        raise A2Error(f"render: colour jitter needs 3 channels, got {ch}")
    k = params.shape[1]
    if out is None:
        out = torch.empty(b, k, ch, patch, patch, dtype=torch.uint8, device=images.device)
    if b == 0 or k == 0:
        return out
    per_chunk, step = chunking(b, k)
    if buffers is None or not buffers.fits(per_chunk * step, patch, images.device, ch):
        buffers = RenderBuffers(per_chunk * step, patch, images.device, max(ch, 3))
    if theta is None:
        theta = T.affine_thetas(boxes.repeat_interleave(k, dim=0), params.reshape(b * k, -1), h, w)
    src, theta, mode = _mirrored(images, theta.reshape(b * k, 2, 3), patch, margin, buffers)
    along_x, along_y = (x.view(b, k, 2, patch).transpose(1, 2).contiguous()  # (b, 2, k, P)
                        for x in T.grid_terms(theta, patch, torch.float32, images.device))
    if color:
        src.mul_(1.0 / 255.0)
        if constants is None:
            constants = T.JitterConstants(params, 255.0, torch.float32, images.device)
    pixels = patch * patch
    mark = stage or (lambda name: None)
    mark("grid terms")
    for i in range(0, b, per_chunk):
        i1 = min(b, i + per_chunk)
        for j in range(0, k, step):
            j1 = min(k, j + step)
            ni, nj = i1 - i, j1 - j
            planes = buffers.grid[:ni * nj * 2 * pixels].view(ni, 2, nj, patch, patch)
            grid = T.compose_grid(along_x[i:i1, :, j:j1], along_y[i:i1, :, j:j1], planes)
            mark("compose grids")
            values = T.sample(src[i:i1], grid, padding_mode=mode)
            values = values.view(ni, ch, nj, pixels)   # grid_sample's layout: channel planes
            mark("grid_sample")
            if color:
                buffers.jitter.apply(values, constants[i:i1, j:j1], bias=0.5)
                mark("colour jitter")
                ints = buffers.ints[:values.numel()].view(values.shape)
                ints.copy_(values)             # truncates: rounds given the + 0.5
            else:
                mark("colour jitter")
                # values in [0, 255] + 1.5 * 2**23: float32 rounds them half to even into the
                # low bits, which the int32 -> uint8 cast keeps (torch.round's values, one pass)
                ints = values.add_(_ROUND_MAGIC).view(torch.int32)
            out[i:i1, j:j1].view(ni, nj, ch, pixels).copy_(ints.transpose(1, 2))
            mark("uint8")
    return out


def mirror_margin(theta: torch.Tensor, patch: int, height: int, width: int) -> int:
    """The margin :func:`render` pads source images by for ``theta``'s grids: their reach
    (``transforms.reach``) rounded up to a whole number (at least one) of half image
    sides, so that with the paper's ranges every patch gets the same margin whichever
    patches it is rendered with; -1 (``grid_sample``'s own reflection padding, unpadded)
    beyond ``_MAX_MIRROR`` image sides."""
    unit = (max(height, width) + 1) // 2
    margin = max(1, -(-T.reach(theta, patch, height, width) // unit)) * unit
    return margin if margin <= _MAX_MIRROR * max(height, width) else -1


def _mirrored(images, theta, patch, margin, buffers):
    """``(float sources, theta in their coordinates, padding mode)`` for :func:`render`.

    Sampling the images padded with mirrored pixels (``transforms.pad_mirrored``) with
    border padding, the cheapest mode (it never clamps a sample there), gives
    ``grid_sample``'s reflection padding up to the float32 rounding of the coordinates, at
    a lower cost than that mode.
    """
    h, w = images.shape[-2:]
    if margin is None:
        margin = mirror_margin(theta, patch, h, w)
    if margin < 0:
        return buffers.source(images), theta, T.PADDING
    return (buffers.source(T.pad_mirrored(images, margin)), T.theta_in_padded(theta, margin, h, w),
            "border")


def render_reference(images: torch.Tensor, boxes: torch.Tensor, params: torch.Tensor,
                     patch: int = PATCH, color: bool = True) -> torch.Tensor:
    """:func:`render` written out plainly, in float64: the oracle of tests and benchmark.

    ``F.affine_grid`` and one ``grid_sample`` over all patches, then
    :func:`transforms.color_jitter_reference` (RGB to HSV, jitter, back), scaled to 0..255
    and rounded. Same arguments and result layout as :func:`render`.
    """
    b, ch, h, w = images.shape
    k = params.shape[1]
    theta = T.affine_thetas(boxes.repeat_interleave(k, dim=0), params.reshape(b * k, -1), h, w)
    grid = F.affine_grid(theta.to(images.device), (b * k, 1, patch, patch), align_corners=False)
    src = images.double() / 255.0
    values = T.sample(src, grid.view(b, k * patch, patch, 2))            # (b, C, k*P, P)
    values = values.view(b, ch, k, patch, patch).transpose(1, 2).reshape(b * k, ch, patch, patch)
    if color:
        values = T.color_jitter_reference(values, params.reshape(b * k, -1))
    out = (values * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    return out.view(b, k, ch, patch, patch)


def augmentation_examples(images: torch.Tensor, n_seeds: int, per_seed: int,
                          generator: torch.Generator, *, patch: int = PATCH,
                          ranges: Optional[T.TransformRanges] = None, window=WINDOW,
                          gradient: bool = True) -> torch.Tensor:
    """Seed patches and their random transformations, for a figure.

    Parameters
    ----------
    images : uint8 (N, 3, H, W) source images; ``n_seeds`` of them are drawn
    n_seeds, per_seed : rows and transformations per row
    generator : the randomness

    Returns
    -------
    uint8 tensor (n_seeds, 1 + per_seed, 3, patch, patch): in each row the untransformed
    seed patch, then its ``per_seed`` transformations.
    """
    ranges = ranges or T.TransformRanges()
    _check_images(images, "images")
    if not 1 <= n_seeds <= len(images):
        raise A2Error(f"n_seeds={n_seeds} should be in 1..{len(images)} (the number of images)")
    idx = torch.randperm(len(images), generator=generator)[:n_seeds]
    src = images[idx]
    boxes = seed_windows(src, generator, window=window, gradient=gradient)
    if per_seed < 0:
        raise A2Error(f"per_seed={per_seed} should be >= 0")
    params = T.sample_params(n_seeds * per_seed, ranges, generator).view(
        n_seeds, per_seed, len(T.COLUMNS))
    identity = torch.tensor(T.IDENTITY, dtype=torch.float64).expand(n_seeds, 1, -1)
    return render(src, boxes, torch.cat([identity, params], dim=1), patch, color=ranges.color)


def _check_images(images, what):
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4 \
            or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        dtype = getattr(images, "dtype", None)
        raise A2Error(f"{what}: expected a uint8 tensor N x 3 x H x W, got {shape} {dtype}")


class _StreamedTable:
    """A t7 table written key by key, with ByteTensor pixels appended as they are made.

    Uses the project's t7 Writer for everything but the raw storage bytes, so the file is
    byte-identical to ``t7.save`` of the same table (tested).
    """

    def __init__(self, f, n_keys):
        self.f = f
        self.w = Writer(f)
        self.w.table_header(n_keys)

    def begin_tensor(self, key, shape, class_name="torch.ByteTensor"):
        self.w.write(key)
        self.expected, self.written = self.w.tensor_header(class_name, shape), 0

    def append(self, tensor):
        data = tensor.detach().cpu().contiguous().numpy().reshape(-1)
        self.f.write(memoryview(data))
        self.written += data.size

    def end_tensor(self):
        if self.written != self.expected:  # pragma: no cover - internal invariant
            raise RuntimeError(f"streamed {self.written} elements, header says {self.expected}")

    def put(self, key, value):
        self.w.write(key)
        self.w.write(value, f"root.{key}")


def build_surrogate(images: torch.Tensor, out_path, generator: torch.Generator, *, n_seeds: int = N_SEEDS,
          per_seed: int = PER_SEED, patch: int = PATCH, window=WINDOW, gradient: bool = True,
          preset: str = T.DEFAULT_PRESET, ranges: Optional[T.TransformRanges] = None, device="cpu",
          group: int = SEEDS_PER_GROUP, workers: Optional[int] = None,
          progress: Optional[Progress] = None) -> dict:
    """Generate the surrogate dataset and write it to ``out_path`` (t7, atomically).

    Parameters
    ----------
    images : uint8 (N, 3, H, W), the unlabelled source images (extra.t7b)
    out_path : where the t7 table goes (layout in the module docstring)
    generator : all randomness (seed images, windows, transformations) comes from it;
        the same seed gives the same bytes whatever ``group`` and ``device`` are on CPU
    n_seeds, per_seed, patch, window, gradient : see the module docstring
    preset : transformation preset, stored in the file (``transforms.PRESETS``)
    ranges : the ranges drawn from (default: the preset's; pass the preset's with
        overrides, ``transforms.preset(name, ...)``, to change some)
    device : where the warps run
    workers : CPU threads rendering groups side by side (default:
        ``torch.get_num_threads()``); with more than one, the whole build runs with one
        intra-op thread (torch's setting is restored afterwards); 1 = torch's own threads
    progress : :class:`~luatorch_port.util.progress.Progress` of the seeds rendered (stage "surrogate patches")

    Returns
    -------
    dict: n_patches, n_seeds, per_seed, patch, seeds (0-based, tensor), boxes, source_size,
    preset, ranges.
    """
    ranges = ranges or T.preset(preset)
    if preset not in T.PRESETS:
        raise A2Error(f"transformation preset {preset!r} is not one of {', '.join(T.PRESETS)}")
    _check_images(images, "source images")
    n, _, h, w = images.shape
    if not 1 <= n_seeds <= n:
        raise A2Error(f"--classes {n_seeds} should be in 1..{n} (one seed image per class, "
                      f"{n} images in the source split)")
    if per_seed < 1 or patch < 2:
        raise A2Error(f"per_seed={per_seed} and patch={patch} must be >= 1 and >= 2")
    device = torch.device(device)
    workers = torch.get_num_threads() if workers is None else workers
    # one intra-op thread for everything, not only the workers: see _render_groups
    with torch_threads(1 if device.type == "cpu" and workers > 1 else None):
        info = _build(images, out_path, generator, n_seeds, per_seed, patch, window, gradient,
                      preset, ranges, device, group, workers, progress)
    return {**info, "preset": preset, "ranges": ranges}


def _build(images, out_path, generator, n_seeds, per_seed, patch, window, gradient, preset,
           ranges, device, group, workers, progress):
    n, _, h, w = images.shape
    seeds = torch.randperm(n, generator=generator)[:n_seeds]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # the energy maps, side by side
        map_fn = pool.map if device.type == "cpu" and workers > 1 else None
        boxes = torch.cat([seed_windows(images[seeds[i:i + 256]], generator, window=window,
                                        gradient=gradient, map_fn=map_fn)
                           for i in range(0, n_seeds, 256)])
    params = T.sample_params(n_seeds * per_seed, ranges, generator).view(n_seeds, per_seed, -1)
    n_patches = n_seeds * per_seed
    labels = torch.arange(1, n_seeds + 1, dtype=torch.long).repeat_interleave(per_seed)

    with atomic_output(out_path, "wb") as f:
        table = _StreamedTable(f, n_keys=7)
        table.begin_tensor("data", (n_patches, 3, patch, patch))
        tick = Counter(progress, n_seeds, "surrogate patches", unit="seeds")
        for done, block in _render_groups(images, seeds, boxes, params, patch, ranges.color,
                                          device, group, workers):
            table.append(block)
            tick(done)
        table.end_tensor()
        table.put("labels", labels)
        table.put("seeds", seeds + 1)  # Lua index into extra's data[1]
        table.put("boxes", boxes)
        table.put("transforms", params.reshape(n_patches, -1).float())
        table.put("transform_columns", list(T.COLUMNS))
        table.put("preset", preset)
    return {"n_patches": n_patches, "n_seeds": n_seeds, "per_seed": per_seed, "patch": patch,
            "seeds": seeds, "boxes": boxes, "source_size": (h, w)}


def _render_groups(images, seeds, boxes, params, patch, color, device, group, workers):
    """Yield ``(n_seeds_in_block, uint8 block)`` in seed order; a block is reused for a
    later group once the caller asks for the next one (write it first).

    On the CPU, ``workers`` Python threads render whole groups concurrently (torch ops
    release the GIL); the caller has set one intra-op thread for the whole build, so no
    op waits at an OpenMP barrier, which on a busy machine slowed the render and, far more,
    the seed windows (docs/surrogate.md). Results are bit-identical to the sequential
    path (every value is computed per element).
    """
    n_seeds = len(seeds)
    per_seed = params.shape[1]
    local = threading.local()
    h, w = images.shape[2:]
    theta = T.affine_thetas(boxes.repeat_interleave(per_seed, dim=0),  # all at once: few ops
                            params.reshape(n_seeds * per_seed, -1), h, w)
    theta = theta.view(n_seeds, per_seed, 2, 3)
    margin = mirror_margin(theta, patch, h, w)  # one for all groups: bytes independent of them
    constants = T.JitterConstants(params, 255.0, torch.float32, device) if color else None

    free = queue.SimpleQueue()  # output blocks written out, ready for another group

    def work(start):
        stop = min(start + group, n_seeds)
        buffers = getattr(local, "buffers", None)
        if buffers is None:
            per_chunk, step = chunking(group, per_seed)
            buffers = local.buffers = RenderBuffers(per_chunk * step, patch, device)
        try:
            block = free.get_nowait()
        except queue.Empty:  # at most 2 * workers + 1 blocks live at once
            block = torch.empty(group, per_seed, 3, patch, patch, dtype=torch.uint8, device=device)
        src = images[seeds[start:stop]].to(device)
        render(src, boxes[start:stop], params[start:stop], patch, color, out=block[:stop - start],
               buffers=buffers, theta=theta[start:stop], margin=margin,
               constants=None if constants is None else constants[start:stop, :])
        return stop - start, block

    def done(result):
        n, block = result
        yield n, block[:n]    # the caller writes it before asking for the next one
        free.put(block)

    starts = range(0, n_seeds, group)
    if device.type != "cpu" or workers <= 1 or len(starts) < 2:
        for start in starts:
            yield from done(work(start))
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = deque()
        for start in starts:
            pending.append(pool.submit(work, start))
            if len(pending) >= 2 * workers:
                yield from done(pending.popleft().result())
        while pending:
            yield from done(pending.popleft().result())


def load(path) -> SurrogateSet:
    """Read a surrogate t7 file written by :func:`build` (or by Lua with the same layout).

    Raises A2Error naming the file and field when the layout is not the documented one.
    """
    obj = t7_load(path)
    if not isinstance(obj, dict):
        raise A2Error(f"{path}: expected a table {{data=, labels=, seeds=}}, got {type(obj).__name__}")
    for key in ("data", "labels", "seeds"):
        if not isinstance(obj.get(key), torch.Tensor):
            raise A2Error(f"{path}: field '{key}' missing or not a tensor")
    data, labels, seeds = obj["data"], obj["labels"].long(), obj["seeds"].long()
    if data.dtype != torch.uint8 or data.dim() != 4 or data.shape[1] != 3:
        raise A2Error(f"{path}: field 'data' should be a ByteTensor N x 3 x P x P, got "
                      f"{tuple(data.shape)} {data.dtype}")
    if labels.shape != (len(data),):
        raise A2Error(f"{path}: field 'labels' has shape {tuple(labels.shape)}, expected ({len(data)},)")
    if len(labels) and (int(labels.min()) < 1 or int(labels.max()) > len(seeds)):
        raise A2Error(f"{path}: field 'labels' should hold 1..{len(seeds)} (1-based classes), "
                      f"found {int(labels.min())}..{int(labels.max())}")
    transforms = obj.get("transforms")
    boxes = obj.get("boxes")
    preset = obj.get("preset")
    return SurrogateSet(
        images=data, labels=labels - 1, seeds=seeds - 1,
        boxes=boxes.double() if isinstance(boxes, torch.Tensor) else torch.zeros(len(seeds), 3),
        transforms=(transforms.float() if isinstance(transforms, torch.Tensor)
                    else torch.zeros(len(data), len(T.COLUMNS))),
        preset=preset if isinstance(preset, str) else None)
