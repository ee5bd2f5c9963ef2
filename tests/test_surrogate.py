"""Surrogate dataset (report 2.1): transformation ranges, geometry, colour, file layout."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import matplotlib.colors
import pytest
import torch

from luatorch_port import t7
from luatorch_port.util.errors import A2Error
from luatorch_port.surrogate import build as B
from luatorch_port.surrogate import transforms as T

COL = {name: i for i, name in enumerate(T.COLUMNS)}
EXEMPLAR = T.PRESETS["exemplar"]  # every transformation, colour included


def smooth_images(n, size=96, seed=0):
    """uint8 images of upsampled noise (bilinear warps of them are meaningful)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, size // 8, size // 8, generator=g)
    big = torch.nn.functional.interpolate(small, size=size, mode="bilinear", align_corners=False)
    return (big * 255).round().to(torch.uint8)


def params_with(**values):
    p = torch.tensor(T.IDENTITY, dtype=torch.float64).clone()
    for name, value in values.items():
        p[COL[name]] = value
    return p.view(1, 1, -1)


# --- random parameters -------------------------------------------------------------------

RANGES = [
    EXEMPLAR,
    T.TransformRanges(rotation=(-5.0, 45.0), scale=(1.0, 2.0), translate=0.3, flip=0.0, color=True,
                      power=(0.5, 1.0), multiply=(1.0, 1.0), add=(0.0, 0.05), hue=(0.0, 0.5)),
]


@pytest.mark.parametrize("ranges", RANGES, ids=["exemplar", "custom"])
@pytest.mark.parametrize("column,bounds", [
    ("angle", lambda r: r.rotation), ("scale", lambda r: r.scale),
    ("tx", lambda r: (-r.translate, r.translate)), ("ty", lambda r: (-r.translate, r.translate)),
    ("hue", lambda r: r.hue), ("s_pow", lambda r: r.power), ("v_pow", lambda r: r.power),
    ("s_mul", lambda r: r.multiply), ("v_mul", lambda r: r.multiply),
    ("s_add", lambda r: r.add), ("v_add", lambda r: r.add),
])
def test_parameters_stay_in_range_and_fill_it(ranges, column, bounds):
    p = T.sample_params(20000, ranges, torch.Generator().manual_seed(3))[:, COL[column]]
    lo, hi = bounds(ranges)
    assert p.min() >= lo and p.max() <= hi
    if hi > lo:  # the range is used, not a corner of it
        assert p.min() < lo + 0.02 * (hi - lo) and p.max() > hi - 0.02 * (hi - lo)


@pytest.mark.parametrize("prob", [0.0, 0.5, 1.0])
def test_flip_probability(prob):
    p = T.sample_params(4000, T.TransformRanges(flip=prob), torch.Generator().manual_seed(4))
    flips = p[:, COL["flip"]]
    assert set(flips.unique().tolist()) <= {0.0, 1.0}
    assert abs(flips.mean().item() - prob) < 0.03


def test_power_is_log_uniform_around_one():
    p = T.sample_params(20000, EXEMPLAR, torch.Generator().manual_seed(5))
    median = p[:, COL["v_pow"]].median().item()
    assert abs(math.log(median)) < 0.05


def test_no_color_gives_identity_colour_columns_and_same_geometry():
    a = T.sample_params(50, EXEMPLAR, torch.Generator().manual_seed(6))
    b = T.sample_params(50, T.preset("exemplar", color=False), torch.Generator().manual_seed(6))
    assert torch.equal(a[:, :COL["hue"]], b[:, :COL["hue"]])
    assert torch.equal(b[:, COL["hue"]:], torch.tensor(T.IDENTITY[COL["hue"]:]).expand(50, -1).double())


@pytest.mark.parametrize("kwargs", [
    {"rotation": (10.0, -10.0)}, {"scale": (0.0, 1.0)}, {"translate": -0.1}, {"flip": 1.5},
    {"power": (-1.0, 2.0)},
])
def test_bad_ranges_raise(kwargs):
    with pytest.raises(A2Error):
        T.TransformRanges(**kwargs)


def test_presets_report_has_three_transformations_exemplar_adds_flip_and_colour():
    report, exemplar = T.PRESETS["report"], T.PRESETS["exemplar"]
    assert T.DEFAULT_PRESET == "report" and T.TransformRanges() == report
    assert (report.rotation, report.scale, report.translate) == ((-20.0, 20.0), (0.7, 1.4), 0.1)
    assert report.flip == 0.0 and not report.color
    assert exemplar.flip == 0.5 and exemplar.color
    assert (exemplar.rotation, exemplar.scale, exemplar.translate) == (report.rotation, report.scale,
                                                                       report.translate)
    p = T.sample_params(2000, report, torch.Generator().manual_seed(1))
    assert (p[:, COL["flip"]] == 0).all()
    assert torch.equal(p[:, COL["hue"]:], torch.tensor(T.IDENTITY[COL["hue"]:]).expand(2000, -1).double())


def test_preset_overrides_only_what_is_given():
    r = T.preset("exemplar", rotation=(-5.0, 5.0), color=None, flip=0.0)
    assert r.rotation == (-5.0, 5.0) and r.color and r.flip == 0.0 and r.scale == (0.7, 1.4)
    assert T.preset("report", color=True).color
    with pytest.raises(A2Error, match="preset 'full' is not one of report, exemplar"):
        T.preset("full")


# --- geometry ----------------------------------------------------------------------------

BOX = torch.tensor([[20.0, 30.0, 32.0]])  # x0, y0, size: well inside a 96x96 image


def crop(images):
    return images[0, :, 30:62, 20:52]


@pytest.mark.parametrize("values,expected", [
    ({}, lambda c: c),
    ({"angle": 90.0}, lambda c: torch.rot90(c, 1, dims=(-2, -1))),
    ({"angle": -90.0}, lambda c: torch.rot90(c, -1, dims=(-2, -1))),
    ({"angle": 180.0}, lambda c: torch.rot90(c, 2, dims=(-2, -1))),
    ({"flip": 1.0}, lambda c: c.flip(-1)),
    ({"flip": 1.0, "angle": 90.0}, lambda c: torch.rot90(c, 1, dims=(-2, -1)).flip(-1)),
], ids=["identity", "rot90", "rot-90", "rot180", "flip", "flip+rot90"])
def test_exact_geometry_equals_pixel_operations(values, expected):
    images = smooth_images(1)
    out = B.render(images, BOX, params_with(**values), 32, color=False)
    assert torch.equal(out[0, 0], expected(crop(images)))


@pytest.mark.parametrize("tx,ty", [(0.125, 0.0), (0.0, -0.25), (0.25, 0.125)])
def test_translation_is_a_fraction_of_the_patch(tx, ty):
    images = smooth_images(1)
    out = B.render(images, BOX, params_with(tx=tx, ty=ty), 32, color=False)
    dx, dy = int(tx * 32), int(ty * 32)
    assert torch.equal(out[0, 0], images[0, :, 30 + dy:62 + dy, 20 + dx:52 + dx])


def test_translation_is_a_fraction_of_the_patch_at_any_scale():
    """At scale 2 the 32-pixel window shows 16 source pixels: tx = 0.25 of the patch moves
    the content by 8 output pixels, i.e. 4 source pixels (not 0.25 of the 32-pixel window)."""
    images = smooth_images(1)
    moved = B.render(images, BOX, params_with(scale=2.0, tx=0.25, ty=-0.125), 32, color=False)
    shifted_box = BOX + torch.tensor([[4.0, -2.0, 0.0]])
    assert (moved.int() - B.render(images, shifted_box, params_with(scale=2.0), 32,
                                   color=False).int()).abs().max() <= 1


def test_scale_two_zooms_into_the_centre():
    """scale 2 shows the central 16x16 of the window at twice the size."""
    images = smooth_images(1)
    out = B.render(images, BOX, params_with(scale=2.0), 32, color=False)[0, 0].float()
    centre = images[0:1, :, 38:54, 28:44].float()
    up = torch.nn.functional.interpolate(centre, scale_factor=2, mode="bilinear",
                                         align_corners=False)[0]
    inner = (slice(None), slice(2, -2), slice(2, -2))  # away from the upsampler's own border
    assert (out[inner] - up[inner]).abs().max() <= 1.0


def test_small_rotation_matches_rotated_coordinates():
    """A 20 degree rotation moves a bright dot where the rotation matrix says."""
    images = torch.zeros(1, 3, 96, 96, dtype=torch.uint8)
    images[0, :, 30 + 4, 20 + 26] = 255  # dot at (x, y) = (26.5, 4.5) in the window
    out = B.render(images, BOX, params_with(angle=20.0), 32, color=False)[0, 0, 0].float()
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    cx, cy = (xs * out).sum() / out.sum() + 0.5, (ys * out).sum() / out.sum() + 0.5
    # output point u maps to source R u: the dot appears at R^-1 (dot - centre)
    a = math.radians(20.0)
    dx, dy = 26.5 - 16, 4.5 - 16
    ex, ey = math.cos(a) * dx + math.sin(a) * dy + 16, -math.sin(a) * dx + math.cos(a) * dy + 16
    assert abs(cx - ex) < 0.3 and abs(cy - ey) < 0.3


def test_affine_grid_equals_torch_affine_grid():
    g = torch.Generator().manual_seed(11)
    boxes = torch.tensor([[20.0, 30.0, 32.0]]).expand(40, -1)
    theta = T.affine_thetas(boxes, T.sample_params(40, EXEMPLAR, g), 96, 96)
    ours = T.affine_grid(theta, 32)
    theirs = torch.nn.functional.affine_grid(theta, (40, 1, 32, 32), align_corners=False)
    assert ours.shape == (40, 32, 32, 2) and ours.dtype == torch.float32 and ours.is_contiguous()
    assert (ours.double() - theirs).abs().max() < 1e-6


def test_compose_grid_is_a_tall_grid_per_image():
    g = torch.Generator().manual_seed(12)
    boxes = torch.tensor([[20.0, 30.0, 32.0], [0.0, 10.0, 64.0]]).repeat_interleave(5, 0)
    theta = T.affine_thetas(boxes, T.sample_params(10, EXEMPLAR, g), 96, 80)
    along_x, along_y = (x.view(2, 5, 2, 8).transpose(1, 2) for x in T.grid_terms(theta, 8))
    grid = T.compose_grid(along_x, along_y, torch.empty(2, 2, 5, 8, 8))
    assert torch.equal(grid.reshape(10, 8, 8, 2), T.affine_grid(theta, 8))


@pytest.mark.parametrize("color", [True, False], ids=["colour", "geometry"])
def test_render_agrees_with_the_plain_float64_path(color):
    """The fast path (chunks, fused jitter, float32) against render_reference: <= 1 level."""
    images = smooth_images(6)
    g = torch.Generator().manual_seed(13)
    boxes = B.seed_windows(images, g)
    params = T.sample_params(6 * 40, T.TransformRanges(color=color), g).view(6, 40, -1)
    fast = B.render(images, boxes, params, 32, color=color)
    slow = B.render_reference(images, boxes, params, 32, color=color)
    d = (fast.int() - slow.int()).abs()
    assert d.max() <= 1 and (d > 0).double().mean() < 1e-3  # measured: 3e-5 of the values


def test_render_on_real_images_agrees_with_the_plain_path(oracle):
    """Real STL-10 pixels (flat skies, greys, saturated colours): almost all within 1 level.

    Measured on all 246 images x 100 patches: 3.8e-5 of the values differ, 3 values in 75.6
    million by more than 1 (by 2, 3 and 18): near-white pixels whose chroma is below float32
    resolution (float32 samples the three channels equal, hue 0; float64 keeps a chroma of
    1e-7 with some hue), and the saturation jitter's add tints them in that hue.
    """
    from luatorch_port.data import load_split
    images = load_split(oracle("fetched", "stl10", "real_extra_246.t7b")).images[:12]
    g = torch.Generator().manual_seed(14)
    boxes = B.seed_windows(images, g)
    params = T.sample_params(12 * 30, EXEMPLAR, g).view(12, 30, -1)
    d = (B.render(images, boxes, params).int() - B.render_reference(images, boxes, params).int()).abs()
    assert (d > 0).double().mean() < 1e-3 and (d > 1).double().mean() < 1e-5


@pytest.mark.parametrize("chunk,per_seed,expected", [(7, 5, (1, 5)), (3, 10, (1, 3)), (1, 4, (1, 1))],
                         ids=["image-per-chunk", "image-split", "patch-per-chunk"])
def test_chunking_does_not_change_the_bytes(monkeypatch, chunk, per_seed, expected):
    images = smooth_images(5)
    g = torch.Generator().manual_seed(15)
    boxes = B.seed_windows(images, g)
    params = T.sample_params(5 * per_seed, EXEMPLAR, g).view(5, per_seed, -1)
    whole = {color: B.render(images, boxes, params, color=color) for color in (True, False)}
    assert B.chunking(5, per_seed) == (5, per_seed)  # the default: all five images at once
    monkeypatch.setattr(B, "CHUNK_PATCHES", chunk)
    assert B.chunking(5, per_seed) == expected
    for color in (True, False):
        assert torch.equal(B.render(images, boxes, params, color=color), whole[color])


def test_render_reports_its_stages_without_changing_the_bytes(monkeypatch):
    """The ``stage`` callback (bench_surrogate's per-stage timer) sees each stage in order."""
    images = smooth_images(3)
    g = torch.Generator().manual_seed(16)
    boxes = B.seed_windows(images, g)
    params = T.sample_params(3 * 4, EXEMPLAR, g).view(3, 4, -1)
    plain = B.render(images, boxes, params)
    monkeypatch.setattr(B, "CHUNK_PATCHES", 4)               # three chunks: one image each
    seen = []
    timed = B.render(images, boxes, params, stage=seen.append)
    assert torch.equal(timed, plain)
    per_chunk = ["compose grids", "grid_sample", "colour jitter", "uint8"]
    assert seen == ["grid terms"] + per_chunk * 3


def test_warp_stacks_many_transformations_per_image():
    images = smooth_images(2)
    boxes = torch.tensor([[20.0, 30.0, 32.0], [10.0, 5.0, 48.0]])
    p = T.sample_params(10, T.TransformRanges(color=False), torch.Generator().manual_seed(1))
    p = p.view(2, 5, -1)
    together = B.render(images, boxes, p, 32, color=False)
    for i in range(2):
        for j in range(5):
            alone = B.render(images[i:i + 1], boxes[i:i + 1], p[i:i + 1, j:j + 1], 32, color=False)
            assert torch.equal(together[i, j], alone[0, 0])


# --- colour ------------------------------------------------------------------------------

def test_hsv_round_trip_and_matplotlib_oracle():
    rgb = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    h, s, v = T.rgb_to_hsv(rgb)
    ours = torch.stack([h, s, v], dim=-1)
    theirs = torch.from_numpy(matplotlib.colors.rgb_to_hsv(rgb.permute(0, 2, 3, 1).numpy()))
    assert torch.allclose(ours, theirs, atol=1e-12)
    assert torch.allclose(T.hsv_to_rgb(h, s, v), rgb, atol=1e-12)


def reference_jitter(rgb, params):
    """Colour jitter the obvious way: to HSV, jitter, back (matplotlib's conversions)."""
    p = params.double().view(-1, len(T.COLUMNS), 1, 1)
    hsv = torch.from_numpy(matplotlib.colors.rgb_to_hsv(rgb.double().permute(0, 2, 3, 1).numpy()))
    h, s, v = hsv.unbind(-1)
    h = torch.remainder(h + p[:, COL["hue"]], 1.0)
    s = (s ** p[:, COL["s_pow"]] * p[:, COL["s_mul"]] + p[:, COL["s_add"]]).clamp(0, 1)
    v = (v ** p[:, COL["v_pow"]] * p[:, COL["v_mul"]] + p[:, COL["v_add"]]).clamp(0, 1)
    back = matplotlib.colors.hsv_to_rgb(torch.stack([h, s, v], -1).numpy())
    return torch.from_numpy(back).permute(0, 3, 1, 2)


@pytest.mark.parametrize("ranges", [EXEMPLAR, T.preset("exemplar", hue=(-0.5, 0.5))],
                         ids=["paper", "wide-hue"])
def test_color_jitter_matches_hsv_reference(ranges):
    g = torch.Generator().manual_seed(7)
    rgb = torch.rand(300, 3, 6, 6, generator=g)
    rgb[:20] = rgb[:20, :1]  # grey pixels: zero chroma, hue undefined
    rgb[20:30, 0] = rgb[20:30, 1]  # ties between max channels
    params = T.sample_params(300, ranges, g)
    ours = T.color_jitter(rgb, params)
    assert (ours - reference_jitter(rgb, params)).abs().max() < 1e-4
    assert ours.min() >= 0 and ours.max() <= 1


@pytest.mark.parametrize("ranges", [EXEMPLAR, T.preset("exemplar", hue=(-0.5, 0.5))],
                         ids=["paper", "wide-hue"])
def test_color_jitter_on_black_white_primaries_and_greys(ranges):
    """Every pixel with channels in {0, 1/255, 0.5, 1}: zero chroma, ties, log(0) floors."""
    levels = torch.tensor([0.0, 1.0 / 255.0, 0.5, 1.0])
    r, g, b = torch.meshgrid(levels, levels, levels, indexing="ij")
    pixels = torch.stack([r, g, b]).reshape(3, 1, 64)          # 64 colours in a 1 x 64 strip
    rgb = pixels.unsqueeze(0).expand(200, -1, -1, -1).contiguous()
    params = T.sample_params(200, ranges, torch.Generator().manual_seed(9))
    ours = T.color_jitter(rgb, params)
    assert (ours - reference_jitter(rgb, params)).abs().max() < 1e-4
    assert (ours - T.color_jitter_reference(rgb.double(), params)).abs().max() < 1e-4


def test_color_jitter_reference_matches_matplotlib():
    g = torch.Generator().manual_seed(10)
    rgb = torch.rand(100, 3, 4, 4, generator=g, dtype=torch.float64)
    params = T.sample_params(100, EXEMPLAR, g)
    assert (T.color_jitter_reference(rgb, params) - reference_jitter(rgb, params)).abs().max() < 1e-9


def test_identity_colour_params_leave_pixels_alone():
    rgb = torch.rand(50, 3, 5, 5, generator=torch.Generator().manual_seed(8))
    params = torch.tensor(T.IDENTITY).expand(50, -1)
    assert (T.color_jitter(rgb, params) - rgb).abs().max() < 1e-5


def test_color_render_changes_colour_not_geometry():
    images = smooth_images(1)
    plain = B.render(images, BOX, params_with(), 32, color=True)
    assert (plain.float() - crop(images).float()).abs().max() <= 1  # identity colour, float32
    jittered = B.render(images, BOX, params_with(hue=0.3, s_mul=1.3), 32, color=True)
    assert (jittered.float() - plain.float()).abs().mean() > 5


# --- seed windows ------------------------------------------------------------------------

def test_seed_windows_inside_the_image_and_in_size_range():
    images = smooth_images(200)
    boxes = B.seed_windows(images, torch.Generator().manual_seed(1), window=(32, 64))
    x0, y0, size = boxes.unbind(1)
    assert (size >= 32).all() and (size <= 64).all()
    assert (x0 >= 0).all() and (y0 >= 0).all()
    assert (x0 + size <= 96).all() and (y0 + size <= 96).all()
    assert torch.equal(boxes, boxes.round())


def test_gradient_sampling_prefers_textured_regions():
    """Images flat except for a textured 40x40 corner: gradient-weighted windows overlap it."""
    g = torch.Generator().manual_seed(2)
    images = torch.full((300, 3, 96, 96), 128, dtype=torch.uint8)
    images[:, :, :40, :40] = torch.randint(0, 256, (300, 3, 40, 40), generator=g, dtype=torch.uint8)

    def overlap(boxes):
        x0, y0, size = boxes.unbind(1)
        w = (40 - x0).clamp(min=0).minimum(size)
        h = (40 - y0).clamp(min=0).minimum(size)
        return (w * h / size ** 2).mean().item()

    weighted = overlap(B.seed_windows(images, torch.Generator().manual_seed(3)))
    uniform = overlap(B.seed_windows(images, torch.Generator().manual_seed(3), gradient=False))
    assert weighted > 2 * uniform


def plain_seed_windows(images, generator, window=(32, 64), candidates=16):
    """The seed-window formula written out on all images at once (the blocked version's oracle)."""
    b, _, h, w = images.shape
    size = torch.randint(window[0], window[1] + 1, (b, candidates), generator=generator)
    x0 = (torch.rand(b, candidates, generator=generator, dtype=torch.float64) * (w - size + 1)).long()
    y0 = (torch.rand(b, candidates, generator=generator, dtype=torch.float64) * (h - size + 1)).long()
    grey = images.double().mean(1)
    energy = grey.diff(dim=2)[:, :-1, :] ** 2 + grey.diff(dim=1)[:, :, :-1] ** 2
    integral = torch.zeros(b, h, w, dtype=torch.float64)
    integral[:, 1:, 1:] = energy.cumsum(1).cumsum(2)
    rows = torch.arange(b).unsqueeze(1)
    y1, x1 = y0 + size - 1, x0 + size - 1
    total = (integral[rows, y1, x1] - integral[rows, y0, x1] - integral[rows, y1, x0]
             + integral[rows, y0, x0])
    weights = (total / ((size - 1) ** 2).double()) ** B.GRADIENT_POWER
    weights += 1e-12 + 1e-9 * weights.amax(1, keepdim=True)
    pick = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    sel = torch.arange(b)
    return torch.stack([x0[sel, pick], y0[sel, pick], size[sel, pick]], dim=1).double()


@pytest.mark.parametrize("n,size", [(40, 96), (3, 50)])
def test_seed_windows_in_blocks_equal_the_plain_formula(n, size):
    images = smooth_images(n, size=size, seed=4)
    images[0] = 77  # a flat image: uniform weights
    window = (32, 64) if size == 96 else (20, 40)
    for seed in range(3):
        plain = plain_seed_windows(images, torch.Generator().manual_seed(seed), window=window)
        assert torch.equal(B.seed_windows(images, torch.Generator().manual_seed(seed), window=window),
                           plain)
        with ThreadPoolExecutor(2) as pool:  # energy blocks on threads, as build_surrogate does
            assert torch.equal(B.seed_windows(images, torch.Generator().manual_seed(seed),
                                              window=window, map_fn=pool.map), plain)


@pytest.mark.parametrize("window", [(1, 10), (40, 30), (32, 97)])
def test_bad_windows_raise(window):
    with pytest.raises(A2Error, match="seed window"):
        B.seed_windows(smooth_images(2), torch.Generator(), window=window)


# --- the dataset file --------------------------------------------------------------------

def build_file(path, images, seed=1, **kwargs):
    kwargs.setdefault("n_seeds", 6)
    kwargs.setdefault("per_seed", 5)
    return B.build_surrogate(images, path, torch.Generator().manual_seed(seed), **kwargs)


def test_file_layout_loads_in_t7(tmp_path):
    images = smooth_images(20)
    info = build_file(tmp_path / "s.t7b", images)
    obj = t7.load(tmp_path / "s.t7b")
    assert list(obj) == ["data", "labels", "seeds", "boxes", "transforms", "transform_columns",
                         "preset"]
    assert obj["preset"] == "report" and B.load(tmp_path / "s.t7b").preset == "report"
    assert obj["data"].dtype == torch.uint8 and obj["data"].shape == (30, 3, 32, 32)
    assert obj["labels"].dtype == torch.int64
    assert torch.equal(obj["labels"], torch.arange(1, 7).repeat_interleave(5))
    assert obj["seeds"].dtype == torch.int64 and obj["seeds"].shape == (6,)
    assert torch.equal(obj["seeds"], info["seeds"] + 1)  # 1-based, as Lua indexes extra
    assert len(set(obj["seeds"].tolist())) == 6 and obj["seeds"].min() >= 1 and obj["seeds"].max() <= 20
    assert obj["boxes"].shape == (6, 3) and obj["transforms"].shape == (30, 12)
    assert obj["transform_columns"] == list(T.COLUMNS)


def test_streamed_file_is_byte_identical_to_t7_save(tmp_path):
    images = smooth_images(20)
    build_file(tmp_path / "s.t7b", images)
    obj = t7.load(tmp_path / "s.t7b")
    table = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in obj.items()}
    assert (tmp_path / "s.t7b").read_bytes() == t7.dumps(table)


def test_every_patch_of_class_c_comes_from_seed_c(tmp_path):
    images = smooth_images(20)
    build_file(tmp_path / "s.t7b", images, n_seeds=5, per_seed=4, preset="exemplar")
    s = B.load(tmp_path / "s.t7b")
    assert s.preset == "exemplar" and (s.transforms[:, COL["hue"]] != 0).all()
    assert s.n_classes == 5
    for i in range(len(s.images)):
        c = int(s.labels[i])
        again = B.render(images[s.seeds[c]:s.seeds[c] + 1], s.boxes[c:c + 1],
                         s.transforms[i].double().view(1, 1, -1), 32, color=True)
        # transforms are stored as float32: at most a rounding step apart
        assert (again[0, 0].float() - s.images[i].float()).abs().max() <= 2
        other = (c + 1) % 5
        wrong = B.render(images[s.seeds[other]:s.seeds[other] + 1], s.boxes[other:other + 1],
                         s.transforms[i].double().view(1, 1, -1), 32, color=True)
        assert (wrong[0, 0].float() - s.images[i].float()).abs().mean() > 3


def test_same_seed_same_bytes_whatever_the_grouping_and_threads(tmp_path):
    images = smooth_images(20)
    build_file(tmp_path / "a.t7b", images, seed=5, group=1, workers=1)
    build_file(tmp_path / "b.t7b", images, seed=5, group=4, workers=1)
    build_file(tmp_path / "c.t7b", images, seed=5, group=2, workers=3)
    build_file(tmp_path / "d.t7b", images, seed=6)
    a = (tmp_path / "a.t7b").read_bytes()
    assert a == (tmp_path / "b.t7b").read_bytes() == (tmp_path / "c.t7b").read_bytes()
    assert a != (tmp_path / "d.t7b").read_bytes()
    assert torch.get_num_threads() == THREADS  # the worker path restores torch's setting


THREADS = torch.get_num_threads()


def test_build_refuses_too_many_seeds(tmp_path):
    with pytest.raises(A2Error, match="--classes 30"):
        build_file(tmp_path / "s.t7b", smooth_images(20), n_seeds=30)
    assert not (tmp_path / "s.t7b").exists()


@pytest.mark.parametrize("table,message", [
    ([1, 2], "expected a table"),
    ({"data": torch.zeros(2, 3, 4, 4, dtype=torch.uint8)}, "'labels' missing"),
    ({"data": torch.zeros(2, 4, 4, dtype=torch.uint8), "labels": torch.ones(2, dtype=torch.long),
      "seeds": torch.ones(1, dtype=torch.long)}, "ByteTensor N x 3 x P x P"),
    ({"data": torch.zeros(2, 3, 4, 4, dtype=torch.uint8), "labels": torch.tensor([1, 3]),
      "seeds": torch.ones(2, dtype=torch.long)}, "should hold 1..2"),
])
def test_load_rejects_other_layouts(tmp_path, table, message):
    t7.save(table, tmp_path / "bad.t7b")
    with pytest.raises(A2Error, match=message):
        B.load(tmp_path / "bad.t7b")


def test_augmentation_examples_rows_start_with_the_seed_patch():
    images = smooth_images(10, size=40)
    ex = B.augmentation_examples(images, 3, 4, torch.Generator().manual_seed(1),
                                 ranges=T.TransformRanges(color=False), window=(32, 32))
    assert ex.shape == (3, 5, 3, 32, 32) and ex.dtype == torch.uint8
    # a 32-pixel window at scale 1 is an exact crop of some image
    for row in ex:
        seed_patch = row[0]
        windows = images.unfold(2, 32, 1).unfold(3, 32, 1)  # (N, 3, 9, 9, 32, 32)
        hits = (windows == seed_patch.view(1, 3, 1, 1, 32, 32)).flatten(4).all(-1).all(1)
        assert hits.any()


def test_gradient_sampling_on_real_stl10_images(oracle):
    """On 246 real STL-10 unlabelled images the weighted windows avoid flat regions."""
    from luatorch_port.data import load_split
    images = load_split(oracle("fetched", "stl10", "real_extra_246.t7b")).images
    assert images.shape == (246, 3, 96, 96)

    def energy(boxes):
        grey = images.double().mean(1)
        e = grey.diff(dim=2)[:, :-1, :] ** 2 + grey.diff(dim=1)[:, :, :-1] ** 2
        out = []
        for i, (x0, y0, size) in enumerate(boxes.long().tolist()):
            out.append(e[i, y0:y0 + size - 1, x0:x0 + size - 1].mean())
        return torch.stack(out)

    weighted = energy(B.seed_windows(images, torch.Generator().manual_seed(1)))
    uniform = energy(B.seed_windows(images, torch.Generator().manual_seed(1), gradient=False))
    assert weighted.mean() > 1.1 * uniform.mean()
    flat = uniform.quantile(0.2)  # the flattest fifth of uniform windows (sky, walls)
    assert (weighted < flat).sum() < 0.7 * (uniform < flat).sum()  # measured 26 against 49


def test_augmentation_examples_with_no_transformations_is_just_seed_patches():
    ex = B.augmentation_examples(smooth_images(4), 2, 0, torch.Generator().manual_seed(1))
    assert ex.shape == (2, 1, 3, 32, 32)


def test_render_geometry_of_other_channel_counts():
    images = smooth_images(2)
    four = torch.cat([images, images[:, :1]], dim=1)  # 4 channels
    p = T.sample_params(6, T.TransformRanges(color=False), torch.Generator().manual_seed(16)).view(2, 3, -1)
    boxes = torch.tensor([[20.0, 30.0, 32.0], [10.0, 5.0, 48.0]])
    out = B.render(four, boxes, p, 32, color=False)
    assert out.shape == (2, 3, 4, 32, 32)
    assert torch.equal(out[:, :, :3], B.render(images, boxes, p, 32, color=False))
    assert torch.equal(out[:, :, 3], out[:, :, 0])
    with pytest.raises(A2Error, match="3 channels"):
        B.render(four, boxes, p, 32, color=True)


def test_render_refuses_float_images():
    with pytest.raises(A2Error, match="uint8"):
        B.render(smooth_images(1).float(), BOX, params_with(), 32)


def test_standard_settings_name_things_the_library_has():
    from luatorch_port.nn import build_model
    from luatorch_port.surrogate.settings import STANDARD
    from luatorch_port.train import TrainConfig

    s = STANDARD
    assert s["preset"] in T.PRESETS and 2 <= s["window"][0] <= s["window"][1] <= 96
    model = build_model(s["model"], n_classes=s["classes"], input_size=s["patch"])
    assert list(model.children())[-2].out_features == s["classes"]
    TrainConfig(batch_size=s["batch_size"], learning_rate=s["learning_rate"], weight_decay=s["weight_decay"],
                momentum=s["momentum"], epoch_step=s["epoch_step"], max_epoch=s["epochs"]).validate()
    assert 0 < s["val_per_seed"] < s["per_seed"] and s["C"] > 0


@pytest.mark.parametrize("scale,mirrored", [((0.7, 1.4), True), ((0.3, 0.4), True), ((0.1, 0.12), False)],
                         ids=["report", "zoomed-out", "beyond-the-margin"])
def test_mirrored_padding_samples_as_reflection_padding(scale, mirrored):
    """Images padded with mirrored pixels, sampled with border padding = grid_sample's
    reflection padding (to float32 rounding); too far out, render falls back to the latter."""
    images = smooth_images(3)
    g = torch.Generator().manual_seed(21)
    boxes = B.seed_windows(images, g)
    params = T.sample_params(3 * 20, T.preset("report", scale=scale), g)
    theta = T.affine_thetas(boxes.repeat_interleave(20, 0), params, 96, 96)
    margin = B.mirror_margin(theta, 16, 96, 96)
    assert margin == -1 if not mirrored else (margin > 0 and margin % 48 == 0)
    expected = T.sample(images.float(), T.affine_grid(theta, 16).view(3, 20 * 16, 16, 2), "reflection")
    if mirrored:
        assert T.reach(theta, 16, 96, 96) <= margin
        padded = T.pad_mirrored(images, margin).float()
        grid = T.affine_grid(T.theta_in_padded(theta, margin, 96, 96), 16)
        assert grid.abs().max() < 1                          # never reaches the padded edge
        got = T.sample(padded, grid.view(3, 20 * 16, 16, 2), "border")
        assert (got - expected).abs().max() < 1e-3
    rendered = B.render(images, boxes, params.view(3, 20, -1), 16, color=False)
    want = expected.view(3, 3, 20, 16, 16).transpose(1, 2).round()
    assert (rendered.float() - want).abs().max() <= 1


def test_mirror_indices_repeat_the_edge_pixel_and_reach_is_zero_inside():
    assert T.mirror_indices(-3, 2, 4).tolist() == [2, 1, 0, 0, 1, 2]
    assert T.mirror_indices(2, 9, 4).tolist() == [2, 3, 3, 2, 1, 0, 0, 1]
    images = torch.arange(2 * 3 * 5 * 4, dtype=torch.uint8).view(2, 3, 5, 4)
    for margin in (1, 4, 9):                                 # copies up to a side, then a gather
        rows, cols = T.mirror_indices(-margin, 4 + margin, 5), T.mirror_indices(-margin, 3 + margin, 4)
        assert torch.equal(T.pad_mirrored(images, margin), images[:, :, rows][:, :, :, cols])
    centre = T.affine_thetas(torch.tensor([[32.0, 32.0, 32.0]]), torch.tensor([T.IDENTITY]), 96, 96)
    assert T.reach(centre, 32, 96, 96) == 0
    edge = T.affine_thetas(torch.tensor([[0.0, 0.0, 32.0]]), torch.tensor([T.IDENTITY]), 96, 96)
    assert 1 <= T.reach(edge, 32, 96, 96) <= 2             # samples at pixel 0, one spared
