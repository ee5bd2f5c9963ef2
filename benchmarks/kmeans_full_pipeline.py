"""Time the full default k-means pipeline (`a2 kmeans fit` + `a2 kmeans eval`) at course size.

Builds (once) a synthetic set in the exact course layout and sizes: train.t7b 4,000 and
test.t7b 8,000 labelled 3x96x96 images, extra.t7b 20,000 unlabelled ones (the report drew
its patches from 20,000 unlabelled images). The images are the embedded digits sample
recoloured with different seeds, so digits recur across splits in other colours: the
accuracy is optimistic, the timing is what this measures. Then runs the two commands with
their defaults (k 1600, 400,000 patches, 50 iterations, 32x32, C 100) and prints the time
of each. Not part of `make bench` (minutes of work):

    python benchmarks/kmeans_full_pipeline.py [--dir bench-out/kmeans-full] [--stages] [--sklearn]

``--stages`` runs the same library calls in this process instead of the two commands and
prints the split (load, patches, whitening, k-means, encoding, SVM); ``--sklearn`` then
also times a straightforward scikit-learn transcription of the k-means, encoding and SVM
stages on the same whitened patches and images (sklearn ``KMeans(algorithm="lloyd")`` from
the same start, the numpy im2col ``extract_features.m`` of ``bench_kmeans.py``, and
``LinearSVC(loss="squared_hinge", C=100/M)`` on the same standardised features).
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


def stages(d, with_sklearn):
    """The pipeline's library calls in this process, each timed (CoatesKMeans.fit/evaluate)."""
    import numpy as np

    from luatorch_port.data import load_split
    from luatorch_port.kmeans import (CoatesKMeans, apply_zca, contrast_normalize, fit_classifier,
                                      fit_zca, random_patches, run_kmeans)
    from luatorch_port.kmeans.svm import accuracy

    sec, t_all = {}, time.perf_counter()

    def lap(name, t):
        sec[name] = sec.get(name, 0.0) + time.perf_counter() - t
        print(f"  {name:10s} {sec[name]:7.1f} s", flush=True)
        return time.perf_counter()

    gen = torch.Generator().manual_seed(1)
    model = CoatesKMeans()
    t = time.perf_counter()
    extra = load_split(os.path.join(d, "extra.t7b"))
    train = load_split(os.path.join(d, "train.t7b"), expect="labelled")
    test = load_split(os.path.join(d, "test.t7b"))
    t = lap("load", t)
    patches = random_patches(extra.images, model.n_patches, model.rf, model.image_size,
                             generator=gen)
    t = lap("patches", t)
    contrast_normalize(patches, out=patches)
    mean, zca = fit_zca(patches)
    patches = apply_zca(patches, mean, zca)
    t = lap("whitening", t)
    start = torch.randn(model.k, patches.shape[1], generator=gen) * 0.1   # run_kmeans.m's start
    km = run_kmeans(patches, model.k, model.iterations, init=start, generator=gen)
    t = lap("k-means", t)
    model.centroids_, model.zca_mean_, model.zca_matrix_ = km.centroids, mean, zca
    model.channels_ = extra.images.shape[1]
    train_x = model.transform(train.images)
    test_x = model.transform(test.images)
    t = lap("encoding", t)
    clf = fit_classifier(train_x, train.labels, n_classes=len(train.classes))
    t = lap("svm", t)
    train_acc = accuracy(clf.predict(train_x), train.labels)
    test_acc = accuracy(clf.predict(test_x), test.labels)
    total = time.perf_counter() - t_all
    print(f"ours: total {total:.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in sec.items())}); "
          f"SVM {clf.svm.info_.evaluations} evaluations; train accuracy {100 * train_acc:.2f} %, "
          f"test accuracy {100 * test_acc:.2f} %", flush=True)
    if not with_sklearn:
        return
    from sklearn.cluster import KMeans
    from sklearn.svm import LinearSVC

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_kmeans import np_extract_features

    sk = {}
    t = time.perf_counter()
    skm = KMeans(model.k, init=start.numpy(), n_init=1, max_iter=model.iterations, tol=0.0,
                 algorithm="lloyd").fit(patches.numpy())
    sk["k-means"] = time.perf_counter() - t
    print(f"  sklearn k-means {sk['k-means']:.1f} s (inertia {skm.inertia_:.6g}, ours "
          f"{km.inertia:.6g})", flush=True)
    from luatorch_port.kmeans import resize_images

    cents, m_np, p_np = model.centroids_.numpy(), mean.numpy(), zca.numpy()
    t = time.perf_counter()
    tr_np = np_extract_features(resize_images(train.images, 32).float().numpy(), cents, model.rf,
                                m_np, p_np)
    te_np = np_extract_features(resize_images(test.images, 32).float().numpy(), cents, model.rf,
                                m_np, p_np)
    sk["encoding"] = time.perf_counter() - t
    print(f"  numpy encoding {sk['encoding']:.1f} s", flush=True)
    t = time.perf_counter()
    mu, sd = tr_np.mean(0), np.sqrt(tr_np.var(0, ddof=1) + 0.01)
    lsvc = LinearSVC(C=100.0 / len(tr_np), loss="squared_hinge", dual=True, tol=1e-4,
                     max_iter=1000).fit((tr_np - mu) / sd, train.labels.numpy())
    sk["svm"] = time.perf_counter() - t
    sk_acc = float((lsvc.predict((te_np - mu) / sd) == test.labels.numpy()).mean())
    print(f"  LinearSVC {sk['svm']:.1f} s, test accuracy {100 * sk_acc:.2f} %", flush=True)
    sk_total = sum(sk.values()) + sec["load"] + sec["patches"] + sec["whitening"]
    print(f"sklearn transcription: total {sk_total:.1f} s (load, patches and whitening shared: "
          f"{sec['load'] + sec['patches'] + sec['whitening']:.1f} s); ours {total:.1f} s; "
          f"speed-up {sk_total / total:.2f}x", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join("bench-out", "kmeans-full"))
    ap.add_argument("--stages", action="store_true",
                    help="time each stage in this process instead of the two commands")
    ap.add_argument("--sklearn", action="store_true",
                    help="with --stages: also time a scikit-learn transcription")
    args = ap.parse_args(argv)
    d = args.dir
    if not all(os.path.exists(os.path.join(d, f"{s}.t7b")) for s in SIZES):
        build(d)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    if args.stages:
        stages(d, args.sklearn)
        return
    cents = os.path.join(d, "centroids.t7")
    t_fit = run(["kmeans", "fit", "--data", os.path.join(d, "extra.t7b"), "--out", cents, "--quiet"])
    t_eval = run(["kmeans", "eval", "--centroids", cents, "--train", os.path.join(d, "train.t7b"),
                  "--test", os.path.join(d, "test.t7b"), "--predictions",
                  os.path.join(d, "predictions.csv"), "--quiet"])
    fit_rec = json.load(open(os.path.join(d, "centroids.fit.run.json")))
    eval_rec = json.load(open(os.path.join(d, "centroids.eval.run.json")))
    print(f"a2 kmeans fit:  {t_fit:6.1f} s wall (load {fit_rec['results']['load_seconds']:.1f} s)")
    print(f"a2 kmeans eval: {t_eval:6.1f} s wall (stages {eval_rec['results']['stage_seconds']}, "
          f"SVM {eval_rec['results']['svm_evaluations']} evaluations)")
    print(f"total {t_fit + t_eval:.1f} s; train accuracy "
          f"{100 * eval_rec['results']['train_accuracy']:.2f} %, test accuracy "
          f"{100 * eval_rec['results']['test_accuracy']:.2f} %")


if __name__ == "__main__":
    main()
