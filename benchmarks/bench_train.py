"""Training-step throughput: `fit`'s loop against a bare PyTorch loop, same model and optimizer.

Model 64c5-128c5-256c5-512f (Exemplar-CNN), 32x32 input, 4000 classes, batch 128, Lua
optim.sgd, CrossEntropy. Rounds alternate the variants so a busy machine slows all alike;
the median of each variant's images/s is reported, with ratios to the bare loop measured in
the same run and the fraction of the machine's fp32 matmul peak. Both the peak
(``harness.gemm_peak_gflops``, before and after the rounds) and the work per image
(``harness.count_flops`` of one forward + backward) are measured in this run.
Writes bench-out/train.json.

    python benchmarks/bench_train.py [--steps 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from harness import Result, count_flops, gemm_peak_gflops
from luatorch_port.nn import build_model
from luatorch_port.train.optim import SGD
from luatorch_port.train import TrainConfig, fit

SPEC = "64c5-128c5-256c5-512f"
N_CLASSES, SIZE, BATCH = 4000, 32, 128
TARGET_FIT_RATIO = 0.95  # fit / bare loop, both channels_last
STARTER_SGD = dict(learningRate=1.0, learningRateDecay=1e-7, weightDecay=5e-4, momentum=0.9)


def bare_loop(model, batches, channels_last):
    """The reference: forward, loss, backward, optimizer step; nothing else."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = SGD(model.parameters(), **STARTER_SGD)
    tic = time.perf_counter()
    for x, y in batches:
        x = x.contiguous(memory_format=fmt)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(batches) * BATCH / (time.perf_counter() - tic)


def framework_loop(model, data, channels_last, flip=False):
    config = TrainConfig(batch_size=BATCH, max_epoch=1, n_classes=N_CLASSES, flip=flip,
                         channels_last=channels_last, learning_rate=1.0)
    result = fit(model, data, None, config, generator=torch.Generator().manual_seed(0),
                 device="cpu", save_model_fn=None)
    return result.history[0]["images_per_s"]


def flops_per_image(model, batches):
    """Matmul/conv FLOPs of one forward + backward of a batch, per image (counted, not timed)."""
    model = copy.deepcopy(model).train()
    x, y = batches[0]

    def step():
        F.cross_entropy(model(x), y).backward()
    return count_flops(step) / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5, help="Training steps per measurement.")
    ap.add_argument("--rounds", type=int, default=3, help="Measured rounds (after one warm-up).")
    args = ap.parse_args()

    g = torch.Generator().manual_seed(0)
    base = build_model(SPEC, n_classes=N_CLASSES, input_size=SIZE, generator=g)
    n = (args.steps + 1) * BATCH  # fit drops the last batch, as train.lua does
    inputs = torch.randn(n, 3, SIZE, SIZE, generator=g)
    targets = torch.randint(0, N_CLASSES, (n,), generator=g)
    batches = [(inputs[i * BATCH:(i + 1) * BATCH], targets[i * BATCH:(i + 1) * BATCH])
               for i in range(args.steps)]

    res = Result("train")
    mflop = flops_per_image(base, batches) / 1e6
    peaks = [gemm_peak_gflops()]
    variants = {
        "bare loop": lambda m: bare_loop(m, batches, False),
        "bare loop, channels_last": lambda m: bare_loop(m, batches, True),
        "fit": lambda m: framework_loop(m, (inputs, targets), False),
        "fit, channels_last": lambda m: framework_loop(m, (inputs, targets), True),
        "fit, channels_last + BatchFlip": lambda m: framework_loop(m, (inputs, targets), True, True),
    }
    speeds = {name: [] for name in variants}
    for r in range(args.rounds + 1):
        for name, run in variants.items():
            ips = run(copy.deepcopy(base))
            if r > 0:  # round 0 warms up oneDNN's kernel caches
                speeds[name].append(ips)
    peaks.append(gemm_peak_gflops())
    peak = max(p["gflops"] for p in peaks)  # the better of the two: the machine's limit now

    print(f"{SPEC}, {SIZE}x{SIZE}, {N_CLASSES} classes, batch {BATCH}, "
          f"{torch.get_num_threads()} threads, {args.steps} steps x {args.rounds} rounds (median)")
    print(f"work {mflop:.0f} MFLOP per image (forward + backward); fp32 GEMM peak now "
          f"{peaks[0]['gflops']:.0f} / {peaks[1]['gflops']:.0f} GFLOP/s (before / after)")
    res.figure("mflop_per_image", mflop, "MFLOP", counted="torch FlopCounterMode")
    res.figure("gemm_peak", peak, "GFLOP/s", before=peaks[0], after=peaks[1])
    med = {name: statistics.median(v) for name, v in speeds.items()}
    bare, bare_cl = med["bare loop"], med["bare loop, channels_last"]
    print(f"{'variant':34s} {'img/s':>8s} {'vs bare':>8s} {'vs bare(same fmt)':>18s} "
          f"{'of peak':>8s}")
    for name, ips in med.items():
        same = bare_cl if "channels_last" in name else bare
        fraction = ips * mflop / 1e3 / peak
        print(f"{name:34s} {ips:8.1f} {ips / bare:7.3f}x {ips / same:17.3f}x {fraction:7.1%}")
        key = name.replace(", ", "_").replace(" + ", "_").replace(" ", "_").lower()
        res.figure(key, ips, "img/s", baseline=same, ratio=ips / same, rounds=speeds[name],
                   fraction_of_limit=fraction, limit="gemm_peak")
    ratio = med["fit, channels_last"] / bare_cl
    res.figure("fit_over_bare_channels_last", ratio, "ratio", target=TARGET_FIT_RATIO)
    print(f"fit / bare loop (both channels_last): {ratio:.3f}  (target >= {TARGET_FIT_RATIO})")
    res.write()


if __name__ == "__main__":
    main()
