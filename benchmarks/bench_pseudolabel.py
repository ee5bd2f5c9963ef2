"""Pseudo-Label step cost: a supervised step against a Lee (2013) step, same model and batch.

The supervised step takes 64 already-normalised labelled images (as `a2 train`); the
Pseudo-Label step draws 64 more from a uint8 unlabelled set, normalises only those
(provider.normalize with the train statistics, as `a2 pseudolabel train` does) and trains
on the 128 rows with PseudoLabelLoss at full alpha. Also timed alone: the normalisation of
the 64 drawn rows. Rounds alternate the variants so a busy machine slows all alike; medians
are reported, with ratios to the supervised step measured in the same run; written to
bench-out/pseudolabel.json.

    python benchmarks/bench_pseudolabel.py [--model sample] [--size 96] [--steps 2] [--rounds 2] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from harness import Result
from luatorch_port.nn import build_model
from luatorch_port.train.optim import SGD
from luatorch_port.train.provider import fit_normalization, normalize
from luatorch_port.pseudolabel.lee import MixedBatches, PseudoLabelConfig, PseudoLabelLoss
from luatorch_port.train import StepInfo, cross_entropy

BATCH = 64                 # the starter's --batchSize
UNLABELLED = 64            # a2 pseudolabel train --unlabelled-per-batch default
STARTER_SGD = dict(learningRate=1.0, learningRateDecay=1e-7, weightDecay=5e-4, momentum=0.9)


def step(model, opt, x, y, loss_fn, info):
    loss = loss_fn(model(x.contiguous(memory_format=torch.channels_last)), y, info)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sample", help="Model name or spec.")
    ap.add_argument("--size", type=int, default=96, help="Image side (the course's is 96).")
    ap.add_argument("--steps", type=int, default=2, help="Steps per measurement.")
    ap.add_argument("--rounds", type=int, default=2, help="Measured rounds (after one warm-up).")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads.")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    labelled_u8 = torch.randint(0, 256, (4 * BATCH, 3, args.size, args.size), dtype=torch.uint8,
                                generator=gen)
    unlabelled = torch.randint(0, 256, (1000, 3, args.size, args.size), dtype=torch.uint8,
                               generator=gen)
    labels = torch.randint(0, 10, (4 * BATCH,), generator=gen)
    stats = fit_normalization(labelled_u8)
    labelled = normalize(labelled_u8, stats)
    mixed = MixedBatches(labelled, labels, unlabelled, per_batch=UNLABELLED, seed=1,
                         transform=lambda rows: normalize(rows, stats))
    model = build_model(args.model, 10, args.size, generator=gen)
    model.to(memory_format=torch.channels_last).train()
    opt = SGD(model.parameters(), **STARTER_SGD)
    pl_loss = PseudoLabelLoss(PseudoLabelConfig(t1=0, t2=0), 1)

    def supervised():
        for k in range(args.steps):
            idx = torch.arange(k * BATCH, (k + 1) * BATCH) % labelled.shape[0]
            x, y = labelled.index_select(0, idx), labels.index_select(0, idx)
            step(model, opt, x, y, cross_entropy, StepInfo(1, k, k))

    def pseudo():
        for k in range(args.steps):
            idx = torch.arange(k * BATCH, (k + 1) * BATCH) % labelled.shape[0]
            x, y = mixed.get_batch(idx)
            step(model, opt, x, y, pl_loss, StepInfo(1, k, k))

    def norm_only():
        for k in range(args.steps):
            rows = torch.randint(0, unlabelled.shape[0], (UNLABELLED,), generator=gen)
            normalize(unlabelled.index_select(0, rows), stats)

    variants = {"supervised step (64 labelled)": supervised,
                "Pseudo-Label step (64 + 64 drawn, normalised)": pseudo,
                "normalising the 64 drawn rows alone": norm_only}
    keys = {"supervised step (64 labelled)": "supervised_step",
            "Pseudo-Label step (64 + 64 drawn, normalised)": "pseudolabel_step",
            "normalising the 64 drawn rows alone": "normalize_drawn_rows"}
    times = {name: [] for name in variants}
    for r in range(args.rounds + 1):
        for name, fn in variants.items():
            tic = time.perf_counter()
            fn()
            if r > 0:
                times[name].append((time.perf_counter() - tic) / args.steps)
    base = statistics.median(times["supervised step (64 labelled)"])
    print(f"model {args.model}, {args.size}x{args.size}, threads {torch.get_num_threads()}, "
          f"median of {args.rounds} rounds of {args.steps} steps")
    res = Result("pseudolabel")
    res.note(f"model {args.model}, {args.size}x{args.size}, batch {BATCH} + {UNLABELLED} drawn, "
             f"threads {torch.get_num_threads()}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:48s} {med * 1e3:9.1f} ms/step   x{med / base:5.2f} of supervised")
        res.figure(keys[name], med * 1e3, "ms/step", baseline=base * 1e3, ratio=med / base,
                   rounds=[t * 1e3 for t in ts])
    res.write()


if __name__ == "__main__":
    main()
