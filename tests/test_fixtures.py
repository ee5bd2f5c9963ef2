"""The oracle resolver: made/ from the vendored copy (equal to the pack where ../shared is here),
fetched/ from ../shared or $LUATORCH_ORACLE only, and a clean skip where a file is absent; the
sample_data factory."""

from __future__ import annotations

import filecmp

import pytest

import helpers
from helpers import SHARED_ORACLE, VENDORED, oracle_file, oracle_files


def test_vendored_copy_is_complete():
    names = [p for p in VENDORED.rglob("*") if p.is_file()]
    assert (VENDORED / "README.md").exists()
    assert sum(p.suffix == ".t7" for p in names) >= 78 and (VENDORED / "misc" / "mini_train.t7b").exists()


def test_vendored_copy_equals_the_shared_pack():
    made = SHARED_ORACLE / "made"
    if not made.exists():
        pytest.skip(f"shared oracle pack absent: {made}")
    ours = sorted(p.relative_to(VENDORED).as_posix() for p in VENDORED.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(made).as_posix() for p in made.rglob("*") if p.is_file())
    assert ours == theirs
    match, mismatch, errors = filecmp.cmpfiles(VENDORED, made, ours, shallow=False)
    assert (mismatch, errors) == ([], [])


def test_made_resolves_to_the_vendored_copy_without_shared(tmp_path, monkeypatch):
    monkeypatch.setattr(helpers, "SHARED_ORACLE", tmp_path / "nonexistent")
    assert oracle_file("made", "dag_backprop.t7") == VENDORED / "dag_backprop.t7"
    assert oracle_file("fetched", "2015-a2-model", "model.net") is None
    names = oracle_files()
    assert names and all(n.startswith("made/") for n in names)
    assert "made/misc/mini_train.t7b" in names and "made/README.md" not in names


def test_fetched_comes_from_the_shared_pack(tmp_path, monkeypatch):
    (tmp_path / "fetched" / "stl10").mkdir(parents=True)
    (tmp_path / "fetched" / "stl10" / "x.t7b").write_bytes(b"")
    (tmp_path / "made").mkdir()
    (tmp_path / "made" / "only_in_shared.t7").write_bytes(b"")
    monkeypatch.setattr(helpers, "SHARED_ORACLE", tmp_path)
    assert oracle_file("fetched", "stl10", "x.t7b") == tmp_path / "fetched" / "stl10" / "x.t7b"
    assert helpers.shared_pack_present()
    # the vendored copy wins for made/; a made/ file it lacks still resolves in the pack
    assert oracle_file("made", "optim_sgd.t7") == VENDORED / "optim_sgd.t7"
    assert oracle_file("made", "only_in_shared.t7") == tmp_path / "made" / "only_in_shared.t7"
    assert "fetched/stl10/x.t7b" in oracle_files()


def test_an_absent_file_skips_the_test(oracle, tmp_path, monkeypatch):
    monkeypatch.setattr(helpers, "SHARED_ORACLE", tmp_path)
    with pytest.raises(pytest.skip.Exception, match="not present"):
        oracle("fetched", "2015-a2-model", "model.net")
    assert oracle("made", "dag_backprop.t7").exists()


def test_sample_data_gives_fresh_copies_of_one_build(sample_data):
    from luatorch_port.data import load_split

    a, b = sample_data(image_size=8, per_class=18), sample_data(image_size=8, per_class=18)
    assert a != b
    names = sorted(p.name for p in a.iterdir())
    assert {"train.t7b", "val.t7b", "test.t7b", "extra.t7b", "extra_labels.t7"} <= set(names)
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    (a / "train.t7b").write_bytes(b"")  # a module writing in its copy leaves the others alone
    assert len(load_split(b / "train.t7b")) == 40 and len(load_split(b / "extra.t7b")) == 90
    other = sample_data(image_size=8, per_class=18, seed=2)
    assert (other / "train.t7b").read_bytes() != (b / "train.t7b").read_bytes()
