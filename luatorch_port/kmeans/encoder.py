"""Port of Coates' ``extract_features.m``: triangle (or hard) encoding and 4-quadrant sum pooling.

For every rf×rf patch at stride 1 (27×27 positions on a 32×32 image): the same contrast
normalisation and whitening as the training patches, distances ``z_k = ‖x − c_k‖``, the
triangle activation ``f_k = max(0, mean(z) − z_k)``, then sums over the four quadrants
split at ``halfr = round(prows/2)`` (MATLAB rounds half away from zero) -> 4k features,
ordered ``[q1; q2; q3; q4]`` = (top-left, bottom-left, top-right, bottom-right), each k long.

Deviations: ``sqrt`` of a distance² that rounding made slightly negative is taken as 0
(MATLAB would return a complex number). ``encoder="hard"`` (Coates et al. 2011's "hard"
k-means, a one-hot of the nearest centroid) is offered for the ablation. ``stride`` > 1
takes patches on a grid (the report's 22×22 patches at stride 24: 4×4 per 96×96 image,
quadrants of 2×2 patches). Images are
encoded in chunks of several images (worker threads on CPU) instead of one at a time.
``precision="bf16"`` (the default) computes the cross term ``x·c`` of the distance and the
whitened patch in one bfloat16 GEMM (fp32 accumulation, rounded to bfloat16 on output; the
ZCA matrix folded into the centroids) and the rest in fp32: on CPU as two C passes
(``fused.py``, ``triangle.c``) around the GEMM, or as torch passes without a C compiler.
``precision="fp32"`` is Coates' arithmetic in float32. docs/kmeans.md gives the measured
accuracy change.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..util.errors import A2Error
from .fused import kernels
from .patches import image_patches
from ..util.threads import single_threaded_openmp
from .whitening import CONTRAST_VAR_REG

ENCODERS = ("triangle", "hard")
PRECISIONS = ("fp32", "bf16")  # the distance GEMM's input precision (bf16 accumulates in fp32)
DEFAULT_PRECISION = "bf16"           # the encoder's default; docs/kmeans.md has the accuracy check
CHUNK_ELEMENTS = 1536 * 1600   # distance entries per chunk and worker (9.8 MB: two workers' blocks
                               # stay in a 32 MB L3; 2 images at 32x32, k = 1600)
GEMM_BLOCK_BYTES = 832 * 1024  # the bf16 path's GEMM output per block: its C pass reads it
                               # while it is still in a 1 MB L2 (248 rows at k = 1600)
GEMM_COLUMN_STEP = 16          # the bf16 path pads its GEMM's width to a multiple of this
                               # (a ragged last column block slows oneDNN down)


def quadrant_half(n: int) -> int:
    """MATLAB's ``round(n/2)``: half away from zero (13.5 -> 14, 12.5 -> 13), n >= 0."""
    return (n + 1) // 2


def pool_quadrants(act: torch.Tensor) -> torch.Tensor:
    """Sum (B, prows, pcols, k) activations over 4 quadrants -> (B, 4k), ``[q1; q2; q3; q4]``."""
    b, pr, pc, k = act.shape
    hr, hc = quadrant_half(pr), quadrant_half(pc)
    top = act[:, :hr].sum(1)       # (B, pcols, k)
    bottom = act[:, hr:].sum(1)
    return torch.cat([top[:, :hc].sum(1), bottom[:, :hc].sum(1),
                      top[:, hc:].sum(1), bottom[:, hc:].sum(1)], dim=1)


class _Encoder:
    """Reusable buffers for encoding images with one dictionary (the torch path, for CUDA)."""

    def __init__(self, centroids, mean, p, rf, encoder, rows, precision=DEFAULT_PRECISION,
                 stride=1):
        self.k, self.d = centroids.shape
        self.rf, self.stride = rf, stride
        self.encoder = encoder
        self.bf16 = precision == "bf16"
        dev = centroids.device
        c = centroids.float()
        # One GEMM gives the squared distance: [xw, 1, ‖xw‖²] · [−2c, ‖c‖², 1]ᵀ.
        self.cat = torch.empty(self.d + 2, self.k, dtype=torch.float32, device=dev)
        self.cat[: self.d] = -2.0 * c.t()
        self.cat[self.d] = c.double().pow(2).sum(1).float()
        self.cat[self.d + 1] = 1.0
        self.cat_bf16 = self.cat[: self.d].to(torch.bfloat16)
        if p is None:
            self.p = None
        else:
            self.p = p.float().to(dev)
            self.bias = -(mean.float().to(dev) @ self.p)
        self.rows = rows
        self.xa = torch.empty(rows, self.d + 2, dtype=torch.float32, device=dev)
        self.xa[:, self.d] = 1.0
        self.z = torch.empty(rows, self.k, dtype=torch.float32, device=dev)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        b = images.shape[0]
        patches = image_patches(images, self.rf, self.stride)   # (B, pr, pc, d)
        _, pr, pc, d = patches.shape
        if d != self.d:
            raise A2Error(f"patches have {d} values (C·rf·rf) but the centroids have {self.d}")
        x = patches.reshape(-1, d)
        m = x.shape[0]
        var, mu = torch.var_mean(x, dim=1, correction=1, keepdim=True)
        x = (x - mu).div_(var.add_(CONTRAST_VAR_REG).sqrt_())
        xa = self.xa[:m]
        if self.p is None:
            xa[:, :d] = x
        else:
            torch.addmm(self.bias, x, self.p, out=xa[:, :d])
        torch.sum(xa[:, :d] * xa[:, :d], dim=1, out=xa[:, d + 1])
        z = self.z[:m]
        if self.bf16:
            torch.add(xa[:, d + 1:], self.cat[d], out=z)        # ‖x‖² + ‖c‖²
            z.add_(torch.matmul(xa[:, :d].to(torch.bfloat16), self.cat_bf16))
        else:
            torch.matmul(xa, self.cat, out=z)                 # ‖x − c‖², (m, k)
        if self.encoder == "hard":
            idx = z.argmin(1, keepdim=True)
            z.zero_().scatter_(1, idx, 1.0)
        else:
            z.clamp_(min=0).sqrt_()
            mean_z = z.mean(1, keepdim=True)
            torch.sub(mean_z, z, out=z).clamp_(min=0)
        return pool_quadrants(z.view(b, pr, pc, self.k))


def encode(images: torch.Tensor, centroids: torch.Tensor, rf: int, mean: torch.Tensor | None = None,
           p: torch.Tensor | None = None, *, encoder: str = "triangle", chunk_rows: int | None = None,
           precision: str = DEFAULT_PRECISION, stride: int = 1, progress=None) -> torch.Tensor:
    """Coates features of float (N, C, S, S) images (pixels 0..255) -> float32 (N, 4k).

    Parameters
    ----------
    images : float (N, C, S, S) tensor at the size the centroids were learnt on.
    centroids : (k, C·rf·rf) tensor. Its device is where the work runs.
    rf : patch side.
    mean, p : the ZCA mean (d,) and matrix (d, d); ``p=None`` means no whitening.
    encoder : ``"triangle"`` (default) or ``"hard"``.
    chunk_rows : patches per distance GEMM (default: ``CHUNK_ELEMENTS / k``); at least one
        image per chunk.
    precision : ``"bf16"`` (default) or ``"fp32"``: the distance GEMM's precision.
    stride : step between patches (Coates: 1; the report: 24, a 4×4 grid of 22×22 patches).
    progress : optional callable ``progress(n_images_done)``.
    """
    if encoder not in ENCODERS:
        raise A2Error(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    if precision not in PRECISIONS:
        raise A2Error(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if images.dim() != 4:
        raise A2Error(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    n, _, h, w = images.shape
    if rf > min(h, w):
        raise A2Error(f"rf={rf} does not fit in {h}x{w} images")
    if images.shape[1] * rf * rf != centroids.shape[1]:
        raise A2Error(f"{images.shape[1]}-channel {rf}x{rf} patches have "
                      f"{images.shape[1] * rf * rf} values but the centroids have {centroids.shape[1]}")
    if stride < 1:
        raise A2Error(f"stride={stride} should be >= 1")
    per_image = ((h - rf) // stride + 1) * ((w - rf) // stride + 1)
    if chunk_rows is None:
        chunk_rows = CHUNK_ELEMENTS // max(1, centroids.shape[0])
    batch = max(1, min(n, chunk_rows // per_image))
    out = torch.empty(n, 4 * centroids.shape[0], dtype=torch.float32)
    bounds = [(lo, min(lo + batch, n)) for lo in range(0, n, batch)]
    if centroids.device.type == "cpu":
        _encode_cpu(images, centroids, rf, mean, p, encoder, batch * per_image, bounds, out,
                    progress, precision, stride)
        return out
    enc = _Encoder(centroids, mean, p, rf, encoder, batch * per_image, precision, stride)
    dev = centroids.device
    for lo, hi in bounds:
        out[lo:hi] = enc.encode(images[lo:hi].to(dev, torch.float32)).cpu()
        if progress is not None:
            progress(hi - lo)
    return out


def _encode_cpu(images, centroids, rf, mean, p, encoder, rows, bounds, out, progress,
                precision=DEFAULT_PRECISION, stride=1):
    """CPU path: worker threads each encode whole chunks with single-threaded BLAS (numpy's
    OpenBLAS GEMMs) and single-threaded torch elementwise ops (vectorised kernels, faster
    than numpy's ``maximum``/``subtract``), on reused buffers that stay in the L3 cache; no BLAS or
    OpenMP thread pool is left spinning between the GEMMs and the elementwise steps."""
    if precision == "bf16":
        fused = kernels()
        if fused is not None:
            work = _fused_worker(images, centroids, rf, mean, p, rows, out, stride, fused,
                                 encoder)
            _run_chunks(work, bounds, progress)
            return
    k, d = centroids.shape
    c = centroids.float().numpy()
    cat = np.empty((d + 2, k), np.float32)       # [x, 1, ‖x‖²] · [−2c, ‖c‖², 1]ᵀ = ‖x − c‖²
    cat[:d] = -2.0 * c.T
    cat[d] = (c.astype(np.float64) ** 2).sum(1)
    cat[d + 1] = 1.0
    bf16 = precision == "bf16"
    # bf16 GEMM for the cross term −2·x·c only; the norms are added in fp32 afterwards (folding
    # them into the bf16 GEMM rounds the whole distance to bf16: many times the feature error)
    cat_bf16 = torch.from_numpy(cat[:d]).to(torch.bfloat16) if bf16 else None
    pm = None if p is None else p.float().numpy()
    bias = None if p is None else -(mean.float().numpy() @ pm)
    out_np = out.numpy()
    local = threading.local()

    def work(lo, hi):
        if not hasattr(local, "z"):
            local.x = np.empty((rows, d), np.float32)
            local.xa = np.empty((rows, d + 2), np.float32)
            local.xa[:, d] = 1.0
            local.z = np.empty((rows, k), np.float32)
            local.mz = np.empty((rows, 1), np.float32)
            if bf16:
                local.xb = torch.empty(rows, d, dtype=torch.bfloat16)
                local.zb = torch.empty(rows, k, dtype=torch.bfloat16)
        imgs = images[lo:hi].to(torch.float32).numpy()
        b, ch, hgt, wid = imgs.shape
        pr, pc = (hgt - rf) // stride + 1, (wid - rf) // stride + 1
        m = b * pr * pc
        if ch * rf * rf != d:
            raise A2Error(f"patches have {ch * rf * rf} values (C·rf·rf) but the centroids have {d}")
        x = local.x[:m]
        win = np.lib.stride_tricks.sliding_window_view(imgs, (rf, rf), axis=(2, 3))
        win = win[:, :, ::stride, ::stride]
        x.reshape(b, pr, pc, ch, rf, rf)[...] = win.transpose(0, 2, 3, 1, 4, 5)
        x -= x.mean(1, keepdims=True)
        var = np.einsum("ij,ij->i", x, x) / (d - 1)
        x /= np.sqrt(var + CONTRAST_VAR_REG)[:, None]
        xa = local.xa[:m]
        xw = xa[:, :d]
        if pm is None:
            xw[...] = x
        else:
            np.matmul(x, pm, out=xw)
            xw += bias
        xa[:, d + 1] = np.einsum("ij,ij->i", xw, xw)
        z = local.z[:m]
        tz = torch.from_numpy(z)
        if bf16:
            xb, zb = local.xb[:m], local.zb[:m]
            xb.copy_(torch.from_numpy(xw))
            torch.matmul(xb, cat_bf16, out=zb)                  # −2·x·c, fp32 accumulation
            torch.add(zb, torch.from_numpy(cat[d]), out=tz)    # + ‖c‖², in fp32
            tz.add_(torch.from_numpy(xa[:, d + 1:]))           # + ‖x‖²
        else:
            np.matmul(xa, cat, out=z)
        if encoder == "hard":
            idx = torch.from_numpy(z.argmin(1)).unsqueeze(1)
            tz.zero_().scatter_(1, idx, 1.0)
        else:
            # sqrt(max(z, 0)) without a clamping pass: a distance² that rounding made negative
            # gives NaN, which the row's mean then carries; only those (rare) rows are redone.
            with np.errstate(invalid="ignore"):
                np.sqrt(z, out=z)
            mz = torch.from_numpy(local.mz[:m])
            torch.mean(tz, 1, keepdim=True, out=mz)       # torch's cascade sum: as exact as numpy's
            bad = torch.isnan(mz[:, 0]).nonzero()[:, 0].numpy()
            if bad.size:
                zb = xa[bad] @ cat
                np.sqrt(np.maximum(zb, 0.0, out=zb), out=zb)
                z[bad] = zb
                mz[bad, 0] = torch.from_numpy(zb).mean(1)
            torch.sub(mz, tz, out=tz).clamp_min_(0.0)
        act = tz.view(b, pr, pc, k)
        hr, hc = quadrant_half(pr), quadrant_half(pc)
        top, bottom = act[:, :hr].sum(1), act[:, hr:].sum(1)     # (b, pc, k)
        res = torch.from_numpy(out_np[lo:hi]).view(b, 4, k)
        torch.sum(top[:, :hc], 1, out=res[:, 0])
        torch.sum(bottom[:, :hc], 1, out=res[:, 1])
        torch.sum(top[:, hc:], 1, out=res[:, 2])
        torch.sum(bottom[:, hc:], 1, out=res[:, 3])
        return hi - lo

    _run_chunks(work, bounds, progress)


def _fused_worker(images, centroids, rf, mean, p, rows, out, stride, fused, encoder):
    """The bf16 encoder: per chunk, one C pass that cuts and normalises the patches, then per
    block of rows (``GEMM_BLOCK_BYTES`` of output) one bf16 GEMM and one C pass.

    The ZCA matrix P is folded into the right operand, ``[−2·P·Cᵀ | P]`` (d × (k + d)), so
    the GEMM of the contrast-normalised patches gives both the cross term of the distance
    (up to the per-centroid constant ``−2·bias·c``, added to ‖c‖²) and the whitened patch
    (up to ``bias``) from which the C epilogue takes ‖x‖² in fp32.
    """
    patches_fn, pool_fn, hard_fn = fused
    k, d = centroids.shape
    c = centroids.float()
    width = -(-(k + d) // GEMM_COLUMN_STEP) * GEMM_COLUMN_STEP
    right = torch.zeros(d, width, dtype=torch.bfloat16)                # [−2·P·Cᵀ | P | 0]
    if p is None:
        bias = torch.zeros(d, dtype=torch.float64)
        right[:, :k] = -2.0 * c.t()
        right[:, k:k + d] = torch.eye(d)
    else:
        pm = p.float()
        bias = -(mean.double() @ p.double())
        right[:, :k] = torch.mm(pm, c.t()).mul_(-2.0)   # float32: rounded to bf16 anyway
        right[:, k:k + d] = pm
    c = c.double()
    cc = ((c * c).sum(1) - 2.0 * (c @ bias)).float().numpy()
    bias32 = bias.float().numpy()
    block = max(1, min(rows, GEMM_BLOCK_BYTES // (2 * width)))   # rows per GEMM + C pass
    out_np = out.numpy()
    local = threading.local()

    def work(lo, hi):
        if not hasattr(local, "y"):
            local.x = torch.empty(rows, d, dtype=torch.bfloat16)
            local.y = torch.empty(block, width, dtype=torch.bfloat16)
            local.scratch = np.empty(max(k, d), np.float32)
        imgs = np.ascontiguousarray(images[lo:hi].to(torch.float32).numpy())
        b, ch, hgt, wid = imgs.shape
        pr, pc = (hgt - rf) // stride + 1, (wid - rf) // stride + 1
        hr, hc = quadrant_half(pr), quadrant_half(pc)
        if ch * rf * rf != d:
            raise A2Error(f"patches have {ch * rf * rf} values (C·rf·rf) but the centroids have {d}")
        m = b * pr * pc
        x = local.x[:m]
        patches_fn(imgs.ctypes.data, b, ch, hgt, wid, rf, stride, CONTRAST_VAR_REG,
                   x.data_ptr(), local.scratch.ctypes.data)
        res = out_np[lo:hi]
        res[...] = 0.0
        for r0 in range(0, m, block):
            r1 = min(r0 + block, m)
            y = local.y[: r1 - r0]
            torch.matmul(x[r0:r1], right, out=y)             # fp32 accumulation, bf16 out
            if encoder == "hard":
                hard_fn(y.data_ptr(), width, cc.ctypes.data, r0, r1, pr, pc, hr, hc, k,
                        res.ctypes.data)
            else:
                pool_fn(y.data_ptr(), width, bias32.ctypes.data, cc.ctypes.data, r0, r1, pr, pc,
                        hr, hc, k, d, res.ctypes.data, local.scratch.ctypes.data)
        return hi - lo

    return work


def _run_chunks(work, bounds, progress):
    """``work(lo, hi)`` for each chunk on torch.get_num_threads() worker threads, each with
    single-threaded BLAS and OpenMP; ``progress`` told in chunk order."""
    workers = max(1, min(torch.get_num_threads(), len(bounds)))
    with threadpool_limits(1, user_api="blas"):
        if workers == 1:
            for lo, hi in bounds:
                done = work(lo, hi)
                if progress is not None:
                    progress(done)
            return
        with ThreadPoolExecutor(workers, initializer=single_threaded_openmp) as pool:
            futures = [pool.submit(work, lo, hi) for lo, hi in bounds]
            for fut in futures:
                done = fut.result()
                if progress is not None:
                    progress(done)
