"""Benchmark of report part 2.2 (Coates k-means features), each side by side with a baseline.

1. k-means: 400,000 x 108 whitened patches, k = 1600, 10 iterations from the same start,
   ours (run_kmeans) against sklearn.cluster.KMeans(algorithm="lloyd"). Target: >= 1.3x
   sklearn's speed per iteration at equal inertia (within 0.1 %).
2. triangle encoding of 32x32 images with 1600 centroids, ours (encode) against a numpy
   im2col transcription of extract_features.m, one image at a time. Target: >= 500 images/s.
3. L2-SVM on 4,000 x 6,400 features (10 classes), ours (L2SVM, C = 100) against
   sklearn.svm.LinearSVC(loss="squared_hinge", C = 100 / 4000). Target: <= 3 s and within
   0.5 % of LinearSVC's test accuracy.

The machine may be shared: read the ratios (same run, same load) before the seconds.
Images are synthetic 1/f ("pink") noise, which has natural images' second-order
statistics, so whitening and k-means see realistic spectra. SVM features are synthetic
(non-negative, correlated, 10 classes), shaped like pooled triangle features.

    python benchmarks/bench_kmeans.py [--scale 0.25] [--only kmeans,encode,svm]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from luatorch_port.kmeans import (apply_zca, contrast_normalize, encode, fit_zca, random_patches,
                                  run_kmeans)
from luatorch_port.svm import L2SVM, Standardizer

K, RF, PATCHES, ITERATIONS = 1600, 6, 400_000, 10
ENCODE_IMAGES, NUMPY_IMAGES = 1000, 100
SVM_TRAIN, SVM_TEST, SVM_DIM, SVM_CLASSES, SVM_C = 4000, 4000, 6400, 10, 100.0


def pink_noise_images(n, size=32, seed=0):
    """uint8 (n, 3, size, size) images with a 1/f amplitude spectrum and correlated colours."""
    g = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    amp = 1.0 / np.maximum(np.sqrt(fx ** 2 + fy ** 2), 1.0 / size)
    out = np.empty((n, 3, size, size), np.float32)
    mix = np.array([[1.0, 0.9, 0.8], [0.0, 0.3, 0.2], [0.0, 0.0, 0.25]], np.float32)
    for lo in range(0, n, 500):
        m = min(500, n - lo)
        spec = (g.standard_normal((m, 3, size, size // 2 + 1))
                + 1j * g.standard_normal((m, 3, size, size // 2 + 1))) * amp
        img = np.fft.irfft2(spec, s=(size, size)).astype(np.float32)
        img = np.einsum("ij,njhw->nihw", mix.T, img)
        img /= img.std(axis=(1, 2, 3), keepdims=True) + 1e-8
        out[lo:lo + m] = img
    return torch.from_numpy(np.clip(out * 40 + 128, 0, 255).astype(np.uint8))


def whitened_patches(n, seed=0):
    images = pink_noise_images(max(1000, n // 100), seed=seed)
    p = random_patches(images, n, RF, generator=torch.Generator().manual_seed(seed))
    contrast_normalize(p, out=p)
    m, w = fit_zca(p)
    return apply_zca(p, m, w), images, (m, w)


def bench_kmeans(scale):
    from sklearn.cluster import KMeans
    n, k = int(PATCHES * scale), max(16, int(K * scale))
    x, _, _ = whitened_patches(n)
    init = x[torch.randperm(n, generator=torch.Generator().manual_seed(1))[:k]].clone()
    t = time.perf_counter()
    ours = run_kmeans(x, k, ITERATIONS, init=init)
    t_ours = (time.perf_counter() - t) / ITERATIONS
    t = time.perf_counter()
    sk = KMeans(k, init=init.numpy(), n_init=1, max_iter=ITERATIONS, tol=0.0,
                algorithm="lloyd").fit(x.numpy())
    t_sk = (time.perf_counter() - t) / ITERATIONS
    rel = abs(ours.inertia - sk.inertia_) / sk.inertia_
    print(f"k-means {n} x {x.shape[1]}, k={k}, {ITERATIONS} iterations from the same start")
    print(f"  sklearn lloyd  {t_sk:7.3f} s/iteration  inertia {sk.inertia_:.8g}  (n_iter {sk.n_iter_})")
    print(f"  ours           {t_ours:7.3f} s/iteration  inertia {ours.inertia:.8g}")
    print(f"  speed-up {t_sk / t_ours:.2f}x (target >= 1.3x), inertia differs by {100 * rel:.4f} % "
          f"(target <= 0.1 %)")


def np_extract_features(images, centroids, rf, m, p):
    """extract_features.m, one image at a time, im2col by strided view (numpy, float32)."""
    n, c, h, w = images.shape
    k = centroids.shape[0]
    pr, pc = h - rf + 1, w - rf + 1
    hr, hc = (pr + 1) // 2, (pc + 1) // 2
    cc = (centroids ** 2).sum(1)[None]
    out = np.zeros((n, 4 * k), np.float32)
    for i in range(n):
        win = np.lib.stride_tricks.sliding_window_view(images[i], (rf, rf), axis=(1, 2))
        patches = win.transpose(1, 2, 0, 3, 4).reshape(pr * pc, c * rf * rf)
        mu = patches.mean(1, keepdims=True)
        patches = (patches - mu) / np.sqrt(patches.var(1, ddof=1, keepdims=True) + 10)
        patches = (patches - m) @ p
        xx = (patches ** 2).sum(1, keepdims=True)
        z = np.sqrt(np.maximum(cc + xx - 2 * patches @ centroids.T, 0))
        act = np.maximum(z.mean(1, keepdims=True) - z, 0).reshape(pr, pc, k)
        out[i] = np.concatenate([act[:hr, :hc].sum((0, 1)), act[hr:, :hc].sum((0, 1)),
                                 act[:hr, hc:].sum((0, 1)), act[hr:, hc:].sum((0, 1))])
    return out


def bench_encode(scale):
    n, n_np, k = max(20, int(ENCODE_IMAGES * scale)), max(5, int(NUMPY_IMAGES * scale)), K
    x, images, (m, w) = whitened_patches(50_000)
    cents = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(2))[:k]].clone()
    imgs = images[:n].float()
    encode(imgs[:8], cents, RF, m, w)  # warm-up (allocations, thread pool)
    t = time.perf_counter()
    ours = encode(imgs, cents, RF, m, w)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    ref = np_extract_features(imgs[:n_np].numpy(), cents.numpy(), RF, m.numpy(), w.numpy())
    t_np = time.perf_counter() - t
    err = float(np.abs(ours[:n_np].numpy() - ref).max() / np.abs(ref).max())
    r_ours, r_np = n / t_ours, n_np / t_np
    print(f"triangle encoding, 32x32 images, k={k}: ours {n} images, numpy {n_np} images")
    print(f"  numpy im2col   {r_np:7.1f} images/s")
    print(f"  ours           {r_ours:7.1f} images/s  (target >= 500)")
    print(f"  speed-up {r_ours / r_np:.2f}x, max relative difference {err:.2e}")


def svm_features(n, d, k, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    means = torch.randn(k, 96, generator=torch.Generator().manual_seed(100)) * 0.35
    proj = torch.randn(96, d, generator=torch.Generator().manual_seed(101)) / 96 ** 0.5
    lat = means[y] + torch.randn(n, 96, generator=g)
    return torch.relu(lat @ proj + 0.5 * torch.randn(n, d, generator=g)) * 20, y


def bench_svm(scale):
    from sklearn.svm import LinearSVC
    m, d = max(200, int(SVM_TRAIN * scale)), max(64, int(SVM_DIM * scale))
    xtr, ytr = svm_features(m, d, SVM_CLASSES, 0)
    xte, yte = svm_features(int(SVM_TEST * max(scale, 0.25)), d, SVM_CLASSES, 1)
    st = Standardizer().fit(xtr)
    xtr, xte = st.transform(xtr), st.transform(xte)
    t = time.perf_counter()
    svm = L2SVM(C=SVM_C).fit(xtr, ytr)
    t_ours = time.perf_counter() - t
    acc_ours = float((svm.predict(xte) == yte).float().mean())
    t = time.perf_counter()
    sk = LinearSVC(C=SVM_C / m, loss="squared_hinge", dual=False, tol=1e-4, max_iter=1000)
    sk.fit(xtr.numpy(), ytr.numpy())
    t_sk = time.perf_counter() - t
    acc_sk = float((sk.predict(xte.numpy()) == yte.numpy()).mean())
    print(f"L2-SVM {m} x {d}, {SVM_CLASSES} classes, C={SVM_C:g} (LinearSVC C={SVM_C / m:g})")
    print(f"  LinearSVC      {t_sk:7.2f} s  test accuracy {100 * acc_sk:.2f} %")
    print(f"  ours (L-BFGS)  {t_ours:7.2f} s  test accuracy {100 * acc_ours:.2f} %  "
          f"({svm.info_.evaluations} evaluations)")
    print(f"  speed-up {t_sk / t_ours:.2f}x (target: <= 3 s), accuracy difference "
          f"{100 * (acc_ours - acc_sk):+.2f} points (target: within 0.5)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="shrink every size (quick runs)")
    ap.add_argument("--only", default="kmeans,encode,svm")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.only.split(","):
        {"kmeans": bench_kmeans, "encode": bench_encode, "svm": bench_svm}[name](args.scale)


if __name__ == "__main__":
    main()
