"""The course layout: load_split/scan_split/save_split against Torch7 files, torchfile and t7."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from luatorch_port import t7
from luatorch_port.data import (CLASS_NAMES, EXTRA, LABELLED, load_split, save_split,
                                scan_split)
from luatorch_port.util.errors import A2Error


def imgs(n, shape=(3, 8, 6), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n,) + shape, generator=g, dtype=torch.uint8)


def flatten(obj):
    return [img for table in obj["data"] for img in table]


# -- the Torch7 oracle -------------------------------------------------------------------------
@pytest.mark.parametrize("parts, layout, n, labels", [
    (("fetched", "stl10", "real_test_1perclass.t7b"), LABELLED, 10, list(range(10))),
    (("fetched", "stl10", "real_extra_246.t7b"), EXTRA, 246, None),
    (("made", "misc", "mini_train.t7b"), LABELLED, 30, [c for c in range(10) for _ in range(3)]),
])
def test_oracle_files_load_with_their_stored_pixels(oracle, parts, layout, n, labels):
    path = oracle(*parts)
    split = load_split(path)
    assert split.layout == layout
    assert split.images.shape == (n, 3, 96, 96) and split.images.dtype == torch.uint8
    assert torch.equal(split.images, torch.stack(flatten(t7.load(path))))
    if labels is None:
        assert split.labels is None and split.classes == list(CLASS_NAMES)
    else:
        assert split.labels.tolist() == labels and split.labels.dtype == torch.int64
        assert split.classes == list(CLASS_NAMES)


def test_mini_train_keeps_class_and_index_in_pixel_1_1(oracle):
    split = load_split(oracle("made", "misc", "mini_train.t7b"))
    # save_stl_like.lua: t[1][1][1] = class (1-based), t[2][1][1] = index in its class table
    assert split.images[:, 0, 0, 0].tolist() == [c + 1 for c in split.labels.tolist()]
    assert split.images[:, 1, 0, 0].tolist() == [1, 2, 3] * 10


def test_scan_reads_counts_and_shape_without_pixels(oracle):
    info = scan_split(oracle("made", "misc", "mini_train.t7b"))
    assert (info.layout, info.counts, info.image_shape, info.n_images) == \
        (LABELLED, [3] * 10, (3, 96, 96), 30)
    first = scan_split(oracle("fetched", "stl10", "real_extra_246.t7b"), limit=1)
    assert (first.layout, first.counts, first.image_shape) == (EXTRA, [246], (3, 96, 96))


@pytest.mark.parametrize("limit, labels", [
    (4, [0, 1, 2, 3]),
    (12, [0, 0, 1, 1] + list(range(2, 10))),
    (30, [c for c in range(10) for _ in range(3)]),
    (99, [c for c in range(10) for _ in range(3)]),
])
def test_limit_on_a_labelled_split_takes_the_classes_evenly(oracle, limit, labels):
    path = oracle("made", "misc", "mini_train.t7b")
    split, full = load_split(path, limit=limit), load_split(path)
    assert split.labels.tolist() == labels and split.classes == list(CLASS_NAMES)
    for c in set(labels):  # the first images of each class, in file order
        got = split.images[split.labels == c]
        assert torch.equal(got, full.images[full.labels == c][:len(got)])


def test_limit_on_an_extra_split_reads_the_first_images_only(oracle):
    extra = load_split(oracle("fetched", "stl10", "real_extra_246.t7b"), limit=5)
    full = load_split(oracle("fetched", "stl10", "real_extra_246.t7b"))
    assert torch.equal(extra.images, full.images[:5])


def test_save_split_is_byte_exact_with_the_torch7_golden_file(oracle, tmp_path):
    golden = oracle("made", "t7_writer_golden", "table_data_nested_course_layout.t7")
    # {data = {{arange_byte(1, 3,2,2), arange_byte(13, 3,2,2)}, {arange_byte(25, 3,2,2)}}}
    images = torch.arange(1, 37, dtype=torch.uint8).reshape(3, 3, 2, 2)
    save_split(tmp_path / "g.t7", images, [0, 0, 1], n_classes=2)
    assert (tmp_path / "g.t7").read_bytes() == golden.read_bytes()


# -- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize("labelled", [True, False])
def test_round_trip_and_same_bytes_as_the_generic_writer(tmp_path, labelled):
    images = imgs(23)
    labels = torch.arange(23) % 10 if labelled else None
    path = tmp_path / "s.t7b"
    save_split(path, images, labels)
    split = load_split(path)
    if labelled:
        order = torch.sort(labels, stable=True).indices
        assert split.layout == LABELLED
        assert torch.equal(split.images, images[order]) and torch.equal(split.labels, labels[order])
        obj = {"data": [[images[i].clone() for i in order if labels[i] == c] for c in range(10)]}
    else:
        assert split.layout == EXTRA and split.labels is None
        assert torch.equal(split.images, images)
        obj = {"data": [[img.clone() for img in images]]}
    assert path.read_bytes() == t7.dumps(obj)


def test_torchfile_reads_what_save_split_writes(tmp_path):
    torchfile = pytest.importorskip("torchfile")
    images, labels = imgs(12), torch.arange(12) % 10
    save_split(tmp_path / "s.t7b", images, labels)
    obj = torchfile.load(str(tmp_path / "s.t7b"), use_list_heuristic=False)
    data = obj[b"data"]
    got = [np.asarray(data[c + 1][j + 1]) for c in range(10) for j in range(len(data[c + 1]))]
    order = torch.sort(labels, stable=True).indices
    assert np.array_equal(np.stack(got), images[order].numpy())


@pytest.mark.parametrize("make", ["shared_storage", "same_tensor_twice", "transposed"])
def test_images_not_stored_plainly_go_through_the_generic_reader(tmp_path, make):
    a, b, c = imgs(3)
    if make == "shared_storage":  # every image a view of one storage (written once)
        big = imgs(4)
        data, want = [[big[0], big[1]], [big[2], big[3]]], big
    elif make == "same_tensor_twice":  # a reference to an image the fast path copied
        data, want = [[a, b, a], [c]], torch.stack([a, b, a, c])
    else:  # a non-contiguous ByteTensor of the right shape
        t = imgs(1, (3, 6, 8))[0].transpose(1, 2)
        data, want = [[a, t], [b]], torch.stack([a, t, b])
    t7.save({"data": data}, tmp_path / "x.t7b")
    split = load_split(tmp_path / "x.t7b")
    assert torch.equal(split.images, want)
    assert split.class_counts() == [len(data[0]), len(data[1])]


def test_reads_a_binary_file_object(tmp_path):
    save_split(tmp_path / "s.t7b", imgs(5))
    split = load_split(io.BytesIO((tmp_path / "s.t7b").read_bytes()))
    assert torch.equal(split.images, imgs(5))


def test_class_names_file_beside_the_split_names_the_classes(tmp_path):
    save_split(tmp_path / "s.t7b", imgs(3), [0, 1, 2], n_classes=3)
    assert load_split(tmp_path / "s.t7b").classes == ["airplane", "bird", "car"]
    (tmp_path / "class_names.txt").write_text("zero\none\ntwo\n")
    assert load_split(tmp_path / "s.t7b").classes == ["zero", "one", "two"]


# -- errors that name the place ------------------------------------------------------------------
A = imgs(1)[0]
BAD_FILES = [
    ({"data": [[A, A, imgs(1, (3, 4, 4))[0]], [A]]}, None, r"data\[1\]\[3\] is 3x4x4, expected 3x8x6"),
    ({"data": [[A], [A, A.float()]]}, None,
     r"data\[2\]\[2\] is a torch.FloatTensor of size 3x8x6, expected a torch.ByteTensor"),
    ({"data": [[A], []]}, None, r"data\[2\] is an empty table"),
    ({"data": [[A], 7]}, None, r"data\[2\] is the number 7, expected a Lua array"),
    ({"data": [[A, "x"], [A]]}, None, r"data\[1\]\[2\] is the string 'x', expected a 3xHxW"),
    ({"data": [[imgs(1, (8, 6))[0]], [A]]}, None, r"data\[1\]\[1\] is 8x6, expected 3xHxW"),
    ({"data": A}, None, r"data is a torch.ByteTensor of size 3x8x6, expected a table of class"),
    ({"data": [A, A]}, None, r"data\[1\] is a torch.ByteTensor of size 3x8x6, expected a Lua array"),
    ({"data": []}, None, r"data is an empty table"),
    ({"label": [1, 2]}, None, r"has no 'data' field"),
    (A, None, r"the file is a torch.ByteTensor of size 3x8x6, expected a table \{data"),
    ({"data": [[A, A]]}, LABELLED, r"is an extra \(unlabelled\) split.*label 1.*labelled split"),
    ({"data": [[A], [A]]}, EXTRA, r"is a labelled split \(data holds 2 class tables\)"),
]


@pytest.mark.parametrize("obj, expect, message", BAD_FILES)
def test_bad_layouts_raise_one_line_errors_naming_the_place(tmp_path, obj, expect, message):
    path = tmp_path / "bad.t7b"
    t7.save(obj, path)
    with pytest.raises(A2Error, match=message) as err:
        load_split(path, expect=expect)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_truncated_file_names_the_offset(tmp_path):
    save_split(tmp_path / "s.t7b", imgs(3))
    (tmp_path / "cut.t7b").write_bytes((tmp_path / "s.t7b").read_bytes()[:-10])
    with pytest.raises(t7.T7FormatError, match=r"cut.t7b: offset \d+: expected"):
        load_split(tmp_path / "cut.t7b")


@pytest.mark.parametrize("images, labels, message", [
    (imgs(3).float(), None, r"uint8 tensor N x 3 x H x W, got torch.float32 3x3x8x6"),
    (imgs(3, (1, 8, 6)), None, r"got torch.uint8 3x1x8x6"),
    (imgs(0), None, r"images is empty"),
    (imgs(3), [0, 1], r"labels should be 3 integers"),
    (imgs(3), [0, 1, 12], r"labels should be in 0..9, got values 0..12"),
    (imgs(3), [0, 1, 1], r"class 2 \(car, data\[3\] in Lua\) has no images"),
])
def test_save_split_rejects_bad_input(tmp_path, images, labels, message):
    kwargs = {"n_classes": 3} if labels == [0, 1, 1] else {}
    with pytest.raises(A2Error, match=message):
        save_split(tmp_path / "s.t7b", images, labels, **kwargs)
    assert not list(tmp_path.iterdir())


def test_windows_4_byte_long_files_load_through_the_fast_path(tmp_path):
    images = imgs(6)
    t7.save({"data": [[img.clone() for img in images[:3]], [img.clone() for img in images[3:]]]},
            tmp_path / "w.t7b", long_size=4)
    split = load_split(tmp_path / "w.t7b")
    assert torch.equal(split.images, images) and split.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(load_split(tmp_path / "w.t7b", long_size=4).images, images)


@pytest.mark.parametrize("long_size", [8, 4])
def test_plain_files_take_the_fast_path_for_every_image_but_the_first(tmp_path, long_size):
    from luatorch_port.data.layout import _scan
    t7.save({"data": [[img.clone() for img in imgs(7)]]}, tmp_path / "e.t7b", long_size=long_size)
    scanner = _scan(tmp_path / "e.t7b")
    assert (scanner.n, scanner.n_fast, scanner.src.long_size) == (7, 6, long_size)


@pytest.mark.parametrize("odd", ["shape", "reference", "float"])
def test_an_odd_image_inside_a_long_run_is_found_at_its_place(tmp_path, odd):
    images = [img.clone() for img in imgs(40)]
    if odd == "shape":
        images[16] = imgs(1, (3, 4, 4))[0]
    elif odd == "reference":
        images[16] = images[3]
    else:
        images[16] = images[16].float()
    t7.save({"data": [images[:30], images[30:]]}, tmp_path / "x.t7b")
    if odd == "reference":
        split = load_split(tmp_path / "x.t7b")
        assert torch.equal(split.images, torch.stack(images))
        assert split.class_counts() == [30, 10]
        part = load_split(tmp_path / "x.t7b", limit=23)
        assert part.class_counts()[:2] == [13, 10]  # class 2 has only 10: class 1 gets the rest
        assert torch.equal(part.images, torch.cat([split.images[:13], split.images[30:40]]))
    else:
        with pytest.raises(A2Error, match=r"data\[1\]\[17\] is (3x4x4|a torch.FloatTensor)"):
            load_split(tmp_path / "x.t7b")
