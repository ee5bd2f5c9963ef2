"""Figure numbers: toDisplayTensor against Torch7, show_centroids layout, image maps, curves."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from luatorch_port import t7
from luatorch_port.visualize import figures as viz
from luatorch_port.util.errors import A2Error


def test_to_display_tensor_matches_torch7(oracle):
    data = t7.load(oracle("made", "image_ops.t7"))
    got = viz.to_display_tensor(data["grid_input"], padding=1, nrow=4)
    want = data["toDisplayTensor_pad1_nrow4"]
    assert got.shape == want.shape == (3, 24, 24)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=0)


@pytest.mark.parametrize("k,nrow,padding,shape", [
    (16, 4, 1, (3, 24, 24)),
    (5, 4, 0, (3, 10, 20)),     # 2 rows, the last one part-filled
    (7, 6, 2, (3, 14, 42)),
    (3, 6, 0, (3, 5, 15)),      # fewer images than nrow: xmaps = k
])
def test_grid_layout(k, nrow, padding, shape):
    # image i is constant i+1; the grid max (padding value) is k+1 after a +1 shift
    x = torch.arange(1, k + 1, dtype=torch.float64).reshape(k, 1, 1, 1).expand(k, 3, 5, 5).clone()
    raw = viz._grid(x, padding, nrow)
    assert raw.shape == shape
    off = padding // 2
    for i in range(k):
        r, c = divmod(i, min(nrow, k))
        cell = raw[:, r * (5 + padding) + off:r * (5 + padding) + off + 5,
                   c * (5 + padding) + off:c * (5 + padding) + off + 5]
        assert torch.all(cell == i + 1)
    # everything that is not a cell is the input's maximum
    assert (raw == k).sum() >= 75
    got = viz.to_display_tensor(x, padding=padding, nrow=nrow)
    assert got.min() == 0 and got.max() == 1


@pytest.mark.parametrize("kwargs,values,want", [
    ({}, [2.0, 4.0, 6.0], [0.0, 0.5, 1.0]),
    ({"symmetric": True}, [-1.0, 0.0, 2.0], [0.25, 0.5, 1.0]),
    ({"min": 0.0, "max": 4.0}, [-2.0, 2.0, 6.0], [0.0, 0.5, 1.0]),                    # saturated
    ({"min": 0.0, "max": 4.0, "saturate": False}, [-2.0, 2.0, 6.0], [-0.5, 0.5, 1.5]),
    ({}, [3.0, 3.0, 3.0], [0.0, 0.0, 0.0]),                                          # max 0: no division
])
def test_minmax(kwargs, values, want):
    got = viz.minmax(torch.tensor(values), **kwargs)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_scale_each_list_and_channels_grid():
    a = torch.zeros(1, 2, 2)
    b = torch.full((1, 2, 2), 10.0)
    b[0, 0, 0] = 0
    grid = viz.to_display_tensor([a + torch.tensor([[0., 1.], [2., 3.]]), b], nrow=2, scale_each=True)
    assert grid.shape == (1, 2, 4)
    torch.testing.assert_close(grid[0, :, :2], torch.tensor([[0., 1 / 3], [2 / 3, 1.]], dtype=torch.float64))
    # K×H×W input (no channel dim) gives a 2-D grid
    maps = viz.to_display_tensor(torch.rand(4, 3, 3) + 5, nrow=2, padding=1)
    assert maps.shape == (8, 8)
    with pytest.raises(A2Error, match="K×3×H×W"):
        viz.to_display_tensor(torch.rand(2, 2, 2, 2, 2))


def test_filter_grid_from_weight():
    w = torch.randn(8, 3, 5, 5)
    grid = viz.filter_grid(w, padding=1)
    # ceil(sqrt(8)) = 3 per row, 3 rows of (5+1)
    assert grid.shape == (3, 18, 18)
    # each filter is min-max scaled on its own: every cell spans exactly [0, 1]
    for i in range(8):
        r, c = divmod(i, 3)
        cell = grid[:, r * 6:r * 6 + 5, c * 6:c * 6 + 5]
        assert cell.min().item() == 0 and cell.max().item() == 1
    grey = viz.filter_grid(torch.randn(4, 2, 3, 3), padding=0)
    assert grey.shape == (1, 9, 9)  # 8 cells, 3 per row


@pytest.mark.parametrize("layout", ["chw", "matlab"])
def test_centroid_grid_matches_show_centroids(layout):
    k, rf = 5, 2
    cents = torch.linspace(-2, 2, k * 3 * rf * rf, dtype=torch.float64).reshape(k, -1)
    img = viz.centroid_grid(cents, rf, 3, layout=layout)
    cols = round(math.sqrt(k))  # 2
    rows = math.ceil(k / cols)  # 3
    assert img.shape == (3, rows * (rf + 1), cols * (rf + 1))
    # background (100) maps to 1 after (v+1.5)/3 and clipping
    assert img[:, rf, :].eq(1).all() and img[:, :, rf].eq(1).all()
    # centroid 3 -> row 1, col 1; value mapping (v + 1.5) / 3 clipped
    c3 = cents[3].reshape(3, rf, rf)
    if layout == "matlab":
        c3 = c3.transpose(1, 2)
    want = ((c3 + 1.5) / 3).clamp(0, 1)
    torch.testing.assert_close(img[:, rf + 1:2 * rf + 1, rf + 1:2 * rf + 1], want)
    # the unused sixth cell is background
    assert img[:, 2 * (rf + 1):, rf + 1:].eq(1).all()


def test_centroid_grid_matlab_layout_column_major():
    # MATLAB reshape(v, H, W, N): v index = h + H*w + H*W*c
    rf = 3
    v = torch.zeros(1, 3 * rf * rf, dtype=torch.float64)
    v[0, 1 + rf * 2 + rf * rf * 2] = 1.0  # h=1, w=2, c=2
    img = viz.centroid_grid(v, rf, 3, layout="matlab", value_range=(0, 1))
    assert img[2, 1, 2] == 1 and img[:, :rf, :rf].sum() == 1


def test_unwhiten_inverts_zca():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 12, generator=g, dtype=torch.float64) @ torch.randn(12, 12, generator=g, dtype=torch.float64)
    mean = x.mean(0)
    cov = torch.cov((x - mean).T)
    e, v = torch.linalg.eigh(cov)
    p = v @ torch.diag(1 / torch.sqrt(e + 0.1)) @ v.T
    white = (x[:4] - mean) @ p
    back = viz.unwhiten(white, p, mean)
    want = x[:4] - x[:4].mean(1, keepdim=True)
    want = want / want.std(1, keepdim=True)
    torch.testing.assert_close(back, want)
    with pytest.raises(A2Error, match="whitening matrix"):
        viz.unwhiten(white, p[:3, :3], mean)


def test_draw_image_map_positions():
    coords = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.5, 1.0]])
    imgs = torch.stack([torch.full((1, 4, 4), float(i + 1)) for i in range(3)])
    canvas = viz.draw_image_map(coords, imgs, map_size=20)
    assert canvas.shape == (1, 20, 20)
    assert canvas[0, 0, 0] == 1           # min corner
    assert canvas[0, 16, 16] == 2         # max corner: floor(1 * (20 - 4)) = 16
    assert canvas[0, 8, 8] == 3           # middle: floor(0.5 * 16) = 8
    assert canvas[0, 5, 0] == 0           # background


def test_save_image_png(tmp_path):
    img = torch.rand(3, 7, 9, dtype=torch.float64)
    w, h = viz.save_image(tmp_path / "a.png", img, zoom=2)
    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (18, 14) == (w, h) and im.mode == "RGB"
        arr = np.asarray(im)
    np.testing.assert_array_equal(arr[::2, ::2], (img.permute(1, 2, 0) * 255).round().byte().numpy())


def test_read_logger_and_curves(tmp_path):
    log = tmp_path / "val.log"
    log.write_text("% mean class accuracy (train set)\t% mean class accuracy (test set)\t\n"
                   " 1.2000e+01\t 1.5000e+01\t\n 3.0000e+01\t 2.5000e+01\t\n")
    cols = viz.read_logger(log)
    assert cols == {"% mean class accuracy (train set)": [12.0, 30.0],
                    "% mean class accuracy (test set)": [15.0, 25.0]}
    w, h = viz.save_curves(tmp_path / "c.png", cols)
    with Image.open(tmp_path / "c.png") as im:
        assert im.size == (w, h) == (640, 400)
    log.write_text("a\tb\n1\tx\n")
    with pytest.raises(A2Error, match=r"val.log:2: 'x'"):
        viz.read_logger(log)


def test_augmentation_grid_keeps_pixel_values():
    ex = torch.zeros(2, 3, 3, 4, 4, dtype=torch.uint8)
    ex[1, 2] = 51  # seed 2, second transformation
    grid = viz.augmentation_grid(ex, padding=2)
    assert grid.shape == (3, 2 * 6, 3 * 6)
    # padding 2: one pixel before each cell; row 1, col 2 holds 51/255 = 0.2, not stretched to 1
    torch.testing.assert_close(grid[:, 7:11, 13:17], torch.full((3, 4, 4), 0.2, dtype=torch.float64))
    assert grid[:, 1:5, 1:5].eq(0).all() and grid[:, 0, :].eq(1).all()
