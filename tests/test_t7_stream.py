"""t7.stream: the ByteTensor record format, the scanner on the reader's source, CourseWriter.

The course layout itself (Split, labels, its error messages, the golden file) is tested in
test_data.py; here the streaming pieces are driven by a layout that is not the course's.
"""

from __future__ import annotations

import io

import pytest
import torch

from luatorch_port import t7
from luatorch_port.t7.reader import _Binary
from luatorch_port.t7.stream import (ByteTensorRecord, ByteTensorScanner, CourseWriter,
                                     StreamSource, scan)
from luatorch_port.util.errors import A2Error


def imgs(n, shape=(2, 5, 7), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n,) + shape, generator=g, dtype=torch.uint8)


class FlatScanner(ByteTensorScanner):
    """A root that is itself one Lua array of tensors: ``{t1, ..., tN}``."""

    def read_root(self):
        self.read_array("root", self.table_header("the file", "an array of tensors"))


@pytest.mark.parametrize("long_size", [8, 4])
def test_record_is_the_bytes_the_generic_writer_writes(long_size):
    img = imgs(1)[0]
    data = t7.dumps([img.clone(), img.clone()], long_size=long_size)
    rec = ByteTensorRecord(img.shape, long_size)
    head = 12  # the root table: tag, index 1, two entries
    second = head + rec.size + rec.nbytes
    assert data[head:head + rec.size] == rec.pack(1, 2)
    assert data[head + rec.size:second] == img.numpy().tobytes()
    assert data[second:second + rec.size] == rec.pack(2, 4)
    assert len(data) == second + rec.size + rec.nbytes


@pytest.mark.parametrize("long_size", [8, 4])
def test_scanner_reads_another_layout_on_the_readers_source(tmp_path, long_size):
    images = imgs(40)
    t7.save([img.clone() for img in images], tmp_path / "flat.t7", long_size=long_size)
    s = scan(tmp_path / "flat.t7", lambda src, name: FlatScanner(src, name=name))
    assert isinstance(s.src, StreamSource) and isinstance(s.src, _Binary)
    assert s.src.long_size == long_size
    assert torch.equal(s.images_read(), images)
    assert (s.n, s.n_fast) == (40, 39)  # the first one sets the shape through the generic reader


def ascii_array(images) -> bytes:
    """``torch.save(path, {t1, ..., tN}, 'ascii')`` for fresh contiguous 3-D ByteTensors
    (the token layout of the oracle's ascii/ files)."""
    out = [b"3\n1\n%d\n" % len(images)]
    for i, img in enumerate(images, 1):
        c, h, w = img.shape
        out.append(b"1\n%d\n4\n%d\n3\nV 1\n16\ntorch.ByteTensor\n3\n%d %d %d\n%d %d 1\n1\n"
                   % (i, 2 * i, c, h, w, h * w, w))
        out.append(b"4\n%d\n3\nV 1\n17\ntorch.ByteStorage\n%d\n" % (2 * i + 1, img.numel()))
        out.append(img.numpy().tobytes() + b"\n")
    return b"".join(out)


def test_scanner_reads_an_ascii_file_through_the_generic_reader(tmp_path):
    images = imgs(4)
    (tmp_path / "a.t7").write_bytes(ascii_array(images))
    assert torch.equal(torch.stack(t7.load(tmp_path / "a.t7")), images)
    s = scan(tmp_path / "a.t7", lambda src, name: FlatScanner(src, name=name))
    assert not isinstance(s.src, StreamSource)
    assert torch.equal(s.images_read(), images) and s.n_fast == 0


def test_scanner_limit_stops_reading(tmp_path):
    images = imgs(40)
    t7.save([img.clone() for img in images], tmp_path / "flat.t7")
    s = scan(tmp_path / "flat.t7", lambda src, name: FlatScanner(src, name=name, limit=5))
    assert torch.equal(s.images_read(), images[:5])
    assert s.src.pos < s.src.n


def test_scanner_refers_back_to_a_tensor_the_fast_path_copied(tmp_path):
    a, b, c = (img.clone() for img in imgs(3))
    t7.save([a, b, c, b], tmp_path / "flat.t7")
    s = scan(tmp_path / "flat.t7", lambda src, name: FlatScanner(src, name=name))
    assert torch.equal(s.images_read(), torch.stack([a, b, c, b]))
    assert s.n_fast == 2


@pytest.mark.parametrize("obj, message", [
    ([imgs(1)[0], torch.zeros(5, 7, dtype=torch.uint8)], r"root\[2\] is 5x7, expected 2x5x7"),
    ([torch.zeros(5, 7, dtype=torch.uint8)], r"root\[1\] is 5x7, expected CxHxW"),
    (["x"], r"root\[1\] is the string 'x', expected a 3-D torch.ByteTensor"),
    ({"a": 1}, r"root has the key 'a'; expected each of 1..1 once"),
    (3.5, r"the file is the number 3.5, expected an array of tensors"),
])
def test_scanner_errors_name_the_file_and_the_place(tmp_path, obj, message):
    t7.save(obj, tmp_path / "bad.t7")
    with pytest.raises(A2Error, match=message) as err:
        scan(tmp_path / "bad.t7", lambda src, name: FlatScanner(src, name=name))
    assert str(err.value).startswith(f"{tmp_path / 'bad.t7'}: ")


def test_scan_of_an_empty_file_names_what_was_expected(tmp_path):
    (tmp_path / "empty.t7").write_bytes(b"")
    with pytest.raises(A2Error, match=r"empty.t7: the file is empty; expected tensors"):
        scan(tmp_path / "empty.t7", FlatScanner, what="tensors")


def test_course_writer_streams_what_dumps_writes_and_counts():
    images = imgs(5)
    buf = io.BytesIO()
    w = CourseWriter(buf, [2, 3], images.shape[1:])
    w.write(images[:1])
    w.write(images[1:])
    w.close()
    expect = {"data": [[img.clone() for img in images[:2]], [img.clone() for img in images[2:]]]}
    assert buf.getvalue() == t7.dumps(expect)
    with pytest.raises(A2Error, match="more images than the 5 declared"):
        w.write(images[:1])
    short = CourseWriter(io.BytesIO(), [2, 3], images.shape[1:])
    short.write(images[:4])
    with pytest.raises(A2Error, match="wrote 4 images, but the tables declare 5"):
        short.close()
