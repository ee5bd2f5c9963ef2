"""util.provenance: the run record and the git revision it names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from luatorch_port.util.provenance import CHECKOUT, git_revision, write_record


def test_no_revision_outside_a_checkout(tmp_path):
    assert git_revision(tmp_path) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="no git")
def test_revision_of_a_checkout_and_its_dirty_mark(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f.txt").write_text("one\n")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    sha = git_revision(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", sha)
    (tmp_path / "f.txt").write_text("two\n")
    assert git_revision(tmp_path) == sha + "-dirty"


def test_record_names_the_revision_of_the_code(tmp_path):
    record = write_record(tmp_path / "run.json", "x", {"a": 1})
    assert json.loads((tmp_path / "run.json").read_text())["git"] == record["git"] == git_revision(CHECKOUT)
