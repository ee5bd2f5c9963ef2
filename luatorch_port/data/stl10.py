"""Official STL-10 binaries -> the course's train/val/test/extra.t7b.

Port of the reading in STL-10's ``stl10_input.py`` / ``read_images`` (Coates, Lee, Ng 2011,
https://cs.stanford.edu/~acoates/stl10/): ``*_X.bin`` holds uint8 images of 3 x 96 x 96,
each channel stored column-major (so a row-major read gives the transpose), ``*_y.bin`` one
uint8 label 1..10 per image.

The course's files (the TA's; their split of the 5,000 labelled images was not published):
train 10 x 400 and val 10 x 100 taken per class with a seeded permutation (VAL_FRACTION of
each class to val, the rest to train; indices kept in file order within a class), test
10 x 800 sorted by class (stable), extra the 100,000 unlabelled images in file order.

Deviations: the train/val split is ours (seeded), not the TA's.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..t7.stream import CourseWriter
from ..util.errors import A2Error
from ..util.files import atomic_output
from ..util.progress import Counter

STL10_SHAPE = (3, 96, 96)  # C, H, W of every STL-10 image
STL10_CLASSES = 10
VAL_FRACTION = 1 / 5  # 100 of each class's 500 labelled training images -> val.t7b
CHUNK_IMAGES = 1000  # images per read of unlabeled_X.bin (27.6 MB)
FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin")


@dataclass
class ConvertCounts:
    """Images written per output file (per class for the labelled ones)."""

    train: list
    val: list
    test: list
    extra: int


def _n_images(path):
    per = int(np.prod(STL10_SHAPE))
    size = os.path.getsize(path)
    if size == 0 or size % per:
        raise A2Error(f"{path}: {size} bytes is not a whole number of {per}-byte "
                      f"{'x'.join(map(str, STL10_SHAPE))} images")
    return size // per


def read_labels(path, n_expected=None):
    """``*_y.bin`` -> int64 labels 0..9 (the file holds 1..10)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if n_expected is not None and raw.size != n_expected:
        raise A2Error(f"{path}: {raw.size} labels, but its images file holds {n_expected} images")
    bad = (raw < 1) | (raw > STL10_CLASSES)
    if bad.any():
        i = int(np.argmax(bad))
        raise A2Error(f"{path}: label {raw[i]} at index {i}; expected 1..{STL10_CLASSES}")
    return torch.from_numpy(raw.astype(np.int64) - 1)  # 1-based in the file


def read_images(path, start=0, count=None):
    """Images ``start .. start+count`` of a ``*_X.bin`` as uint8 N x 3 x 96 x 96, upright."""
    n = _n_images(path)
    count = n - start if count is None else min(count, n - start)
    per = int(np.prod(STL10_SHAPE))
    raw = np.fromfile(path, dtype=np.uint8, count=count * per, offset=start * per)
    c, h, w = STL10_SHAPE
    return torch.from_numpy(raw.reshape(count, c, w, h)).transpose(2, 3)  # column-major -> HxW


def split_train_val(labels, generator, val_fraction=VAL_FRACTION):
    """Per class, a seeded choice of ``round(n_c * val_fraction)`` indices for val.

    Returns (train_idx, val_idx), each sorted by class, then by index.
    """
    train, val = [], []
    for c in range(STL10_CLASSES):
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < 2:
            raise A2Error(f"class {c + 1} has {len(idx)} labelled images; need 2 for train + val")
        n_val = min(len(idx) - 1, max(1, round(len(idx) * val_fraction)))
        perm = idx[torch.randperm(len(idx), generator=generator)]
        val.append(torch.sort(perm[:n_val]).values)
        train.append(torch.sort(perm[n_val:]).values)
    return torch.cat(train), torch.cat(val)


def _write_labelled(path, images, labels, order, progress):
    counts = torch.bincount(labels[order], minlength=STL10_CLASSES).tolist()
    with atomic_output(path, "wb") as f:
        writer = CourseWriter(f, counts, STL10_SHAPE)
        tick = Counter(progress, len(order), os.path.basename(path), unit="img")
        for s in range(0, len(order), CHUNK_IMAGES):
            sel = order[s:s + CHUNK_IMAGES]
            writer.write(images[sel].contiguous())
            tick(len(sel))
        writer.close()
    return counts


def convert_stl10(src_dir, out_dir, seed: int = 1, *, progress=None,
                  generator: torch.Generator = None) -> ConvertCounts:
    """Write ``train/val/test/extra.t7b`` in ``out_dir`` from ``src_dir``'s STL-10 binaries.

    Parameters
    ----------
    src_dir : folder with ``train_X.bin``, ``train_y.bin``, ``test_X.bin``, ``test_y.bin``,
        ``unlabeled_X.bin`` (the official ``stl10_binary/``).
    out_dir : created if missing; each file written atomically.
    seed : seeds the train/val split when ``generator`` is not given.
    progress : :class:`~luatorch_port.util.progress.Progress`, optional (one stage per file).

    Memory: train and test are read whole (138 MB, 221 MB); unlabeled_X.bin is streamed
    ``CHUNK_IMAGES`` at a time, so the 2.76 GB of extra is never in memory.
    """
    missing = [f for f in FILES if not os.path.isfile(os.path.join(src_dir, f))]
    if missing:
        raise A2Error(f"{src_dir}: missing {', '.join(missing)} (the official stl10_binary/ "
                      f"holds {', '.join(FILES)})")
    path = {f: os.path.join(src_dir, f) for f in FILES}
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    with output_folder(out_dir):
        return _convert(path, out_dir, generator, progress)


@contextlib.contextmanager
def output_folder(out_dir):
    """``with output_folder(d):`` creates ``d`` if missing and, when the body fails, removes
    it again if it is still empty (a refused run leaves no empty folder behind)."""
    created = not os.path.isdir(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    try:
        yield out_dir
    except BaseException:
        if created:
            try:
                os.rmdir(out_dir)  # only when empty: a partial download is kept for resuming
            except OSError:
                pass
        raise


def _convert(path, out_dir, generator, progress) -> ConvertCounts:

    train_images = read_images(path["train_X.bin"])
    train_labels = read_labels(path["train_y.bin"], len(train_images))
    train_idx, val_idx = split_train_val(train_labels, generator)
    train_counts = _write_labelled(os.path.join(out_dir, "train.t7b"), train_images,
                                   train_labels, train_idx, progress)
    val_counts = _write_labelled(os.path.join(out_dir, "val.t7b"), train_images, train_labels,
                                 val_idx, progress)
    del train_images

    test_images = read_images(path["test_X.bin"])
    test_labels = read_labels(path["test_y.bin"], len(test_images))
    test_order = torch.sort(test_labels, stable=True).indices
    test_counts = _write_labelled(os.path.join(out_dir, "test.t7b"), test_images, test_labels,
                                  test_order, progress)
    del test_images

    n_extra = _n_images(path["unlabeled_X.bin"])
    with atomic_output(os.path.join(out_dir, "extra.t7b"), "wb") as f:
        writer = CourseWriter(f, [n_extra], STL10_SHAPE)
        tick = Counter(progress, n_extra, "extra.t7b", unit="img")
        for s in range(0, n_extra, CHUNK_IMAGES):
            chunk = read_images(path["unlabeled_X.bin"], s, CHUNK_IMAGES)
            writer.write(chunk.contiguous())
            tick(len(chunk))
        writer.close()
    return ConvertCounts(train_counts, val_counts, test_counts, n_extra)
