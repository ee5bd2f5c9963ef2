"""Exact-gradient t-SNE: gradient against autograd, affinities against their definition and
scikit-learn's, the embedding against scikit-learn's Barnes-Hut on the same input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from luatorch_port.visualize import tsne, tsne_exact
from luatorch_port.visualize.pca import pca
from luatorch_port.util.errors import A2Error


def _blobs(n=200, d=20, k=5, seed=0, spread=6.0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g, dtype=torch.float64) * spread
    labels = torch.arange(n) % k
    return centres[labels] + torch.randn(n, d, generator=g, dtype=torch.float64), labels


@pytest.mark.parametrize("exaggeration", [1.0, 12.0])
def test_gradient_matches_autograd(exaggeration):
    x, _ = _blobs(n=60)
    p = tsne_exact.joint_probabilities(x, perplexity=10.0)
    y = torch.randn(60, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grad, error = tsne_exact._Gradient(p)(y.float(), exaggeration, with_error=True)

    # sklearn's gradient is that of −Σ eP log w + log Σ w (KL(P‖Q) when e = 1)
    yy = y.clone().requires_grad_(True)
    w = 1.0 / (1.0 + torch.cdist(yy, yy).pow(2))
    w = w * (1 - torch.eye(60, dtype=torch.float64))
    loss = -(exaggeration * p * torch.log(w + torch.eye(60, dtype=torch.float64))).sum() + torch.log(w.sum())
    (want,) = torch.autograd.grad(loss, yy)
    torch.testing.assert_close(grad.double(), want, rtol=2e-4, atol=1e-6)
    if exaggeration == 1.0:
        assert error == pytest.approx(tsne_exact.kl_divergence(p, y), rel=1e-4)


def test_conditionals_reach_the_perplexity():
    x, _ = _blobs(n=150)
    d2, idx = tsne_exact.nearest_neighbours(x, 91)
    assert not (idx == torch.arange(150)[:, None]).any()          # a point is not its own neighbour
    assert bool((d2[:, 1:] >= d2[:, :-1]).all())                   # nearest first
    brute = torch.cdist(x, x).pow(2) + torch.diag(torch.full((150,), math.inf, dtype=torch.float64))
    torch.testing.assert_close(d2[:, 0], brute.min(1).values)
    cond = tsne_exact.conditional_probabilities(d2, 30.0)
    torch.testing.assert_close(cond.sum(1), torch.ones(150, dtype=torch.float64))
    entropy = -(cond * torch.log(cond.clamp_min(1e-300))).sum(1)
    torch.testing.assert_close(torch.exp(entropy), torch.full((150,), 30.0, dtype=torch.float64), rtol=1e-4,
                               atol=0)


def test_joint_probabilities_match_sklearn():
    nn_mod = pytest.importorskip("sklearn.neighbors")
    try:
        from sklearn.manifold._t_sne import _joint_probabilities_nn
    except ImportError:                                   # private API moved: nothing to compare with
        pytest.skip("sklearn.manifold._t_sne._joint_probabilities_nn is not available")
    x, _ = _blobs(n=180)
    p = tsne_exact.joint_probabilities(x, 30.0)
    graph = nn_mod.NearestNeighbors(n_neighbors=91).fit(x.numpy()).kneighbors_graph(mode="distance")
    graph.data **= 2
    want = _joint_probabilities_nn(graph, 30.0, 0).toarray()
    assert float(p.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(p, torch.from_numpy(want).double(), rtol=1e-5, atol=1e-9)


@pytest.mark.slow
def test_embedding_is_as_good_as_barnes_hut():
    """Same affinities and optimiser: the exact gradient reaches a KL at least as low as Barnes-Hut's
    (both measured exactly) and keeps the clusters apart."""
    from sklearn.manifold import TSNE

    x, labels = _blobs(n=300, d=30, k=6)
    p = tsne_exact.joint_probabilities(x, 30.0)
    ours = tsne_exact.tsne_exact(x, perplexity=30.0)
    bh = TSNE(perplexity=30.0, init="pca", learning_rate="auto", random_state=0).fit_transform(x.numpy())
    kl_bh = tsne_exact.kl_divergence(p, torch.from_numpy(bh))
    assert ours.iterations == 1000 or ours.iterations > tsne_exact.EXPLORATION_ITER
    assert ours.kl_divergence == pytest.approx(tsne_exact.kl_divergence(p, ours.coords))
    assert ours.kl_divergence <= kl_bh * 1.02
    coords = ours.coords.double()
    dist = torch.cdist(coords, coords) + torch.diag(torch.full((300,), math.inf, dtype=torch.float64))
    assert (labels[dist.argmin(1)] == labels).float().mean() > 0.98


def test_initialisation_is_pca_scaled():
    x, _ = _blobs(n=100)
    y = tsne_exact.pca_init(x)
    assert y.dtype == torch.float32 and y.shape == (100, 2)
    assert float(y[:, 0].double().std(correction=0)) == pytest.approx(1e-4, rel=1e-5)
    corr = np.corrcoef(y[:, 0].numpy(), pca(x, 1)[:, 0].numpy())[0, 1]
    assert corr == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("n,want", [(300, "exact"), (301, "barnes-hut")])
def test_auto_method_by_size(n, want, monkeypatch):
    """auto switches at EXACT_MAX_POINTS (lowered to 300 here to keep the Barnes-Hut run small)."""
    seen = {}

    def fake_exact(x, **kw):
        seen["m"] = "exact"
        n = kw["sq_dists"].shape[0]
        return tsne_exact.ExactResult(coords=torch.zeros(n, 2) + torch.arange(n)[:, None],
                                      kl_divergence=0.0, iterations=1)

    monkeypatch.setattr(tsne_exact, "tsne_exact", fake_exact)
    monkeypatch.setattr(tsne_exact, "EXACT_MAX_POINTS", 300)
    x = torch.randn(n, 5, generator=torch.Generator().manual_seed(0))
    emb = tsne.embed(x, n_iter=250, pca_dims=0, threads=1)
    assert emb.method == want
    assert seen.get("m") == ("exact" if want == "exact" else None)


def test_unknown_method_is_an_error():
    x, _ = _blobs(n=100)
    with pytest.raises(A2Error, match="method must be one of"):
        tsne.embed(x, method="fast")


def test_exact_method_restores_the_thread_count():
    x, _ = _blobs(n=60)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tsne.embed(x, perplexity=10.0, n_iter=250, threads=1, method="exact")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_from_sq_distances_is_the_same_computation():
    """Affinities, PCA initialisation, map and trustworthiness from one N×N distance GEMM."""
    from luatorch_port.visualize.pca import pca_from_sq_distances, sq_distances
    from luatorch_port.visualize.trust import trustworthiness

    x, _ = _blobs(n=150, d=300)
    x64 = x.to(torch.float64)
    sq = sq_distances(x64, dtype=torch.float64)
    direct = ((x64[:, None] - x64[None]) ** 2).sum(-1)
    torch.testing.assert_close(sq, direct, rtol=1e-10, atol=1e-8)
    fast = sq_distances(x64)                                   # the default, float32 GEMM
    x32 = x64.float()
    sq_distances(x32, dtype=torch.float32)
    torch.testing.assert_close(x32, x64.float(), rtol=0, atol=0)   # the input is left as it was
    assert fast.dtype == torch.float64 and bool((fast.diagonal() == 0).all())
    torch.testing.assert_close(fast, direct, rtol=1e-5, atol=1e-5 * float(direct.max()))
    want_nn = tsne_exact.nearest_from_sq_distances(direct, 20)[1]
    assert (tsne_exact.nearest_from_sq_distances(fast, 20)[1] == want_nn).float().mean() > 0.99
    torch.testing.assert_close(pca_from_sq_distances(sq, 3), pca(x64, 3), rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(tsne_exact.joint_probabilities(None, 30.0, sq_dists=sq),
                               tsne_exact.joint_probabilities(x64, 30.0), rtol=1e-9, atol=1e-12)
    a = tsne_exact.tsne_exact(x64, n_iter=300)
    b = tsne_exact.tsne_exact(None, n_iter=300, sq_dists=sq)
    torch.testing.assert_close(a.coords, b.coords, rtol=1e-3, atol=1e-3)
    assert trustworthiness(None, a.coords, sq_dists=sq) == trustworthiness(x64, a.coords)
