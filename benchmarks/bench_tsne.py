"""Benchmark: `a2 tsne`'s embedding of 1,000 images (the report's val set size), end to end.

Ours: the first channel of each 96×96 image (9,216 values), PCA to 50, t-SNE (the default
method: the exact gradient for 1,000 points), trustworthiness — with all cores and with one
thread; and the same with ``method="barnes-hut"`` (scikit-learn's optimiser on our PCA output).
Baseline, in the same run: scikit-learn's TSNE straight on the 9,216-d input (same perplexity,
θ, iterations, init). Prints absolute seconds, the ratio to the baseline and each map's KL
divergence (measured exactly on the same affinities); the target is ≤ 5 s end to end.
Images: the embedded digits sample at 96×96 (real structure, like val images), the first 1,000.
"""

from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from luatorch_port.visualize import features, tsne  # noqa: E402
from luatorch_port.visualize.pca import pca  # noqa: E402
from luatorch_port.data.sample import make_sample_images  # noqa: E402

N = 1000
TARGET_S = 5.0


def baseline(x):
    from sklearn.manifold import TSNE

    t0 = time.perf_counter()
    TSNE(n_components=2, perplexity=tsne.PERPLEXITY, angle=tsne.THETA, max_iter=tsne.N_ITER, init="pca",
         learning_rate="auto", random_state=0).fit_transform(x.numpy())
    return time.perf_counter() - t0


def ours(x, threads, method="auto"):
    t0 = time.perf_counter()
    emb = tsne.embed(x, threads=threads, method=method, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - t0, emb


def exact_kl(x, emb):
    """KL(P‖Q) of a map, on the affinities both methods share (PCA-50 input, perplexity 30)."""
    from luatorch_port.visualize import tsne_exact

    p = tsne_exact.joint_probabilities(pca(x, tsne.PCA_DIMS), tsne.PERPLEXITY)
    return tsne_exact.kl_divergence(p, torch.from_numpy(emb.coords))


def main():
    images, labels, _ = make_sample_images(seed=1, image_size=96)
    x = features.raw_channel_features(images[:N], channel=1)
    print(f"input: {x.shape[0]} images x {x.shape[1]} values (channel 1 of 3x96x96), "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    t_all, emb = ours(x, None)
    t_one, _ = ours(x, 1)
    t_bh, emb_bh = ours(x, None, "barnes-hut")
    t_base = baseline(x)
    for label, t, e in ((f"ours ({emb.method}), all cores", t_all, emb), (f"ours ({emb_bh.method}), all cores", t_bh,
                                                                          emb_bh)):
        print(f"{label:28s}: {t:6.2f} s  (pca {e.seconds['pca']:.2f}, tsne {e.seconds['tsne']:.2f}, "
              f"trustworthiness {e.seconds['trustworthiness']:.2f}); trustworthiness {e.trustworthiness:.3f}, "
              f"KL {exact_kl(x, e):.4f}")
    print(f"{'ours (' + emb.method + '), 1 thread':28s}: {t_one:6.2f} s")
    print(f"{'sklearn on raw ' + str(x.shape[1]) + '-d':28s}: {t_base:6.2f} s")
    print(f"speed-up vs baseline: all cores {t_base / t_all:.2f}x, 1 thread {t_base / t_one:.2f}x; t-SNE step "
          f"exact vs Barnes-Hut {emb_bh.seconds['tsne'] / emb.seconds['tsne']:.2f}x; target <= {TARGET_S:.0f} s: "
          f"{'met' if min(t_all, t_one) <= TARGET_S else 'NOT met (busy machine?)'}")


if __name__ == "__main__":
    main()
