"""Benchmark: `a2 tsne`'s embedding of 1,000 images (the report's val set size), end to end.

Ours: the first channel of each 96×96 image (9,216 values), PCA to 50, Barnes-Hut t-SNE,
trustworthiness — with all cores and with one OpenMP thread. Baseline, in the same run:
scikit-learn's TSNE straight on the 9,216-d input (same perplexity, θ, iterations, init).
Prints absolute seconds and the ratio to the baseline; the target is ≤ 5 s end to end.
Images: the embedded digits sample at 96×96 (real structure, like val images), the first 1,000.
"""

from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from luatorch_port import tsne  # noqa: E402
from luatorch_port.data.sample import make_sample_images  # noqa: E402

N = 1000
TARGET_S = 5.0


def baseline(x):
    from sklearn.manifold import TSNE

    t0 = time.perf_counter()
    TSNE(n_components=2, perplexity=tsne.PERPLEXITY, angle=tsne.THETA, max_iter=tsne.N_ITER, init="pca",
         learning_rate="auto", random_state=0).fit_transform(x.numpy())
    return time.perf_counter() - t0


def ours(x, threads):
    t0 = time.perf_counter()
    emb = tsne.embed(x, threads=threads, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - t0, emb


def main():
    images, labels, _ = make_sample_images(seed=1, image_size=96)
    x = tsne.raw_channel_features(images[:N], channel=1)
    print(f"input: {x.shape[0]} images x {x.shape[1]} values (channel 1 of 3x96x96), "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    t_all, emb = ours(x, None)
    t_one, _ = ours(x, 1)
    t_base = baseline(x)
    print(f"ours, all cores : {t_all:6.2f} s  (pca {emb.seconds['pca']:.2f}, tsne {emb.seconds['tsne']:.2f}, "
          f"trustworthiness {emb.seconds['trustworthiness']:.2f}); trustworthiness {emb.trustworthiness:.3f}")
    print(f"ours, 1 thread  : {t_one:6.2f} s")
    print(f"sklearn on raw {x.shape[1]}-d: {t_base:6.2f} s")
    print(f"speed-up vs baseline: all cores {t_base / t_all:.2f}x, 1 thread {t_base / t_one:.2f}x; "
          f"target <= {TARGET_S:.0f} s: {'met' if min(t_all, t_one) <= TARGET_S else 'NOT met (busy machine?)'}")


if __name__ == "__main__":
    main()
