"""Exemplar-CNN features: every layer's responses, 4-quadrant max-pooled, net run convolutionally."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from luatorch_port.util.errors import A2Error
from luatorch_port.nn import build_model
from luatorch_port.surrogate import train as ST
from luatorch_port.surrogate import features as F_
from luatorch_port.surrogate.features import ConvolutionalFeatures, exemplar_features


@pytest.mark.parametrize("spec,size,n_features", [
    ("64c5-128c5-256c5-512f", 96, 4 * (64 + 128 + 256 + 512)),
    ("64c5-64c5-128f", 96, 4 * (64 + 64 + 128)),
    ("8c5-8c5-16f", 40, 4 * (8 + 8 + 16)),
])
def test_feature_count(spec, size, n_features):
    model = build_model(spec, n_classes=5, input_size=32, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    assert exemplar_features(model, x).shape == (2, n_features)


def test_features_are_quadrant_maxima_of_each_relu_and_the_fc_as_a_convolution():
    model = build_model("8c5-8c5-16f", n_classes=5, input_size=32,
                        generator=torch.Generator().manual_seed(0)).eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    feats = exemplar_features(model, x)
    conv1, _, pool1, conv2, _, pool2, view, fc = list(model.children())[:8]
    r1 = F.relu(conv1(x))
    r2 = F.relu(conv2(pool1(r1)))
    hidden = F.relu(fc(view(pool2(r2))))  # the Linear on a training-size input: one position
    q = lambda r: torch.stack([r[..., :r.shape[-2] // 2, :r.shape[-1] // 2].amax((-2, -1)),  # noqa: E731
                               r[..., :r.shape[-2] // 2, r.shape[-1] // 2:].amax((-2, -1)),
                               r[..., r.shape[-2] // 2:, :r.shape[-1] // 2].amax((-2, -1)),
                               r[..., r.shape[-2] // 2:, r.shape[-1] // 2:].amax((-2, -1))], -1).flatten(1)
    expected = torch.cat([q(r1), q(r2), hidden.repeat_interleave(4, dim=1)], dim=1)
    assert torch.allclose(feats, expected, atol=1e-5)


def test_fc_runs_convolutionally_on_bigger_images():
    """On a 48x48 image the fc response at each position is the Linear on that 32x32 crop's map."""
    model = build_model("8c5-8c5-16f", n_classes=5, input_size=32,
                        generator=torch.Generator().manual_seed(0)).eval()
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    ext = ConvolutionalFeatures(model)
    children = list(model.children())
    trunk = torch.nn.Sequential(*children[:6])
    fc = children[7]
    maps = trunk(x)  # (1, 8, 12, 12); the fc window is 8x8 -> 5x5 positions
    weight, bias = ext.fc
    conv = F.relu(F.conv2d(maps, weight, bias))
    for i, j in [(0, 0), (4, 4), (2, 3)]:
        window = maps[:, :, i:i + 8, j:j + 8].reshape(1, -1)
        assert torch.allclose(conv[0, :, i, j], F.relu(fc(window))[0], atol=1e-5)


def test_non_exemplar_models_are_refused():
    with pytest.raises(A2Error, match="Linear"):
        ConvolutionalFeatures(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)))


@pytest.mark.parametrize("per_class,held", [(0, None), (2, 2)])
def test_held_out_split_takes_the_last_patches_of_each_class(per_class, held):
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    train, val = ST.split_held_out(labels, per_class)
    if held is None:
        assert val is None and torch.equal(train, torch.arange(10))
        return
    assert sorted(val.tolist()) == [2, 3, 5, 6, 8, 9]
    assert sorted(train.tolist()) == [0, 1, 4, 7]


def test_held_out_split_refuses_to_empty_a_class():
    with pytest.raises(A2Error, match="--val-per-seed 3"):
        ST.split_held_out(torch.tensor([0, 0, 0, 1, 1, 1, 1]), 3)


def test_patch_norm_round_trip(tmp_path):
    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    norm = ST.fit_patch_norm(images, torch.Generator().manual_seed(1))
    z = norm.apply(images).double()
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(z.std((0, 2, 3)), torch.ones(3, dtype=torch.float64), atol=1e-3)
    ST.save_norm(norm, tmp_path / "n.t7")
    back = ST.load_norm(tmp_path / "n.t7")
    assert torch.equal(back.mean, norm.mean) and torch.equal(back.std, norm.std)


def test_untrained_copy_redraws_every_weight_and_leaves_the_model_alone():
    model = build_model("8c5-8c5-16f", n_classes=5, input_size=32,
                        generator=torch.Generator().manual_seed(0))
    before = [p.clone() for p in model.parameters()]
    a = F_.untrained_copy(model, torch.Generator().manual_seed(3))
    b = F_.untrained_copy(model, torch.Generator().manual_seed(3))
    for p, q, r in zip(model.parameters(), a.parameters(), b.parameters()):
        assert p.shape == q.shape and not torch.equal(p, q) and torch.equal(q, r)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    fresh = build_model("8c5-8c5-16f", n_classes=5, input_size=32,
                        generator=torch.Generator().manual_seed(3))
    for q, f in zip(a.parameters(), fresh.parameters()):  # Lua's reset(): the same distribution
        assert q.abs().max() <= f.abs().max() * 1.5 + 1e-6 and q.abs().max() > f.abs().max() * 0.5
    x = torch.randn(2, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    assert exemplar_features(a, x).shape == exemplar_features(model, x).shape
