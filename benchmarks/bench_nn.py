"""Costs of Lua faithfulness: provider.normalize and t7 model files, against plain baselines.

1. ``provider.normalize`` (Torch7's float32 rounding reproduced: separate kernels, fused
   horizontal pass) against a plain float32 ``conv2d`` SpatialContrastiveNormalization with
   the same formula, on N random 3x96x96 uint8 images (one thread).
2. ``save_model``/``load_model`` of the full-size ``sample`` model as a Lua-loadable .t7
   against ``torch.save``/``torch.load`` of its state dict.

Prints absolute numbers and the ratios measured in the same run (the machine is shared),
medians of ``ROUNDS`` rounds; writes bench-out/nn.json.

    python benchmarks/bench_nn.py
    BENCH_NN_N=256 python benchmarks/bench_nn.py
"""

from __future__ import annotations

import os
import tempfile

import torch
import torch.nn.functional as F

from harness import Result, median_of
from luatorch_port import nn as lnn
from luatorch_port.train import provider as P

N_IMAGES = int(os.environ.get("BENCH_NN_N", 512))
ROUNDS = 3


def plain_normalize(images, stats):
    """The same preprocessing with one float32 conv2d per estimate (no Torch7 rounding)."""
    k = P.gaussian1D(P.SCN_KERNEL_SIZE, dtype=torch.float32)
    k = k / k.sum()
    kernel = torch.outer(k, k).view(1, 1, *(2 * [P.SCN_KERNEL_SIZE]))
    pad = P.SCN_KERNEL_SIZE // 2
    out = torch.empty(images.shape, dtype=torch.float32)
    for start in range(0, images.size(0), P.CHUNK):
        yuv = P.rgb2yuv(images[start:start + P.CHUNK].float())
        y = yuv[:, :1]
        coef = F.conv2d(torch.ones_like(y[:1]), kernel, padding=pad)
        c = y - F.conv2d(y, kernel, padding=pad) / coef
        s = F.conv2d(c * c, kernel, padding=pad).sqrt() / coef
        yuv[:, :1] = c / torch.where(s > 1e-4, s, torch.full_like(s, 1e-4))
        yuv[:, 1].sub_(stats.mean_u).div_(stats.std_u)
        yuv[:, 2].sub_(stats.mean_v).div_(stats.std_v)
        out[start:start + yuv.size(0)] = yuv
    return out


def timed(fn, rounds=ROUNDS):
    """(median seconds, the last result) of ``rounds`` calls."""
    out = []
    seconds, _ = median_of(lambda: out.append(fn()), rounds)
    return seconds, out[-1]


def bench_normalize(res):
    gen = torch.Generator().manual_seed(2016)
    images = torch.randint(0, 256, (N_IMAGES, 3, 96, 96), dtype=torch.uint8, generator=gen)
    stats = P.fit_normalization(images)
    t_lua, out_lua = timed(lambda: P.normalize(images, stats))
    t_plain, out_plain = timed(lambda: plain_normalize(images, stats))
    diff = (out_lua - out_plain).abs().max().item()
    res.figure("normalize_faithful", N_IMAGES / t_lua, "img/s", seconds=t_lua, images=N_IMAGES)
    res.figure("normalize_plain_conv2d", N_IMAGES / t_plain, "img/s", seconds=t_plain)
    res.figure("normalize_faithful_time_ratio", t_lua / t_plain, "x plain time")
    res.figure("normalize_max_abs_difference", diff, "")
    print(f"provider.normalize, {N_IMAGES} images 3x96x96, 1 thread:")
    print(f"  Torch7-faithful: {t_lua:.2f} s = {N_IMAGES / t_lua:.0f} img/s")
    print(f"  plain conv2d:    {t_plain:.2f} s = {N_IMAGES / t_plain:.0f} img/s")
    print(f"  faithful / plain time: {t_lua / t_plain:.2f}x; max |difference| {diff:.2g} "
          f"(random images have no flat regions)")


def bench_model_files(res):
    model = lnn.build_model("sample", generator=torch.Generator().manual_seed(0))
    nparams = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory(prefix="bench_nn_") as tmp:
        t7_path, pt_path = os.path.join(tmp, "model.t7"), os.path.join(tmp, "state.pt")
        t_save, _ = timed(lambda: lnn.save_model(model, t7_path))
        t_load, _ = timed(lambda: lnn.load_model(t7_path))
        b_save, _ = timed(lambda: torch.save(model.state_dict(), pt_path))
        b_load, _ = timed(lambda: torch.load(pt_path, weights_only=True))
        size_t7, size_pt = os.path.getsize(t7_path), os.path.getsize(pt_path)
    res.figure("save_model_t7", t_save, "s", baseline=b_save, ratio=t_save / b_save,
               parameters=nparams, file_mb=round(size_t7 / 1e6, 2),
               baseline_file_mb=round(size_pt / 1e6, 2))
    res.figure("load_model_t7", t_load, "s", baseline=b_load, ratio=t_load / b_load)
    print(f"sample model ({nparams} parameters), .t7 (weights + zero gradWeights) vs torch.save:")
    print(f"  save_model .t7: {t_save:.2f} s, {size_t7 / 1e6:.1f} MB; torch.save: {b_save:.2f} s, "
          f"{size_pt / 1e6:.1f} MB -> {t_save / b_save:.1f}x")
    print(f"  load_model .t7: {t_load:.2f} s; torch.load: {b_load:.2f} s -> {t_load / b_load:.1f}x")


def main():
    torch.set_num_threads(1)
    res = Result("nn")
    bench_normalize(res)
    bench_model_files(res)
    res.write()


if __name__ == "__main__":
    main()
