"""The embedded sample dataset: scikit-learn's digits in the exact course layout.

No copy of STL-10 can be downloaded on a fresh machine, so ``a2 data sample`` builds a small
REAL dataset from data that ships inside a dependency: scikit-learn's bundled digits
(``sklearn.datasets.load_digits``: 1,797 real 8x8 greyscale scans, 16 grey levels, classes
0..9; UCI "Optical Recognition of Handwritten Digits"). Each image is upscaled bilinearly
to H x W and painted with a foreground and background colour drawn per image from the
seed, so the RGB -> YUV pipeline has colour to work on; the class is carried by the shape
alone (the colours are drawn independently of the label). Digit d is class d+1 in Lua,
label d here; ``class_names.txt`` beside the files names them ``digit0`` .. ``digit9``.

Split per class with a seeded permutation: 40 train, 10 val, 40 test (2/9, 1/18, 2/9 of a
nominal 180), the remainder extra (shuffled; labels dropped from extra.t7b and kept, 1-based, in extra_labels.t7 for scoring
pseudo-labels). With all 1,797 digits: train 400, val 100, test 400, extra 897.

Deviations: the course images are 96x96 photos; these are 8x8 digits upscaled, ~50 MB at
the default 96x96 (each image is 27 KB); ``image_size=32`` gives a 5.5 MB set for tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch

from ..util.errors import A2Error
from ..t7 import save as t7_save
from ..util.files import atomic_output
from .layout import CLASS_NAMES_FILE, save_split

DIGIT_LEVELS = 16.0  # load_digits pixels are 0..16
TRAIN_FRACTION = 2 / 9  # 40 of ~180 per class, like the course's 400 of 500 train+val ...
VAL_FRACTION = 1 / 18  # ... and 100 of 500 val (4:1)
TEST_FRACTION = 2 / 9
LIGHT = (150.0, 255.0)  # per-channel range of the light colour (foreground or background)
DARK = (0.0, 100.0)  # per-channel range of the dark colour
SPLITS = ("train", "val", "test", "extra")
# Largest --image-size: the course's images are 96; at 256 the four files hold 350 MB of
# pixels, and an 8x8 digit upsampled further shows nothing new.
IMAGE_SIZE = 96  # the course's images are 3x96x96
MAX_IMAGE_SIZE = 256
NOMINAL_PER_CLASS = 180  # load_digits has 174..183 per class
SAMPLE_CLASS_NAMES = tuple(f"digit{d}" for d in range(10))  # class_names.txt: names the data as digits


@dataclass
class SampleCounts:
    """Images written per split (``extra`` is unlabelled)."""

    train: int
    val: int
    test: int
    extra: int


def split_counts(n: int, nominal: int = NOMINAL_PER_CLASS):
    """(train, val, test, extra) for a class with ``n`` images; each at least 1.

    The labelled counts come from ``nominal`` (so every class gets the same), extra takes
    the remainder: with the full digits 40/10/40 and 84..93.
    """
    train = max(1, round(nominal * TRAIN_FRACTION))
    val = max(1, round(nominal * VAL_FRACTION))
    test = max(1, round(nominal * TEST_FRACTION))
    extra = n - train - val - test
    if extra < 1:
        raise A2Error(f"a class of {n} images cannot give {train} train, {val} val, {test} test "
                      "and at least 1 extra image")
    return train, val, test, extra


def _colourise(ink, generator):
    """ink (N, H, W) in 0..1 -> uint8 (N, 3, H, W): bg + (fg - bg) * ink, colours per image."""
    n = ink.shape[0]
    light = LIGHT[0] + (LIGHT[1] - LIGHT[0]) * torch.rand(n, 3, generator=generator)
    dark = DARK[0] + (DARK[1] - DARK[0]) * torch.rand(n, 3, generator=generator)
    dark_on_light = torch.rand(n, generator=generator) < 0.5
    fg = torch.where(dark_on_light[:, None], dark, light)
    bg = torch.where(dark_on_light[:, None], light, dark)
    out = torch.empty((n, 3) + tuple(ink.shape[1:]), dtype=torch.uint8)
    for s in range(0, n, 256):  # chunks keep the float temporaries small
        e = s + 256
        mix = bg[s:e, :, None, None] + (fg - bg)[s:e, :, None, None] * ink[s:e, None]
        out[s:e] = mix.round_().clamp_(0, 255)
    return out


def make_sample_images(seed: int = 1, image_size: int = 96, per_class: Optional[int] = None):
    """The digits as (images uint8 N x 3 x S x S, labels int64 N, split name per image).

    ``per_class`` keeps only that many digits of each class (a smaller set for tests).
    """
    from sklearn.datasets import load_digits

    if image_size < 8:
        raise A2Error(f"image_size={image_size} should be >= 8 (the digits are 8x8)")
    digits = load_digits()
    pixels = torch.from_numpy(digits.images).to(torch.float32) / DIGIT_LEVELS
    target = torch.from_numpy(digits.target).to(torch.int64)
    gen = torch.Generator().manual_seed(seed)
    chosen, names = [], []
    for c in range(10):
        idx = torch.nonzero(target == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        if per_class is not None:
            if per_class < 4:
                raise A2Error(f"per_class={per_class} should be >= 4 (one image per split)")
            if per_class > len(idx):
                raise A2Error(f"per_class={per_class} is more than the {len(idx)} digits of "
                              f"class {c}")
            idx = idx[:per_class]
        counts = split_counts(len(idx), per_class or NOMINAL_PER_CLASS)
        start = 0
        for name, m in zip(SPLITS, counts):
            part = torch.sort(idx[start:start + m]).values
            chosen.append(part)
            names += [name] * m
            start += m
    order = torch.cat(chosen)
    ink = torch.nn.functional.interpolate(pixels[order][:, None], size=(image_size, image_size),
                                          mode="bilinear", align_corners=False)[:, 0]
    images = _colourise(ink.clamp_(0, 1), gen)
    return images, target[order], names


def build_sample(out_dir, seed: int = 1, *, image_size: int = IMAGE_SIZE,
                 per_class: Optional[int] = None) -> SampleCounts:
    """Write train/val/test/extra.t7b and extra_labels.t7 of the digits sample to ``out_dir``.

    Parameters
    ----------
    out_dir : str or PathLike
        Created if missing; files are written atomically.
    seed : int
        Drives the split and the colours; the same seed gives the same bytes.
    image_size : int
        Side of the square images (default 96, the course's).
    per_class : int, optional
        Digits used per class (default all, ~180); ``per_class=18`` gives 4/1/4/9 per
        class, 40/10/40/90 in all.

    Returns
    -------
    SampleCounts
    """
    images, labels, names = make_sample_images(seed, image_size, per_class)
    gen = torch.Generator().manual_seed(seed + 1)
    os.makedirs(out_dir, exist_ok=True)
    counts = {}
    for split in SPLITS:
        mask = torch.tensor([n == split for n in names])
        path = os.path.join(out_dir, f"{split}.t7b")
        if split == "extra":  # shuffled: the first N of extra should not all be zeros
            sel = torch.nonzero(mask).flatten()
            sel = sel[torch.randperm(len(sel), generator=gen)]
            save_split(path, images[sel])
            t7_save(labels[sel] + 1, os.path.join(out_dir, "extra_labels.t7"))  # 1-based
        else:
            save_split(path, images[mask], labels[mask], n_classes=10)
        counts[split] = int(mask.sum())
    with atomic_output(os.path.join(out_dir, CLASS_NAMES_FILE), "w") as f:
        f.write("".join(f"{name}\n" for name in SAMPLE_CLASS_NAMES))
    return SampleCounts(**counts)
