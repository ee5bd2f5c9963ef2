"""t-SNE: PCA against scikit-learn, embedding shape and trustworthiness, CSV and figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from luatorch_port.visualize import features, scatter, tsne
from luatorch_port.visualize.pca import pca
from luatorch_port.visualize.run import write_coords_csv
from luatorch_port.util.errors import A2Error


def _blobs(n=300, d=200, k=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * 8
    labels = torch.arange(n) % k
    return centres[labels] + torch.randn(n, d, generator=g), labels


@pytest.mark.parametrize("n,d", [(40, 300), (300, 20)])  # Gram path (N < D) and covariance path
def test_pca_matches_sklearn(n, d):
    from sklearn.decomposition import PCA

    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(5, 0.1, d, dtype=torch.float64)
    got = pca(x, 10)
    want = PCA(10, svd_solver="full").fit_transform(x.numpy())
    assert got.shape == (n, 10)
    # equal up to the sign of each component
    np.testing.assert_allclose(np.abs(got.numpy()), np.abs(want), atol=1e-8)


@pytest.mark.parametrize("k,max_iter", [(2, None), (8, None), (2, 0), (9, None)])  # subspace; eigh fallback
def test_leading_eigenpairs_equal_eigh(k, max_iter, monkeypatch):
    from luatorch_port.visualize import pca as pca_mod

    if max_iter is not None:
        monkeypatch.setattr(pca_mod, "SUBSPACE_MAX_ITER", max_iter)
    g = torch.Generator().manual_seed(k)
    a = torch.randn(300, 40, generator=g, dtype=torch.float64) * torch.linspace(4, 0.1, 40, dtype=torch.float64)
    gram = a @ a.T
    sizes, eigh = [], torch.linalg.eigh
    monkeypatch.setattr(torch.linalg, "eigh", lambda m: sizes.append(m.shape[0]) or eigh(m))
    vals, vecs = pca_mod._leading_eigenpairs(gram, k)
    # the full N×N eigendecomposition only as the fallback (not converged, or k above SUBSPACE_MAX_K)
    assert (300 in sizes) == (max_iter == 0 or k > pca_mod.SUBSPACE_MAX_K)
    evals, evecs = eigh(gram)
    torch.testing.assert_close(vals, evals[-k:].flip(0), rtol=1e-10, atol=0)
    torch.testing.assert_close(vecs.abs(), evecs[:, -k:].flip(1).abs(), rtol=0, atol=1e-8)


def test_embedding_separable_data_is_trustworthy():
    x, labels = _blobs()
    emb = tsne.embed(x, generator=torch.Generator().manual_seed(0), threads=1)
    assert emb.coords.shape == (300, 2) and np.isfinite(emb.coords).all()
    assert emb.pca_dims == 200 and emb.input_dims == 200      # manifold's default: no PCA
    assert emb.trustworthiness > 0.8
    # clusters come out separated: every point's nearest embedded neighbour shares its class
    dist = ((emb.coords[:, None] - emb.coords[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    nearest = dist.argmin(1)
    assert (labels.numpy()[nearest] == labels.numpy()).mean() > 0.95


def test_pca_only_when_asked():
    x, _ = _blobs(n=120, d=80)
    assert tsne.PCA_DIMS == 0
    emb = tsne.embed(x, n_iter=250, pca_dims=50, generator=torch.Generator().manual_seed(0), threads=1)
    assert emb.pca_dims == 50 and emb.input_dims == 80


def test_embedding_is_deterministic_for_a_seed():
    x, _ = _blobs(n=120, d=30)
    a = tsne.embed(x, n_iter=250, generator=torch.Generator().manual_seed(3), threads=1)
    b = tsne.embed(x, n_iter=250, generator=torch.Generator().manual_seed(3), threads=1)
    np.testing.assert_array_equal(a.coords, b.coords)


@pytest.mark.parametrize("shape,match", [((20, 5), "too few"), ((5,), "N×D")])
def test_embed_rejects_bad_input(shape, match):
    with pytest.raises(A2Error, match=match):
        tsne.embed(torch.zeros(shape))


@pytest.mark.parametrize("bad,match", [(float("nan"), "NaN or infinite"), (float("inf"), "NaN or infinite"),
                                       (-float("inf"), "NaN or infinite"), (None, "same features")])
def test_embed_rejects_unusable_features(bad, match):
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if bad is None:
        x[:] = x[0]
    else:
        x[17, 4] = bad
    with pytest.raises(A2Error, match=match):
        tsne.embed(x, perplexity=5.0)


def test_raw_channel_features():
    imgs = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)
    f = features.raw_channel_features(imgs, channel=2)
    assert f.shape == (2, 16) and f.dtype == torch.float64
    torch.testing.assert_close(f[1], imgs[1, 1].reshape(-1).double())
    with pytest.raises(A2Error, match="--channel 4"):
        features.raw_channel_features(imgs, channel=4)


def test_csv_and_scatter(tmp_path):
    coords = np.array([[0.5, -1.0], [2.0, 3.25], [1.0, 1.0]])
    write_coords_csv(tmp_path / "c.csv", coords, labels=[0, 9, 3], class_names=["a"] * 9 + ["truck"])
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines == ["index,x,y,label,class", "1,0.500000,-1.000000,1,a", "2,2.000000,3.250000,10,truck",
                     "3,1.000000,1.000000,4,a"]
    w, h = scatter.save_scatter(tmp_path / "s.png", coords, labels=[0, 9, 3])
    with Image.open(tmp_path / "s.png") as im:
        assert im.size == (w, h) == (700, 600)


def test_scatter_places_and_colours_each_point():
    """The numbers behind the scatter: data -> pixel mapping with 5 % margins, the legend's
    corner, and each point drawn in its class colour where the mapping puts it."""
    box = (10, 20, 110, 220)
    px = scatter.data_to_pixels(np.array([[0.0, 0.0], [10.0, 4.0], [5.0, 2.0]]), box)
    # x: 0..10 widened to -0.5..10.5 over 100 px; y: 0..4 widened to -0.2..4.2 over 200 px, upwards
    np.testing.assert_allclose(px, [[10 + 100 * 0.5 / 11, 220 - 200 * 0.2 / 4.4],
                                    [10 + 100 * 10.5 / 11, 220 - 200 * 4.2 / 4.4], [60, 120]])
    crowded_upper_right = np.array([[100.0, 30.0], [95.0, 35.0], [15.0, 210.0]])
    assert scatter.best_corner(crowded_upper_right, box, (30, 30)) == "upper left"
    assert scatter.best_corner(np.array([[15.0, 25.0], [100, 30], [15, 210], [100, 210]]), box,
                               (30, 30)) == "upper right"                    # a tie keeps matplotlib's first

    coords = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5]])
    labels = [0, 3, 9, 3]
    image = np.asarray(scatter.draw_scatter(coords, labels, title="t"))
    lines = 1
    pixels = scatter.data_to_pixels(coords, scatter.axes_box(700, 600, lines))
    for (x, y), lab in zip(pixels, labels):
        want = np.array([int(scatter.TAB10[lab][i:i + 2], 16) for i in (1, 3, 5)])
        assert np.abs(image[int(y), int(x)].astype(int) - want).max() <= 40, (lab, image[int(y), int(x)])
    with pytest.raises(A2Error, match="2 labels"):
        scatter.draw_scatter(coords, [0, 1])


def test_thumbnails():
    imgs = torch.full((2, 3, 8, 8), 255, dtype=torch.uint8)
    imgs[1, :, :4] = 0
    t = features.thumbnails(imgs, 4)
    assert t.shape == (2, 3, 4, 4)
    assert t[0].eq(1).all() and t[1, :, :2].eq(0).all() and t[1, :, 2:].eq(1).all()


@pytest.mark.parametrize("n, d, k", [(40, 3, 5), (300, 20, 5), (301, 50, 12), (120, 2, 1)])
def test_trustworthiness_equals_scikit_learns(n, d, k):
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    from luatorch_port.visualize.trust import trustworthiness

    g = torch.Generator().manual_seed(n + d)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    emb = x[:, :2] + 0.7 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    want = sklearn_trustworthiness(x.numpy(), emb.numpy(), n_neighbors=k)
    assert trustworthiness(x, emb, n_neighbors=k) == pytest.approx(want, abs=1e-12)


def test_trustworthiness_refuses_bad_shapes():
    from luatorch_port.visualize.trust import trustworthiness

    with pytest.raises(A2Error, match="input rows"):
        trustworthiness(torch.zeros(10, 3), torch.zeros(9, 2))
    with pytest.raises(A2Error, match="n_neighbors=5"):
        trustworthiness(torch.zeros(10, 3), torch.zeros(10, 2))
