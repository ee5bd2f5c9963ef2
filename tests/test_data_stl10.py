"""STL-10 binaries -> course files (convert), download + MD5 + convert (fetch), the digits sample."""

from __future__ import annotations

import hashlib
import tarfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from luatorch_port import t7
from luatorch_port.cli import cli
from luatorch_port.data import build_sample, convert_stl10, fetch_stl10, load_split
from luatorch_port.data.fetch import STL10_MD5
from luatorch_port.data.sample import make_sample_images
from luatorch_port.util.errors import A2Error

from helpers import N_UNLABELED, TEST_PER_CLASS, TRAIN_PER_CLASS, write_fake_stl10


def md5s_of(folder):
    return {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in STL10_MD5}


def test_convert_gives_upright_images_and_exact_class_counts(tmp_path):
    labels = write_fake_stl10(tmp_path / "bin")
    counts = convert_stl10(tmp_path / "bin", tmp_path / "out", seed=3)
    train, val = load_split(tmp_path / "out" / "train.t7b"), load_split(tmp_path / "out" / "val.t7b")
    test, extra = load_split(tmp_path / "out" / "test.t7b"), load_split(tmp_path / "out" / "extra.t7b")
    assert train.class_counts() == [4] * 10 and val.class_counts() == [1] * 10  # 4:1 as 400:100
    assert test.class_counts() == [3] * 10 and len(extra) == N_UNLABELED
    assert (counts.train, counts.val, counts.test, counts.extra) == ([4] * 10, [1] * 10, [3] * 10, 7)
    for split in (train, val, test, extra):
        assert (split.images[:, 0, 0, 5] == 255).all() and split.images[:, 0, 5, 0].sum() == 0
    for split in (train, val, test):  # the label written in the pixels agrees with the table
        assert torch.equal(split.images[:, 1, 90, 2].long(), split.labels + 1)
    # train and val partition the labelled images; test is sorted by class, stable
    ids = torch.cat([train.images[:, 2, 95, 95], val.images[:, 2, 95, 95]]).sort().values
    assert ids.tolist() == list(range(10 * TRAIN_PER_CLASS))
    want = np.argsort(labels["test"], kind="stable")
    assert test.images[:, 2, 95, 95].tolist() == want.tolist()
    assert extra.images[:, 2, 95, 95].tolist() == list(range(N_UNLABELED))
    assert (extra.images[:, 2, 95, 94] == 3).all()


def test_convert_reports_progress_per_file(tmp_path):
    write_fake_stl10(tmp_path / "bin")
    calls = []
    convert_stl10(tmp_path / "bin", tmp_path / "out", seed=3,
                  progress=lambda done, total, **info: calls.append((info["stage"], done, total)))
    last = {}
    for stage, done, total in calls:
        assert done >= last.get(stage, 0)
        last[stage] = done
    assert [c[0] for c in calls if c[1] == 0] == ["train.t7b", "val.t7b", "test.t7b", "extra.t7b"]
    assert last == {"train.t7b": 40, "val.t7b": 10, "test.t7b": 30, "extra.t7b": N_UNLABELED}
    assert all(total == last[stage] for stage, _, total in calls)


def test_convert_split_depends_on_the_seed_only(tmp_path):
    write_fake_stl10(tmp_path / "bin")
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        convert_stl10(tmp_path / "bin", tmp_path / name, seed=seed)
    same = (tmp_path / "a" / "val.t7b").read_bytes() == (tmp_path / "b" / "val.t7b").read_bytes()
    differ = (tmp_path / "a" / "val.t7b").read_bytes() != (tmp_path / "c" / "val.t7b").read_bytes()
    assert same and differ


@pytest.mark.parametrize("damage, message", [
    ("missing", r"missing unlabeled_X.bin"),
    ("short", r"test_X.bin: \d+ bytes is not a whole number of 27648-byte 3x96x96 images"),
    ("label", r"train_y.bin: label 11 at index 0; expected 1..10"),
])
def test_convert_rejects_damaged_binaries(tmp_path, damage, message):
    folder = tmp_path / "bin"
    write_fake_stl10(folder)
    if damage == "missing":
        (folder / "unlabeled_X.bin").unlink()
    elif damage == "short":
        (folder / "test_X.bin").write_bytes((folder / "test_X.bin").read_bytes()[:-1])
    else:
        y = np.fromfile(folder / "train_y.bin", dtype=np.uint8)
        y[0] = 11
        y.tofile(folder / "train_y.bin")
    with pytest.raises(A2Error, match=message):
        convert_stl10(folder, tmp_path / "out")


@pytest.fixture
def fake_tarball(tmp_path):
    write_fake_stl10(tmp_path / "src" / "stl10_binary")
    (tmp_path / "src" / "stl10_binary" / "class_names.txt").write_text("airplane\n")
    archive = tmp_path / "stl10_binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "stl10_binary", arcname="stl10_binary")
    return archive, md5s_of(tmp_path / "src" / "stl10_binary")


def test_fetch_downloads_verifies_and_converts_from_a_file_url(tmp_path, fake_tarball):
    archive, md5s = fake_tarball
    out = tmp_path / "out"
    out.mkdir()
    (out / "stl10_binary.tar.gz.part").write_bytes(b"stale partial download")
    counts = fetch_stl10(out, url=archive.as_uri(), md5s=md5s, keep_archive=False)
    assert counts.extra == N_UNLABELED
    assert sorted(p.name for p in out.iterdir()) == ["extra.t7b", "test.t7b", "train.t7b",
                                                     "val.t7b"]
    assert load_split(out / "test.t7b").class_counts() == [3] * 10


def test_fetch_with_a_wrong_md5_stops_and_leaves_no_files(tmp_path, fake_tarball):
    archive, _ = fake_tarball
    result = CliRunner().invoke(cli, ["data", "fetch", str(tmp_path / "out"), "--url",
                                      archive.as_uri(), "--quiet"])
    assert result.exit_code == 1
    assert "Error: " in result.stderr and "has MD5" in result.stderr
    assert any(f"expected {md5} " in result.stderr for md5 in STL10_MD5.values())  # official
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # created by the command, removed again


def test_fetch_cli_with_md5_overrides_writes_the_course_files(tmp_path, fake_tarball):
    archive, md5s = fake_tarball
    args = ["data", "fetch", str(tmp_path / "out"), "--url", archive.as_uri(), "--quiet"]
    args += [a for name, md5 in md5s.items() for a in ("--md5", f"{name}={md5}")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["extra.t7b", "run.json", "stl10_binary.tar.gz", "test.t7b",
                     "train.t7b", "val.t7b"]


def test_fetch_from_a_missing_url_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["data", "fetch", str(tmp_path / "out"), "--url",
                                      (tmp_path / "nothing.tar.gz").as_uri(), "--quiet"])
    assert result.exit_code == 1 and result.stderr.startswith("Error: file://")


# -- the embedded digits sample --------------------------------------------------------------------
def test_sample_default_counts_are_the_documented_ones():
    images, labels, names = make_sample_images(seed=1, image_size=8)
    count = {s: names.count(s) for s in ("train", "val", "test", "extra")}
    assert count == {"train": 400, "val": 100, "test": 400, "extra": 897}
    assert images.shape == (1797, 3, 8, 8) and images.dtype == torch.uint8
    for split in ("train", "val", "test"):
        per_class = torch.bincount(labels[[n == split for n in names]], minlength=10)
        assert per_class.tolist() == [{"train": 40, "val": 10, "test": 40}[split]] * 10


def test_sample_colours_carry_no_label_and_keep_the_digit_shape():
    images, labels, _ = make_sample_images(seed=1, image_size=8)
    from sklearn.datasets import load_digits
    digits = load_digits()
    # at 8x8 the upscale is the identity: the ink pattern is the digit itself, in colour
    x = images.float()
    lo, hi = x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
    ink = ((x - lo) / (hi - lo).clamp_min(1)).mean(1)
    ink = torch.where(ink.mean((1, 2), keepdim=True) > 0.5, 1 - ink, ink)  # light on dark
    # each sample image matches some digit of its class closely (best match over the class)
    ref = torch.from_numpy(digits.images).float() / 16
    for i in range(0, 1797, 199):
        cls = ref[torch.from_numpy(digits.target) == labels[i]]
        err = (cls - ink[i]).abs().mean((1, 2)).min()
        assert err < 0.03
    # colour means do not separate classes: class-mean colours differ by little
    means = torch.stack([x[labels == c].mean((0, 2, 3)) for c in range(10)])
    assert (means.amax(0) - means.amin(0)).max() < 25


def test_build_sample_small_is_deterministic_and_in_course_layout(tmp_path):
    a = build_sample(tmp_path / "a", seed=5, image_size=16, per_class=9)
    build_sample(tmp_path / "b", seed=5, image_size=16, per_class=9)
    build_sample(tmp_path / "c", seed=6, image_size=16, per_class=9)
    assert (a.train, a.val, a.test, a.extra) == (20, 10, 20, 40)
    for name in ("train.t7b", "val.t7b", "test.t7b", "extra.t7b", "extra_labels.t7"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "extra.t7b").read_bytes() != (tmp_path / "c" / "extra.t7b").read_bytes()
    test = load_split(tmp_path / "a" / "test.t7b", expect="labelled")
    assert test.class_counts() == [2] * 10 and test.classes[3] == "digit3"
    assert test.images.shape[1:] == (3, 16, 16)
    extra = load_split(tmp_path / "a" / "extra.t7b", expect="extra")
    assert extra.classes == [f"digit{d}" for d in range(10)]
    hidden = t7.load(tmp_path / "a" / "extra_labels.t7")
    assert hidden.dtype == torch.int64 and len(hidden) == len(extra) == 40
    assert torch.bincount(hidden - 1, minlength=10).tolist() == [4] * 10  # 1-based, 9-2-1-2 each
    assert hidden[:10].tolist() != sorted(hidden[:10].tolist())  # shuffled, not class-sorted


@pytest.fixture
def http_server():
    """A local HTTP server for one payload; ``ranges`` says whether it honours Range."""
    import http.server
    import threading

    state = {"payload": b"", "ranges": True, "requests": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            header = self.headers.get("Range")
            state["requests"].append(header)
            body, status = state["payload"], 200
            if header and state["ranges"]:
                start = int(header.split("=")[1].rstrip("-"))
                body, status = body[start:], 206
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/stl10_binary.tar.gz"
    yield state
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("ranges", [True, False])
def test_fetch_resumes_a_partial_download_over_http(tmp_path, fake_tarball, http_server, ranges):
    from luatorch_port.data.fetch import download
    archive, _ = fake_tarball
    payload = archive.read_bytes()
    http_server.update(payload=payload, ranges=ranges)
    out = tmp_path / "dl"
    out.mkdir()
    half = len(payload) // 2
    (out / "a.tar.gz.part").write_bytes(payload[:half])
    download(http_server["url"], str(out / "a.tar.gz"))
    assert (out / "a.tar.gz").read_bytes() == payload and not (out / "a.tar.gz.part").exists()
    assert http_server["requests"] == [f"bytes={half}-"]
