"""Time the full default k-means pipeline (`a2 kmeans fit` + `a2 kmeans eval`) at course size.

Builds (once) a synthetic set in the exact course layout and sizes: train.t7b 4,000 and
test.t7b 8,000 labelled 3x96x96 images, extra.t7b 20,000 unlabelled ones (the report drew
its patches from 20,000 unlabelled images). The images are the embedded digits sample
recoloured with different seeds, so digits recur across splits in other colours: the
accuracy is optimistic, the timing is what this measures. Then runs the two commands with
their defaults (k 1600, 400,000 patches, 50 iterations, 32x32, C 100) and prints the time
of each. Not part of `make bench` (minutes of work):

    python benchmarks/kmeans_full_pipeline.py [--dir bench-out/kmeans-full]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

SIZES = {"train": 4000, "test": 8000, "extra": 20000}


def build(out_dir):
    from luatorch_port.data import save_split
    from luatorch_port.data.sample import make_sample_images

    os.makedirs(out_dir, exist_ok=True)
    pools = {"train": ([], []), "test": ([], []), "extra": ([], [])}
    have = dict.fromkeys(SIZES, 0)
    seed = 1
    while any(have[s] < SIZES[s] for s in SIZES):
        images, labels, names = make_sample_images(seed, 96)
        for split, source in (("train", ("train", "val")), ("test", ("test",)), ("extra", ("extra",))):
            need = SIZES[split] - have[split]
            if need <= 0:
                continue
            mask = torch.tensor([n in source for n in names])
            sel = torch.nonzero(mask).flatten()[:need]
            pools[split][0].append(images[sel])
            pools[split][1].append(labels[sel])
            have[split] += len(sel)
        seed += 1
    for split, (imgs, labs) in pools.items():
        imgs, labs = torch.cat(imgs), torch.cat(labs)
        path = os.path.join(out_dir, f"{split}.t7b")
        save_split(path, imgs, None if split == "extra" else labs,
                   **({} if split == "extra" else {"n_classes": 10}))
        print(f"wrote {path}: {len(imgs)} images", flush=True)


def run(args, **kw):
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "luatorch_port", *args], check=True, **kw)
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join("bench-out", "kmeans-full"))
    args = ap.parse_args(argv)
    d = args.dir
    if not all(os.path.exists(os.path.join(d, f"{s}.t7b")) for s in SIZES):
        build(d)
    cents = os.path.join(d, "centroids.t7")
    t_fit = run(["kmeans", "fit", "--data", os.path.join(d, "extra.t7b"), "--out", cents, "--quiet"])
    t_eval = run(["kmeans", "eval", "--centroids", cents, "--train", os.path.join(d, "train.t7b"),
                  "--test", os.path.join(d, "test.t7b"), "--predictions",
                  os.path.join(d, "predictions.csv"), "--quiet"])
    fit_rec = json.load(open(os.path.join(d, "centroids.fit.run.json")))
    eval_rec = json.load(open(os.path.join(d, "centroids.eval.run.json")))
    print(f"a2 kmeans fit:  {t_fit:6.1f} s wall (load {fit_rec['results']['load_seconds']:.1f} s)")
    print(f"a2 kmeans eval: {t_eval:6.1f} s wall (stages {eval_rec['results']['stage_seconds']})")
    print(f"total {t_fit + t_eval:.1f} s; train accuracy "
          f"{100 * eval_rec['results']['train_accuracy']:.2f} %, test accuracy "
          f"{100 * eval_rec['results']['test_accuracy']:.2f} %")


if __name__ == "__main__":
    main()
