"""Coates k-means pipeline: numpy transcriptions of kmeans_demo.m / run_kmeans.m /
extract_features.m as oracles, plus properties (identity covariance, monotone objective)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np

import pytest
import torch
import torch.nn.functional as F

from luatorch_port import t7
from luatorch_port.util.errors import A2Error
from luatorch_port.kmeans import (CoatesKMeans, apply_zca, contrast_normalize, encode, fit_zca,
                                  pool_quadrants, quadrant_half, random_patches, resize_images,
                                  run_kmeans)
from luatorch_port.kmeans.whitening import CONTRAST_VAR_REG, ZCA_EPS


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _image_case(g, n_images, size, rf, n_sample, whiten=True):
    """Random 3-channel images and the contrast-normalised patch sample (and its ZCA, when
    ``whiten``) that the encoder tests share: ``(images, sample, mean, p)``."""
    images = torch.randint(0, 256, (n_images, 3, size, size), generator=g).float()
    sample = random_patches(images, n_sample, rf, generator=g)
    contrast_normalize(sample, out=sample)
    m, p = fit_zca(sample) if whiten else (None, None)
    return images, sample, m, p


def _patches(n=500, d=27, seed=0):
    return torch.rand(n, d, generator=_gen(seed), dtype=torch.float64).float() * 255


# ---- contrast normalisation and ZCA: numpy transcriptions of the MATLAB lines ----------

def np_contrast(p):
    # bsxfun(@rdivide, bsxfun(@minus, p, mean(p,2)), sqrt(var(p,[],2)+10))
    return (p - p.mean(1, keepdims=True)) / np.sqrt(p.var(1, ddof=1, keepdims=True) + 10)


def np_zca(p):
    # C = cov(p); M = mean(p); [V,D] = eig(C); P = V * diag(sqrt(1./(diag(D) + 0.1))) * V'
    c = np.cov(p, rowvar=False)
    m = p.mean(0)
    dv, v = np.linalg.eigh(c)
    return m, v @ np.diag(np.sqrt(1.0 / (dv + 0.1))) @ v.T


def test_constants_are_coates():
    assert (CONTRAST_VAR_REG, ZCA_EPS) == (10.0, 0.1)


def test_contrast_normalize_matches_matlab_transcription():
    p = _patches()
    expect = np_contrast(p.double().numpy())
    got = contrast_normalize(p)
    np.testing.assert_allclose(got.numpy(), expect, rtol=1e-5, atol=1e-5)
    q = p.clone()
    contrast_normalize(q, out=q)  # in place gives the same numbers
    assert torch.equal(q, got)


def test_zca_matches_matlab_transcription():
    p = contrast_normalize(_patches(2000, 27))
    m_np, p_np = np_zca(p.double().numpy())
    m, pm = fit_zca(p)
    np.testing.assert_allclose(m.numpy(), m_np, atol=1e-6)
    np.testing.assert_allclose(pm.numpy(), p_np, rtol=1e-4, atol=1e-4)
    white = apply_zca(p, m, pm)
    np.testing.assert_allclose(white.numpy(), (p.double().numpy() - m_np) @ p_np, atol=1e-3)


@pytest.mark.parametrize("eps", [1e-8, ZCA_EPS])
def test_whitened_covariance(eps):
    # Correlated data with eigenvalues >> eps: whitening gives cov = V diag(D/(D+eps)) Vᵀ,
    # the identity within eps/min(D).
    g = _gen(3)
    mix = torch.randn(12, 12, generator=g, dtype=torch.float64)
    x = (torch.randn(20000, 12, generator=g, dtype=torch.float64) @ mix * 5 + 3).float()
    m, p = fit_zca(x, eps=eps)
    w = apply_zca(x, m, p).double()
    cov = torch.cov(w.t())
    evals = torch.linalg.eigvalsh(torch.cov(x.double().t()))
    tol = eps / float(evals.min()) + 1e-3
    assert torch.allclose(cov, torch.eye(12, dtype=torch.float64), atol=tol)
    assert torch.allclose(w.mean(0), torch.zeros(12, dtype=torch.float64), atol=1e-3)


# ---- patches -------------------------------------------------------------------------

def test_random_patches_cycle_images_and_are_crops():
    n_img, size, rf = 7, 10, 3
    base = torch.arange(size * size, dtype=torch.uint8).view(1, 1, size, size)
    images = torch.cat([base + i for i in range(n_img)]).expand(n_img, 3, size, size).contiguous()
    images[:, 1] += 100  # channels differ: the channel order is checked too
    p = random_patches(images, 50, rf, generator=_gen())
    assert p.shape == (50, 3 * rf * rf)
    cube = p.view(50, 3, rf, rf)
    for i in range(50):
        owner = i % n_img
        top_left = int(cube[i, 0, 0, 0]) - owner
        r, c = divmod(top_left, size)
        expect = images[owner, :, r:r + rf, c:c + rf].float()
        assert torch.equal(cube[i], expect), i


def test_random_patches_resize_first_and_seeded():
    images = torch.randint(0, 256, (5, 3, 12, 12), dtype=torch.uint8, generator=_gen())
    a = random_patches(images, 40, 2, image_size=4, generator=_gen(5))
    b = random_patches(resize_images(images, 4), 40, 2, generator=_gen(5))
    assert torch.equal(a, b)


def test_resize_96_to_32_is_block_mean():
    images = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8, generator=_gen())
    got = resize_images(images, 32)
    expect = F.avg_pool2d(images.float(), 3)
    assert torch.allclose(got, expect, atol=1e-4)


@pytest.mark.parametrize("rf, size", [(0, 8), (9, 8)])
def test_random_patches_rejects_bad_rf(rf, size):
    with pytest.raises(A2Error, match="rf="):
        random_patches(torch.zeros(2, 3, size, size, dtype=torch.uint8), 4, rf)


# ---- k-means (run_kmeans.m) ------------------------------------------------------------

def _clustered(n=3000, d=8, centres=12, seed=1):
    g = _gen(seed)
    c = torch.randn(centres, d, generator=g) * 4
    return c[torch.randint(0, centres, (n,), generator=g)] + torch.randn(n, d, generator=g)


@pytest.mark.parametrize("init", ["randn", "patches"])
def test_kmeans_objective_never_increases(init):
    x = _clustered()
    r = run_kmeans(x, 20, 15, init=init, generator=_gen(2), batch_size=700)
    obj = np.array(r.objective + [r.inertia])
    assert len(r.objective) == 15
    assert np.all(np.diff(obj) <= 1e-6 * obj[:-1]), obj
    assert obj[-1] < obj[0]


def test_kmeans_matches_sklearn_lloyd_from_the_same_start():
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits
    x = _clustered(2000, 6, 10)
    init = x[torch.randperm(2000, generator=_gen(4))[:15]].clone()
    ours = run_kmeans(x, 15, 8, init=init, batch_size=512)
    with threadpool_limits(1):  # tiny problem: OpenMP threads only contend here
        sk = KMeans(15, init=init.numpy(), n_init=1, max_iter=8, tol=0,
                    algorithm="lloyd").fit(x.numpy())
    assert ours.inertia == pytest.approx(sk.inertia_, rel=1e-4)
    assert torch.allclose(ours.centroids, torch.from_numpy(sk.cluster_centers_), atol=1e-3)


def test_kmeans_chunk_size_does_not_change_the_result():
    x = _clustered(1000, 5, 8)
    a = run_kmeans(x, 10, 5, generator=_gen(9), batch_size=1000)
    b = run_kmeans(x, 10, 5, generator=_gen(9), batch_size=37)
    assert torch.allclose(a.centroids, b.centroids, atol=1e-5)


def test_kmeans_reseeds_empty_clusters_from_patches():
    x = _clustered(500, 4, 3)
    init = x[:6].clone()
    init[5] = 1e4  # far from every patch: empty in the first assignment
    r = run_kmeans(x, 6, 1, init=init, generator=_gen())
    assert r.reseeded == [1]
    assert (x == r.centroids[5]).all(1).any()  # moved onto a patch


def test_kmeans_is_deterministic_and_rejects_bad_sizes():
    x = _clustered(400, 4, 3)
    a = run_kmeans(x, 5, 3, generator=_gen(1)).centroids
    b = run_kmeans(x, 5, 3, generator=_gen(1)).centroids
    assert torch.equal(a, b)
    with pytest.raises(A2Error, match="n_patches=400 should be >= k=401"):
        run_kmeans(x, 401, 1)


def test_kmeans_worker_threads_give_the_one_thread_result(monkeypatch):
    # Small tasks so that two workers share the pass; partial sums are folded in task order,
    # so the result is bitwise the same whichever worker ran which task.
    from luatorch_port.kmeans import lloyd
    monkeypatch.setattr(lloyd, "TASK_ROWS", 256)
    x = _clustered(3000, 6, 10)
    one = run_kmeans(x, 12, 4, generator=_gen(3), batch_size=100)
    torch.set_num_threads(2)
    two = run_kmeans(x, 12, 4, generator=_gen(3), batch_size=100)
    assert torch.get_num_threads() == 2
    assert torch.equal(one.centroids, two.centroids)
    assert one.objective == two.objective and one.inertia == two.inertia


# ---- encoder (extract_features.m) --------------------------------------------------------

@pytest.mark.parametrize("n, half", [(27, 14), (26, 13), (25, 13), (3, 2), (2, 1), (1, 1),
                                     (91, 46), (90, 45)])
def test_quadrant_split_is_matlab_round(n, half):
    assert quadrant_half(n) == half


def np_extract_features(images, centroids, rf, m, p, encoder="triangle", stride=1):
    """A line-by-line transcription of extract_features.m (im2col per image), torch layout;
    ``stride`` > 1 keeps every stride-th patch position (the report's grid)."""
    n, c, h, w = images.shape
    k = centroids.shape[0]
    out = np.zeros((n, 4 * k))
    for i in range(n):
        rs, cs = range(0, h - rf + 1, stride), range(0, w - rf + 1, stride)
        pr, pc = len(rs), len(cs)
        rows = []
        for r in rs:
            for col in cs:
                rows.append(images[i, :, r:r + rf, col:col + rf].reshape(-1))
        patches = np.array(rows, dtype=np.float64)
        patches = np_contrast(patches)
        if p is not None:
            patches = (patches - m) @ p
        xx = (patches ** 2).sum(1, keepdims=True)
        cc = (centroids ** 2).sum(1)[None]
        z = np.sqrt(np.maximum(cc + xx - 2 * patches @ centroids.T, 0))
        if encoder == "triangle":
            act = np.maximum(z.mean(1, keepdims=True) - z, 0)
        else:
            act = np.zeros_like(z)
            act[np.arange(len(z)), z.argmin(1)] = 1
        act = act.reshape(pr, pc, k)
        hr, hc = int(np.floor(pr / 2 + 0.5)), int(np.floor(pc / 2 + 0.5))  # MATLAB round
        q1 = act[:hr, :hc].sum((0, 1))
        q2 = act[hr:, :hc].sum((0, 1))
        q3 = act[:hr, hc:].sum((0, 1))
        q4 = act[hr:, hc:].sum((0, 1))
        out[i] = np.concatenate([q1, q2, q3, q4])
    return out


@pytest.mark.parametrize("encoder, whiten, size, chunk_rows, stride", [
    ("triangle", True, 9, 4096, 1),     # 6x6 positions
    ("triangle", False, 8, 50, 1),      # 5x5, odd split; one image per chunk
    ("hard", True, 10, 4096, 1),
    ("triangle", True, 14, 4096, 3),    # positions 0, 3, 6, 9: a 4x4 grid, as the report's
    ("hard", False, 13, 30, 4),         # 0, 4, 8: 3x3
])
def test_encode_matches_extract_features_transcription(encoder, whiten, size, chunk_rows, stride):
    rf, k = 4, 6
    g = _gen(7)
    images, sample, m, p = _image_case(g, 3, size, rf, 400, whiten)
    cents = torch.randn(k, 3 * rf * rf, generator=g)
    got = encode(images, cents, rf, m, p, encoder=encoder, chunk_rows=chunk_rows, stride=stride,
                 precision="fp32")
    expect = np_extract_features(images.double().numpy(), cents.double().numpy(), rf,
                                 None if m is None else m.double().numpy(),
                                 None if p is None else p.double().numpy(), encoder, stride)
    assert got.shape == (3, 4 * k)
    np.testing.assert_allclose(got.numpy(), expect, rtol=2e-3, atol=2e-3)


def test_encode_worker_threads_give_the_one_thread_result():
    g = _gen(8)
    images = torch.randint(0, 256, (5, 3, 9, 9), generator=g).float()
    cents, m = torch.randn(7, 48, generator=g), torch.randn(48, generator=g)
    p = torch.randn(48, 48, generator=g) * 0.1
    for encoder, precision in itertools.product(("triangle", "hard"), ("fp32", "bf16")):
        one = encode(images, cents, 4, m, p, encoder=encoder, chunk_rows=36, precision=precision)
        torch.set_num_threads(2)
        two = encode(images, cents, 4, m, p, encoder=encoder, chunk_rows=36, precision=precision)
        assert torch.get_num_threads() == 2   # the workers' one-thread OpenMP limit stays theirs
        torch.set_num_threads(1)
        assert torch.equal(one, two)


def test_encode_rounding_negative_distances_give_zero_not_nan():
    # Centroids equal to some of the images' own whitened patches (computed as the encoder
    # does, in float32): their distance² rounds to tiny values of either sign, and the rows
    # holding a negative one take the encoder's recomputation path.
    rf = 4
    g = _gen(5)
    images, sample, m, p = _image_case(g, 4, 8, rf, 400)
    win = np.lib.stride_tricks.sliding_window_view(images.numpy(), (rf, rf), axis=(2, 3))
    x = win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, 48)
    x = x - x.mean(1, keepdims=True)
    x /= np.sqrt(np.einsum("ij,ij->i", x, x) / 47 + CONTRAST_VAR_REG)[:, None]
    xw = x @ p.numpy()
    xw += -(m.numpy() @ p.numpy())
    cents = xw[::2].copy()
    xa = np.concatenate([xw, np.ones((len(xw), 1), np.float32),
                         np.einsum("ij,ij->i", xw, xw)[:, None]], axis=1)
    cat = np.concatenate([-2 * cents.T, (cents.astype(np.float64) ** 2).sum(1)[None].astype(np.float32),
                          np.ones((1, len(cents)), np.float32)])
    assert ((xa @ cat) < 0).any()     # the case is exercised
    got = encode(images, torch.from_numpy(cents), rf, m, p, precision="fp32")
    assert torch.isfinite(got).all()
    expect = np_extract_features(images.double().numpy(), cents.astype(np.float64), rf,
                                 m.double().numpy(), p.double().numpy())
    np.testing.assert_allclose(got.numpy(), expect, rtol=2e-3, atol=2e-3)


def test_pool_quadrants_layout():
    act = torch.arange(1 * 3 * 3 * 2, dtype=torch.float32).view(1, 3, 3, 2)
    got = pool_quadrants(act)[0]
    a = act[0]
    expect = torch.cat([a[:2, :2].sum((0, 1)), a[2:, :2].sum((0, 1)),
                        a[:2, 2:].sum((0, 1)), a[2:, 2:].sum((0, 1))])
    assert torch.equal(got, expect)


# ---- the estimator and centroids.t7 --------------------------------------------------------

@pytest.fixture(scope="module")
def fitted():
    images = torch.randint(0, 256, (30, 3, 16, 16), dtype=torch.uint8, generator=_gen(11))
    model = CoatesKMeans(k=8, rf=4, n_patches=600, iterations=4, image_size=12)
    return model.fit(images, generator=_gen(12)), images


def test_fit_transform_shapes(fitted):
    model, images = fitted
    feats = model.transform(images[:5])
    assert feats.shape == (5, 4 * 8)
    assert (feats >= 0).all() and feats.sum() > 0
    assert len(model.objective_) == 4


def test_centroids_t7_round_trip(fitted, tmp_path):
    model, images = fitted
    path = tmp_path / "centroids.t7"
    model.save(path)
    table = t7.load(path)
    assert table["centroids"].shape == (8, 48) and table["P"].shape == (48, 48)
    assert (table["rfSize"], table["imageSize"], table["channels"]) == (4, 12, 3)
    back = CoatesKMeans.load(path)
    assert torch.equal(back.transform(images[:4]), model.transform(images[:4]))


@pytest.mark.parametrize("drop, message", [("centroids", "missing field 'centroids'"),
                                           ("P", "missing field 'P'"),
                                           ("rfSize", "missing field 'rfSize'")])
def test_centroids_t7_errors_name_the_field(fitted, tmp_path, drop, message):
    table = fitted[0].to_t7()
    del table[drop]
    path = tmp_path / "bad.t7"
    t7.save(table, path)
    with pytest.raises(A2Error, match=message):
        CoatesKMeans.load(path)


# ---- the torch path used on CUDA (checked on CPU here) and CUDA itself ----------------------

@pytest.mark.parametrize("encoder", ["triangle", "hard"])
def test_torch_encoder_path_matches_cpu_path(encoder):
    from luatorch_port.kmeans.encoder import _Encoder
    g = _gen(21)
    imgs = torch.rand(4, 3, 10, 10, generator=g) * 255
    cents, m = torch.randn(7, 48, generator=g), torch.randn(48, generator=g)
    p = torch.randn(48, 48, generator=g) * 0.1
    expect = encode(imgs, cents, 4, m, p, encoder=encoder, precision="fp32")
    got = _Encoder(cents, m, p, 4, encoder, 4 * 49, "fp32").encode(imgs)
    assert torch.allclose(got, expect, rtol=1e-4, atol=1e-4)
    expect = encode(imgs, cents, 4, m, p, encoder=encoder, stride=3, precision="fp32")
    got = _Encoder(cents, m, p, 4, encoder, 4 * 9, precision="fp32", stride=3).encode(imgs)
    assert torch.allclose(got, expect, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = _clustered(3000, 8, 12)
    init = x[:20].clone()
    cpu = run_kmeans(x, 20, 5, init=init)
    gpu = run_kmeans(x.cuda(), 20, 5, init=init)
    assert gpu.inertia == pytest.approx(cpu.inertia, rel=1e-4)
    imgs = torch.rand(3, 3, 12, 12, generator=_gen()) * 255
    cents = torch.randn(9, 27, generator=_gen())
    assert torch.allclose(encode(imgs, cents.cuda(), 3, precision="fp32"),
                          encode(imgs, cents, 3, precision="fp32"), rtol=1e-3, atol=1e-3)


def test_worker_threads_run_torch_on_one_openmp_thread():
    """The pools' initializer limits torch's OpenMP team in that worker only; without it a
    worker thread's torch ops would use as many threads as the main thread."""
    from concurrent.futures import ThreadPoolExecutor

    from luatorch_port.util.threads import single_threaded_openmp

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with ThreadPoolExecutor(1) as pool:
            plain_worker = pool.submit(torch.get_num_threads).result()
        with ThreadPoolExecutor(1, initializer=single_threaded_openmp) as pool:
            limited_worker = pool.submit(torch.get_num_threads).result()
        assert plain_worker == 2
        assert limited_worker == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("encoder", ["triangle", "hard"])
def test_bf16_encoding_is_close_to_fp32(encoder):
    """bf16 GEMM inputs and (with the C passes) outputs, fp32 epilogue: triangle features
    within 0.1 % of fp32's; the hard encoding still counts every patch once (near-ties may
    pick another centroid)."""
    g = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (6, 3, 16, 16), generator=g).float()
    cents = torch.randn(64, 108, generator=g)
    p = torch.eye(108) + 0.05 * torch.randn(108, 108, generator=g)
    m = torch.randn(108, generator=g) * 0.1
    a = encode(images, cents, 6, m, p, encoder=encoder, precision="fp32")
    b = encode(images, cents, 6, m, p, encoder=encoder, precision="bf16")
    if encoder == "triangle":
        assert float((a - b).norm() / a.norm()) < 1e-3
    else:
        assert torch.equal(a.sum(1), b.sum(1)) and float((a != b).float().mean()) < 0.05
    assert not torch.equal(a, b)          # the bf16 path did run


def _kernels_or_skip():
    from luatorch_port.kmeans.fused import kernels
    fused = kernels()
    if fused is None:
        pytest.skip("no C compiler builds the bf16 encoder's C passes here")
    return fused


def test_loading_the_fused_kernels_keeps_subnormals():
    """The compiled library must not switch the process to flush-to-zero (as a library linked
    with -ffast-math does through crtfastmath.o): a fresh process loads it, then divides."""
    code = ("import numpy as np, torch; from luatorch_port.kmeans.fused import kernels; "
            "print(kernels() is not None, float((np.float32(1e-38) / np.float32(1e3))), "
            "float(torch.tensor(1e-38) / 1e3))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    built, by_numpy, by_torch = done.stdout.split()
    if built != "True":
        pytest.skip("no C compiler builds the bf16 encoder's C passes here")
    assert float(by_numpy) > 0 and float(by_torch) > 0


@pytest.mark.parametrize("size, rf, stride", [(12, 6, 1), (9, 4, 1), (14, 4, 3), (10, 10, 1)])
def test_fused_contrast_patches_are_the_torch_patches_in_bf16(size, rf, stride):
    from luatorch_port.kmeans.patches import image_patches
    patches_fn = _kernels_or_skip()[0]
    images = torch.randint(0, 256, (3, 3, size, size), generator=_gen(31)).float()
    expect = image_patches(images.double(), rf, stride).reshape(-1, 3 * rf * rf)
    expect = contrast_normalize(expect.clone())
    got = torch.empty(expect.shape, dtype=torch.bfloat16)
    scratch = np.empty(3 * rf * rf, np.float32)
    patches_fn(images.numpy().ctypes.data, 3, 3, size, size, rf, stride, CONTRAST_VAR_REG,
               got.data_ptr(), scratch.ctypes.data)
    # float32 sums against float64: at most one bf16 step apart (2^-8 relative)
    assert torch.allclose(got.double(), expect, rtol=2 ** -8, atol=1e-6)
    assert float((got.double() - expect.bfloat16().double()).abs().gt(0).float().mean()) < 0.02


@pytest.mark.parametrize("whiten, size, chunk_rows, stride", [
    (True, 12, 4096, 1), (False, 11, 40, 1), (True, 14, 4096, 3), (True, 9, 16, 2)])
def test_fused_bf16_triangle_matches_extract_features_transcription(whiten, size, chunk_rows, stride):
    _kernels_or_skip()
    rf, k = 4, 24
    g = _gen(32)
    images, sample, m, p = _image_case(g, 4, size, rf, 600, whiten)
    cents = sample[torch.randperm(600, generator=g)[:k]].clone()
    got = encode(images, cents, rf, m, p, chunk_rows=chunk_rows, stride=stride, precision="bf16")
    expect = torch.from_numpy(np_extract_features(
        images.double().numpy(), cents.double().numpy(), rf,
        None if m is None else m.double().numpy(), None if p is None else p.double().numpy(),
        "triangle", stride)).float()
    assert got.shape == expect.shape
    assert float((got - expect).norm() / expect.norm()) < 1e-2     # k = 1600 on photographs: ~1e-3


@pytest.mark.parametrize("encoder", ["triangle", "hard"])
def test_fused_blocks_of_rows_across_images_give_the_whole_chunk_result(encoder, monkeypatch):
    import luatorch_port.kmeans.encoder as encoder_module
    _kernels_or_skip()
    g = _gen(34)
    images = torch.randint(0, 256, (5, 3, 11, 11), generator=g).float()      # 64 rows each
    cents = torch.randn(20, 48, generator=g)
    m, p = torch.randn(48, generator=g) * 0.1, torch.eye(48) + 0.05 * torch.randn(48, 48, generator=g)
    whole = encode(images, cents, 4, m, p, encoder=encoder, precision="bf16")
    width = 80                                   # k + d = 68, padded to a multiple of 16
    monkeypatch.setattr(encoder_module, "GEMM_BLOCK_BYTES", 2 * width * 7)   # 7-row blocks
    blocks = encode(images, cents, 4, m, p, encoder=encoder, precision="bf16")
    assert torch.allclose(blocks, whole, rtol=1e-5, atol=1e-5)
    if encoder == "hard":
        assert torch.equal(blocks.view(5, 4, 20).sum(2), whole.view(5, 4, 20).sum(2))


def test_bf16_without_the_c_passes_falls_back_to_torch(monkeypatch):
    import luatorch_port.kmeans.encoder as encoder_module
    _kernels_or_skip()
    g = _gen(33)
    images = torch.randint(0, 256, (3, 3, 12, 12), generator=g).float()
    cents = torch.randn(32, 108, generator=g)
    a = encode(images, cents, 6, precision="fp32")
    fused = encode(images, cents, 6, precision="bf16")
    strided = images.contiguous(memory_format=torch.channels_last).to(torch.uint8)
    assert torch.equal(encode(strided, cents, 6, precision="bf16"), fused)
    monkeypatch.setattr(encoder_module, "kernels", lambda: None)
    plain = encode(images, cents, 6, precision="bf16")
    assert not torch.equal(fused, plain)
    for b in (fused, plain):
        assert float((a - b).norm() / a.norm()) < 2e-3


def test_fused_kernels_build_once_into_the_cache_and_need_a_compiler(tmp_path, monkeypatch):
    from luatorch_port.kmeans import fused
    _kernels_or_skip()
    monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path))
    fused.kernels.cache_clear()
    try:
        assert fused.kernels() is not None
        built = list(tmp_path.glob("triangle-*.so"))
        assert len(built) == 1
        stamp = built[0].stat().st_mtime_ns
        fused.kernels.cache_clear()
        assert fused.kernels() is not None
        assert built[0].stat().st_mtime_ns == stamp          # reused, not rebuilt
        monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
        monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path / "empty"))
        fused.kernels.cache_clear()
        assert fused.kernels() is None
        monkeypatch.setenv("CC", "false")                 # a compiler that fails
        fused.kernels.cache_clear()
        assert fused.kernels() is None
        assert list((tmp_path / "empty").iterdir()) == []     # nothing half-written
        monkeypatch.delenv("CC")
        monkeypatch.setattr(fused, "SOURCE", tmp_path / "missing.c")   # installed without it
        fused.kernels.cache_clear()
        assert fused.kernels() is None
        monkeypatch.setenv("A2_NO_FUSED", "1")
        fused.kernels.cache_clear()
        assert fused.kernels() is None
    finally:
        fused.kernels.cache_clear()


def test_encode_rejects_unknown_precision():
    with pytest.raises(A2Error, match="precision must be one of"):
        encode(torch.zeros(1, 3, 8, 8), torch.zeros(4, 108), 6, precision="fp16")


# ---- the report's preset: 22x22 patches at stride 24 ---------------------------------------

def test_presets():
    from luatorch_port.kmeans.coates import (COATES_ITERATIONS, COATES_K, COATES_PATCHES,
                                             COATES_RF, PRESETS)
    from luatorch_port.kmeans.patches import COATES_STL_SIZE
    assert PRESETS["coates"] == {"k": COATES_K, "rf": COATES_RF, "stride": 1,
                                 "n_patches": COATES_PATCHES, "iterations": COATES_ITERATIONS,
                                 "image_size": COATES_STL_SIZE, "sampling": "random",
                                 "limit": None}
    r = PRESETS["report"]
    assert (r["k"], r["rf"], r["stride"], r["image_size"], r["sampling"]) == (1600, 22, 24, 96, "grid")
    # a 4x4 grid with a 2-pixel gap on 96x96 images: 16 patches, all of 20,000 images
    assert len(range(0, 96 - r["rf"] + 1, r["stride"])) == 4 and r["stride"] - r["rf"] == 2
    assert (r["limit"], r["n_patches"]) == (20000, 20000 * 16)


def test_grid_patches_are_the_grid_crops():
    from luatorch_port.kmeans.patches import grid_patches
    g = _gen(30)
    images = torch.randint(0, 256, (3, 3, 96, 96), generator=g, dtype=torch.uint8)
    got = grid_patches(images, 22, 24)
    assert got.shape == (3 * 16, 3 * 22 * 22)
    for i, (r, c) in enumerate([(r, c) for r in (0, 24, 48, 72) for c in (0, 24, 48, 72)]):
        assert torch.equal(got[16 + i], images[1, :, r:r + 22, c:c + 22].float().reshape(-1))
    sub = grid_patches(images, 22, 24, n_patches=10, generator=_gen(1))
    assert sub.shape == (10, 1452)
    # every kept row is one of the grid's rows, no row twice
    idx = [int((got == row).all(1).nonzero()[0]) for row in sub]
    assert len(set(idx)) == 10 and idx == sorted(idx)


def test_grid_sampling_fit_and_stride_round_trip(tmp_path):
    g = _gen(31)
    images = torch.randint(0, 256, (12, 3, 32, 32), generator=g, dtype=torch.uint8)
    model = CoatesKMeans(k=5, rf=7, stride=8, sampling="grid", n_patches=40, iterations=2,
                         image_size=None).fit(images, generator=g)
    assert model.n_patches_used_ == 40          # of 12 x 16 grid patches
    feats = model.transform(images)
    assert feats.shape == (12, 20)
    model.save(tmp_path / "c.t7")
    back = CoatesKMeans.load(tmp_path / "c.t7")
    assert (back.stride, back.sampling) == (8, "grid")
    assert torch.equal(back.transform(images), feats)
    # hard encoding of a 4x4 grid: each quadrant counts its 2x2 = 4 patches
    back.encoder = "hard"
    assert torch.equal(back.transform(images).view(12, 4, 5).sum(2), torch.full((12, 4), 4.0))


def test_choose_images_is_random_and_seeded():
    from luatorch_port.kmeans.run import choose_images
    a = choose_images(1000, 20, _gen(4))
    assert torch.equal(a, choose_images(1000, 20, _gen(4)))
    assert a.numel() == 20 and torch.equal(a, a.sort().values) and len(set(a.tolist())) == 20
    assert not torch.equal(a, torch.arange(20)) and int(a.max()) > 500
    assert choose_images(10, 20, _gen(4)) is None and choose_images(10, None) is None


def _exact_distances(x, c, labels):
    """float64 ‖x − c_label‖² per row."""
    return (x.double() - c.double()[labels]).pow(2).sum(1)


def test_bf16_assignment_differs_from_fp32_only_on_near_ties():
    """bf16 argmax: where its label differs from fp32's, the two centroids are within the bf16
    rounding of the scores; the inertia it returns (from the cluster sums) is the exact
    inertia of its own labels."""
    from luatorch_port.kmeans.lloyd import _Assigner
    x = _clustered(6000, 20, 27, seed=9)
    c = x[torch.randperm(6000, generator=_gen(3))[:40]] + 0.01
    a32, a16 = _Assigner(x, 512, "fp32"), _Assigner(x, 512, "bf16")
    sums = torch.empty(40, 21)
    i32, i16 = a32.assign(c), a16.assign(c, sums)
    d32, d16 = _exact_distances(x, c, a32.labels), _exact_distances(x, c, a16.labels)
    assert 0.9 < (a32.labels == a16.labels).double().mean() < 1    # near ties do occur here
    # ‖x − c‖² = ‖x‖² − 2·score; a bf16 score errs by at most 2^-8·(‖[x, 1]‖‖[c, −½‖c‖²]‖ + |score|)
    xn = (x.double().pow(2).sum(1) + 1).sqrt()
    cn = (c.double().pow(2).sum(1) + (0.5 * c.double().pow(2).sum(1)) ** 2).sqrt()

    def score(lab):
        return (x.double() * c.double()[lab]).sum(1) - 0.5 * c.double()[lab].pow(2).sum(1)

    bound = 2 * 2.0 ** -8 * (xn * (cn[a32.labels] + cn[a16.labels])
                             + score(a32.labels).abs() + score(a16.labels).abs())
    assert torch.all(d16 - d32 <= bound + 1e-9)
    assert i16 == pytest.approx(float(d16.sum()), rel=1e-6)
    # fp32's labels are the nearest; these clusters' large scores round coarsely in bf16
    assert i32 <= i16 * (1 + 1e-7) and i16 == pytest.approx(i32, rel=1e-3)
    assert torch.equal(sums[:, 20], torch.bincount(a16.labels, minlength=40).float())
    assert torch.allclose(sums[:, :20], torch.zeros(40, 20).index_add_(0, a16.labels, x), atol=1e-3)
    with pytest.raises(A2Error, match="precision must be one of"):
        _Assigner(x, 512, "fp16")


def test_bf16_rows_without_a_positive_score_are_scored_in_fp32():
    """The int16 reading of bf16 scores orders positive scores only: a row whose scores are
    all negative (far centroids) gets fp32's label."""
    from luatorch_port.kmeans.lloyd import _Assigner
    x = _clustered(3000, 12, 10, seed=4)
    far = torch.randn(16, 12, generator=_gen(5)) * 40        # x·c − ½‖c‖² < 0 for every pair
    near = x[:16] + 0.1
    for c, all_redone in ((far, True), (torch.cat([far, near]), False)):
        a32, a16 = _Assigner(x, 256, "fp32"), _Assigner(x, 256, "bf16")
        a32.assign(c), a16.assign(c)
        if all_redone:
            assert a16.rescored == 3000 and torch.equal(a16.labels, a32.labels)
        else:
            assert a16.rescored < 3000
            assert (a16.labels == a32.labels).double().mean() > 0.95


def test_bf16_kmeans_inertia_close_to_fp32():
    """Correlated Gaussian data (no discrete optima to jump between), Coates' start: the paths
    part, the inertia stays close. (The 0.01 % criterion is measured at Coates' scale on
    photographs: benchmarks/bench_kmeans.py --only kmeans.)"""
    g = _gen(6)
    x = torch.randn(20000, 27, generator=g) @ torch.randn(27, 27, generator=g) / 27 ** 0.5
    r32 = run_kmeans(x, 32, 10, generator=_gen(6))
    r16 = run_kmeans(x, 32, 10, generator=_gen(6), precision="bf16")
    assert r16.inertia == pytest.approx(r32.inertia, rel=1e-3)
    assert len(r16.rescored) == 11 and r32.rescored == []
    assert set(r16.seconds) == {"setup", "iterations", "final"}
    assert int(r16.counts.sum()) == 20000


def test_apply_zca_in_place_matches_the_copy():
    p = contrast_normalize(_patches(3000, 27, seed=5))
    m, w = fit_zca(p)
    want = apply_zca(p, m, w)
    got = apply_zca(p, m, w, out=p)
    assert got is p and torch.allclose(got, want, atol=1e-5)
