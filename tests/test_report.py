"""`a2 report`: every section end to end on tiny data, the numbers behind the report, resume."""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from luatorch_port.cli import cli
from luatorch_port.report import BUDGETS, SECTIONS, load_states, render_report, run_report
from luatorch_port.report import sections as S

METHODS = ("baseline", "surrogate", "kmeans", "pseudolabel", "combo")


@pytest.fixture(scope="module")
def data(sample_data):
    return sample_data(image_size=32, per_class=36)  # 80/20/80/180 images of 3x32x32


@pytest.fixture(scope="module")
def tiny_report(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(cli, ["report", str(data), "--out", str(out), "--budget", "tiny", "--quiet"])
    return out, result


def test_budgets_cover_every_section():
    keys = set(BUDGETS["tiny"])
    for name, sections in BUDGETS.items():
        assert set(sections) == keys, name
        for section, values in sections.items():
            assert set(values) == set(BUDGETS["tiny"][section]), (name, section)
    assert BUDGETS["full"]["kmeans"]["k"] == 1600 and BUDGETS["full"]["kmeans"]["patches"] == 400000
    assert BUDGETS["full"]["surrogate"]["classes"] == 4000 and BUDGETS["full"]["surrogate"]["per_seed"] == 100


@pytest.mark.slow
def test_tiny_report_end_to_end(tiny_report, data):
    from luatorch_port.data import load_split
    from luatorch_port.data.kaggle import read_predictions
    from luatorch_port.train.confusion import score

    out, result = tiny_report
    assert result.exit_code == 0, result.output
    states = load_states(out)
    assert {n: s["status"] for n, s in states.items()} == {n: "done" for n in SECTIONS}
    text = (out / "report.md").read_text()
    for heading in ("1.1 Backpropagation through a DAG", "1.2 Batch Normalization", "2.1 Method: Surrogate",
                    "2.2 Method: Kmeans", "2.3 Method: Pseudolabels", "2.4 Method: Kmeans Centroids + Pseudolabels",
                    "3.1 Visualizing filters", "3.2 t-SNE", "3.3 Training curves", "Timings"):
        assert heading in text
    assert "Not available" not in text and "Failed" not in text and "Not run" not in text
    # 2.1 beside its untrained control; every feature SVM's C chosen on val, and said so
    control = states["surrogate"]["results"]["control"]
    assert {"train_acc", "val_acc", "test_acc"} <= set(control)
    assert "| ↳ control: the same network untrained |" in text
    for name in ("surrogate", "kmeans", "combo"):
        r = states[name]["results"]
        assert r["c_source"] == "val" and "chosen on val" in r["settings"], name
    # 2.2: both k-means presets side by side (the report's Table 2.1 for this data)
    presets = states["kmeans"]["results"]["presets"]
    assert [p["preset"] for p in presets] == ["coates", "report"]
    assert (presets[1]["rf"], presets[1]["stride"]) == (22, 24) and presets[0]["rf"] == 6
    assert presets[0]["test_acc"] == states["kmeans"]["results"]["test_acc"]
    assert "Table 2.1 (on this data)" in text and "| report | 8 | 22 / 24 |" in text
    # every figure the report shows exists and is a PNG of a sensible size
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(figures) >= 12
    for rel in figures:
        with Image.open(out / rel) as im:
            assert im.format == "PNG" and min(im.size) >= 16
    # the test accuracies in the table are those of the CSVs each method wrote
    test = load_split(data / "test.t7b")
    for name in METHODS:
        r = states[name]["results"]
        pred = read_predictions(out / r["test_predictions"], n_expected=len(test))
        assert r["test_acc"] == pytest.approx(score(pred, test.labels).accuracy * 100)
        assert f"{r['test_acc']:.2f}" in text
    # predictions.csv is the method with the best validation accuracy
    best = max(METHODS, key=lambda n: states[n]["results"]["val_acc"])
    pred = states["predictions"]["results"]
    assert pred["val_acc"] == states[best]["results"]["val_acc"]
    assert (out / "predictions.csv").read_text().splitlines()[0] == "Id,Prediction"
    assert len((out / "predictions.csv").read_text().splitlines()) == 1 + len(test)
    # part 1: the hand-written backward agrees with the closed form and autograd
    p1 = states["part1"]["results"]
    assert p1["dag"]["max_error"]["closed_form"] < 1e-12 and p1["dag"]["max_error"]["autograd"] < 1e-12
    assert p1["batchnorm"]["max_error"]["autograd"] < 1e-10
    # t-SNE: one row of coordinates per val image, trustworthiness in range
    for m in states["tsne"]["results"]["maps"].values():
        assert len((out / m["coords_csv"]).read_text().splitlines()) == 1 + 20
        assert 0 <= m["trustworthiness"] <= 1
    # k-means beats chance comfortably on the digits, even this small
    assert states["kmeans"]["results"]["val_acc"] > 30
    record = json.loads((out / "run.json").read_text())
    assert record["command"] == "report" and record["results"]["sections"]["kmeans"] == "done"
    # each section names the code it ran with (a resumed report can mix revisions)
    from luatorch_port.util.provenance import git_revision
    assert {st.get("git") for st in states.values()} == {git_revision()}


@pytest.mark.slow
def test_report_resumes_and_redoes(tiny_report, data):
    out, first = tiny_report
    assert first.exit_code == 0
    before = load_states(out)
    result = CliRunner().invoke(cli, ["report", str(data), "--out", str(out), "--budget", "tiny",
                                      "--redo", "augmentations"])
    assert result.exit_code == 0, result.output
    after = load_states(out)
    for name in ("part1", "baseline", "surrogate", "kmeans", "pseudolabel", "combo", "tsne"):
        assert after[name]["finished"] == before[name]["finished"], name  # kept, not recomputed
        assert f"[{name}] done (kept" in result.stderr
    assert "[augmentations] running" in result.stderr and "[predictions] running" in result.stderr
    # same seed, same section: the same figure
    assert after["augmentations"]["results"] == before["augmentations"]["results"]


def test_failed_and_unavailable_sections_are_reported(data, tmp_path, monkeypatch):
    def broken(ctx):
        raise ValueError("boom at step 3")

    def missing(ctx):
        raise S.Unavailable("luatorch_port.somewhere has no thing yet")

    monkeypatch.setitem(S.SECTIONS, "baseline", broken)
    monkeypatch.setitem(S.SECTIONS, "surrogate", missing)
    result = run_report(data, tmp_path, budget_name="tiny", only=["baseline", "surrogate", "predictions"])
    states = result["states"]
    assert states["baseline"]["status"] == "failed" and "boom at step 3" in states["baseline"]["error"]
    assert states["surrogate"]["status"] == "unavailable"
    assert states["predictions"]["status"] == "unavailable"  # no method produced predictions
    assert "kmeans" not in states  # not asked for
    text = (tmp_path / "report.md").read_text()
    assert "Failed: `ValueError: boom at step 3`" in text and "--redo baseline" in text
    assert "Not available in this install: luatorch_port.somewhere has no thing yet" in text
    # the failed section runs again next time (it is not 'done')
    monkeypatch.setitem(S.SECTIONS, "baseline", lambda ctx: {"val_acc": 50.0})
    again = run_report(data, tmp_path, budget_name="tiny", only=["baseline"])
    assert again["states"]["baseline"]["status"] == "done"


def test_cli_exit_status_on_failure(data, tmp_path, monkeypatch):
    monkeypatch.setitem(S.SECTIONS, "part1", lambda ctx: 1 / 0)
    result = CliRunner().invoke(cli, ["report", str(data), "--out", str(tmp_path), "--budget", "tiny",
                                      "--only", "part1", "--quiet"])
    assert result.exit_code == 1
    assert "section(s) failed: part1" in result.stderr and (tmp_path / "report.md").exists()


@pytest.mark.parametrize("args,message", [
    (["--only", "nosuch"], "unknown section(s) nosuch"),
    (["--budget", "huge"], "'huge' is not one of"),
])
def test_cli_rejects_bad_options(data, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["report", str(data), "--out", str(tmp_path), *args])
    assert result.exit_code != 0 and message in result.stderr


def test_render_without_any_section():
    text = render_report({}, budget_name="quick", settings=BUDGETS["quick"], data_dir="d", seed=1)
    assert text.count("_Not run yet._") >= 2 and "| supervised baseline" in text


def test_section_generators_are_independent_of_order(tmp_path):
    ctx = S.Context(data_dir=tmp_path, out_dir=tmp_path, budget_name="tiny", settings={}, seed=7)
    a = torch.rand(3, generator=ctx.generator("kmeans"))
    ctx.generator("baseline")
    b = torch.rand(3, generator=ctx.generator("kmeans"))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.rand(3, generator=ctx.generator("surrogate")))


@pytest.mark.slow
def test_tsne_section_names_its_method(tiny_report):
    out, _ = tiny_report
    text = (out / "report.md").read_text()
    assert "embedded with exact-gradient t-SNE" in text   # 20 val images: auto picks exact
    assert load_states(out)["tsne"]["results"]["maps"]["raw"]["method"] == "exact"


def test_pseudolabel_notes_give_the_confident_share(data, tmp_path, monkeypatch):
    """With a threshold, 2.3 reports the share of monitored unlabelled images above it."""
    monkeypatch.setitem(BUDGETS["tiny"]["pseudolabel"], "threshold", 0.0)   # every row is confident
    run_report(data, tmp_path, budget_name="tiny", only=["pseudolabel"])
    notes = load_states(tmp_path)["pseudolabel"]["results"]["notes"]
    assert "only pseudo-labels with softmax confidence >= 0 count" in notes
    share = [n for n in notes if n.startswith("monitored unlabelled images at or above")]
    assert len(share) == 1 and ": 100.0 %, " in share[0] and "% of them right" in share[0]
    assert share[0] in (tmp_path / "report.md").read_text()


# -- what the report says about its data, and the conclusions it draws ------------------------

def test_the_digits_sample_is_named_as_such(data):
    d = S.describe_data(data)
    assert d["kind"] == "digits" and "digits" in d["name"] and "not photographs" in d["name"]
    assert d["splits"]["train"]["images"] == 80 and d["splits"]["train"]["per_class"] == [8] * 10
    assert d["splits"]["extra"]["images"] == 180 and d["splits"]["extra"]["per_class"] is None
    assert d["splits"]["val"]["image_shape"] == [3, 32, 32] and d["extra_labels"]


def test_other_data_is_described_by_its_counts(tmp_path):
    from luatorch_port.data import save_split

    images = torch.zeros(20, 3, 8, 8, dtype=torch.uint8)
    labels = torch.arange(20) % 10
    for split in ("train", "val", "test"):
        save_split(tmp_path / f"{split}.t7b", images, labels, n_classes=10)
    d = S.describe_data(tmp_path)
    assert d["kind"] == "other" and "extra" not in d["splits"] and not d["extra_labels"]
    assert d["splits"]["test"] == {"images": 20, "per_class": [2] * 10, "image_shape": [3, 8, 8]}
    text = render_report({"dataset": {"status": "done", "results": d}}, budget_name="tiny",
                         settings=BUDGETS["tiny"], data_dir=tmp_path, seed=1)
    assert "train 20 (10 classes × 2)" in text and "not photographs" not in text


def _state(**results):
    return {"status": "done", "seconds": 1.0, "results": results}


def test_discussion_compares_each_method_with_its_reference():
    data = {"kind": "other", "name": "photos", "splits": {"test": {"images": 3000, "per_class": None,
                                                                     "image_shape": [3, 96, 96]}}}
    states = {"dataset": _state(**data),
              "baseline": _state(val_acc=50.0, test_acc=48.0),
              "pseudolabel": _state(val_acc=52.0, test_acc=51.5),
              "kmeans": _state(val_acc=65.0, test_acc=62.0),
              "combo": _state(val_acc=64.0, test_acc=61.9),
              "surrogate": _state(val_acc=40.0, test_acc=41.0,
                                  control={"val_acc": 39.0, "test_acc": 40.5, "train_acc": 60.0})}
    text = render_report(states, budget_name="tiny", settings=BUDGETS["tiny"], data_dir="d", seed=1)
    disc = text.split("## Discussion")[1].split("## Timings")[0]
    assert "**pseudo-labels (Lee 2013)** beat the supervised baseline: 51.50 % against 48.00 % on test " \
           "(+3.50 points; val +2.00)" in disc
    assert "**k-means + pseudo-labels** did not beat k-means features alone" in disc and "(-0.10 points" in disc
    assert "within the noise" in disc.split("k-means + pseudo")[1].split("\n")[0]
    # +0.50 points is under two standard errors: above, but not called a win
    assert ("**surrogate classes (Exemplar-CNN)** scored above, but did not clearly beat, the same network "
            "untrained (random-init control): 41.00 % against 40.50 %") in disc
    assert "The best method on val is **k-means centroids" in disc
    assert "| ↳ control: the same network untrained |" in text and "+0.50 vs. the same network untrained" in text


def test_noise_points_is_the_binomial_standard_error_of_a_difference():
    from luatorch_port.report.render import noise_points

    assert noise_points(50.0, 200) == pytest.approx(100 * (2 * 0.25 / 200) ** 0.5)
    assert noise_points(None, 100) is None and noise_points(50.0, 0) is None


def test_comparisons_say_what_could_not_be_compared():
    from luatorch_port.report.render import comparisons

    got = {c["method"]: c for c in comparisons({"pseudolabel": _state(val_acc=1.0, test_acc=2.0),
                                                "kmeans": _state(val_acc=60.0, test_acc=61.0),
                                                "combo": _state(val_acc=62.0, test_acc=60.0)})}
    assert got["surrogate"]["status"] == "not run"
    assert got["pseudolabel"]["status"] == "no reference"
    assert got["combo"]["status"] == "compared" and got["combo"]["test_delta"] == pytest.approx(-1.0)
    assert got["combo"]["val_delta"] == pytest.approx(2.0) and got["combo"]["noise"] is None
