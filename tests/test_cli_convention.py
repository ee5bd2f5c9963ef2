"""The CLI convention (README's "CLI convention"): kebab-case options in every --help, older
spellings kept as hidden aliases, the record beside every output, and the card's commands
as typed in a folder that holds data/{train,val,test,extra}.t7b."""

from __future__ import annotations

import json
import re

import click
import pytest
from click.testing import CliRunner

from luatorch_port.cli import cli
from luatorch_port.cli.common import AliasedOption, option, record_path

# The SVM's C keeps its name (Coates' train_svm.m, scikit-learn's C).
PROPER_NAMES = {"--C", "-C"}
KEBAB = re.compile(r"^(-[a-zA-Z]|--[a-z0-9]+(-[a-z0-9]+)*)$")


def _commands(group=cli, prefix=()):
    for name in group.list_commands(None):   # the top-level group imports on lookup
        cmd = group.get_command(None, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


ALL = list(_commands())


def _visible_names(cmd, ctx):
    names = []
    for param in cmd.params:
        record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
        if record is None:
            continue
        spec = record[0]
        for token in re.split(r"[ ,/;]+", spec):
            if token.startswith("-"):
                names.append(token)
    return names


@pytest.mark.parametrize("path,cmd", [pytest.param(p, c, id=" ".join(p)) for p, c in ALL])
def test_help_shows_only_kebab_case_options(path, cmd):
    ctx = click.Context(cmd, info_name=path[-1])
    bad = [n for n in _visible_names(cmd, ctx) if n not in PROPER_NAMES and not KEBAB.match(n)]
    assert not bad, f"a2 {' '.join(path)} --help shows {bad}"


def test_the_check_sees_camel_case_and_underscores():
    @click.command()
    @click.option("--batchSize")
    @click.option("--epoch_step")
    @option("--batch-size2", aliases=["--batchSize2"])
    def cmd(**kwargs):
        pass

    names = _visible_names(cmd, click.Context(cmd))
    assert [n for n in names if not KEBAB.match(n)] == ["--batchSize", "--epoch_step"]


# -- hidden aliases: accepted, parsed as the new option, absent from --help -------------------

def _params(path, args):
    cmd = cli
    for name in path:
        cmd = cmd.get_command(None, name)
    with cmd.make_context(path[-1], list(args)) as ctx:
        return ctx.params


ALIASES = [
    (("train",), ["-b", "7"], "batch_size", 7),
    (("train",), ["--batchSize", "7"], "batch_size", 7),
    (("train",), ["-r", "0.5"], "learning_rate", 0.5),
    (("train",), ["--learningRate", "0.5"], "learning_rate", 0.5),
    (("train",), ["--learningRateDecay", "0.25"], "learning_rate_decay", 0.25),
    (("train",), ["--weightDecay", "0.125"], "weight_decay", 0.125),
    (("train",), ["-m", "0.5"], "momentum", 0.5),
    (("train",), ["--epoch_step", "3"], "epoch_step", 3),
    (("train",), ["--max_epoch", "4"], "max_epoch", 4),
    (("train",), ["-s", "run"], "out_dir", "run"),
    (("train",), ["--save", "run"], "out_dir", "run"),
    (("pseudolabel", "train"), ["--features", "kmeans"], "learner", "kmeans"),
    (("pseudolabel", "train"), ["--batchSize", "9"], "batch_size", 9),
    (("visualize", "augmentations"), ["--seeds", "3", "--extra", "FILE"], "n_seeds", 3),
    (("visualize", "augmentations"), ["--data", "FILE"], "data_path", "FILE"),
    (("predict",), ["MODEL", "--out", "p.csv"], "out_path", "p.csv"),
    (("predict",), ["MODEL", "FILE"], "legacy_test", "FILE"),
]


@pytest.mark.parametrize("path,args,param,value", ALIASES,
                         ids=[" ".join(p + tuple(a)) for p, a, _, _ in ALIASES])
def test_hidden_alias_is_accepted(path, args, param, value, tmp_path):
    files = {"FILE": tmp_path / "f.t7b", "MODEL": tmp_path / "m.t7"}
    for f in files.values():
        f.write_bytes(b"")
    args = [str(files.get(a, a)) for a in args]
    value = str(files[value]) if value in files else value
    assert _params(path, args)[param] == value


OPTION_ALIASES = [(p, a[0]) for p, a, _, _ in ALIASES if a[0].startswith("-")]


@pytest.mark.parametrize("path,alias", OPTION_ALIASES, ids=[" ".join(p + (a,)) for p, a in OPTION_ALIASES])
def test_hidden_alias_is_not_in_help(path, alias):
    cmd = cli
    for name in path:
        cmd = cmd.get_command(None, name)
    shown = _visible_names(cmd, click.Context(cmd, info_name=path[-1]))
    assert alias not in shown and shown
    text = CliRunner().invoke(cli, list(path) + ["--help"], terminal_width=200).stdout
    assert not re.search(r"^\s+" + re.escape(alias) + r"(?![\w-])", text, re.M), text


def test_legacy_positional_is_not_in_usage():
    text = CliRunner().invoke(cli, ["predict", "--help"]).stdout
    assert "Usage: cli predict [OPTIONS] MODEL\n" in text or "Usage: a2 predict [OPTIONS] MODEL\n" in text


def test_aliased_option_help_names_only_the_new_spelling():
    @click.command()
    @option("--batch-size", "batch_size", aliases=["-b", "--batchSize"], type=int, default=2,
            help="Batch.")
    def cmd(batch_size):
        click.echo(batch_size)

    param = cmd.params[0]
    assert isinstance(param, AliasedOption)
    assert param.get_help_record(click.Context(cmd))[0] == "--batch-size INTEGER"
    assert CliRunner().invoke(cmd, ["-b", "5"]).stdout == "5\n"
    assert CliRunner().invoke(cmd, ["--batchSize", "6"]).stdout == "6\n"
    assert CliRunner().invoke(cmd, ["--batch-size", "7"]).stdout == "7\n"


# -- the record --------------------------------------------------------------------------------

@pytest.mark.parametrize("out,folder,expected", [
    ("tsne.png", False, "tsne.run.json"),
    ("sub/pred.csv", False, "sub/pred.run.json"),
    ("centroids.t7", False, "centroids.run.json"),
    ("runs/a", True, "runs/a/run.json"),
])
def test_record_path(out, folder, expected):
    assert record_path(out, folder=folder) == expected.replace("/", __import__("os").sep)


def test_record_path_of_an_existing_folder(tmp_path):
    assert record_path(tmp_path) == str(tmp_path / "run.json")
    assert record_path(tmp_path / "x.png") == str(tmp_path / "x.run.json")


@pytest.mark.parametrize("path,kind", [
    (("train",), "folder"), (("pseudolabel", "train"), "folder"), (("report",), "folder"),
    (("tsne",), "file"), (("visualize", "filters"), "file"), (("visualize", "centroids"), "file"),
    (("visualize", "augmentations"), "file"), (("visualize", "curves"), "file"),
    (("data", "preview"), "file"), (("backprop", "dag"), "file"), (("backprop", "batchnorm"), "file"),
])
def test_out_help_says_file_or_folder(path, kind):
    text = " ".join(CliRunner().invoke(cli, list(path) + ["--help"]).stdout.split())
    expected = {"folder": ("--out DIRECTORY Folder to write (", "the record is OUT/run.json"),
                "file": ("--out FILE File to write:", "the record is <stem>.run.json beside it")}[kind]
    assert all(part in text for part in expected), text


# -- the card's commands, typed in a folder holding data/ ---------------------------------------

@pytest.fixture(scope="module")
def card_dir(tmp_path_factory):
    from luatorch_port.data import build_sample

    root = tmp_path_factory.mktemp("card")
    # the course's 96x96 images, so every default size fits; 160/40/160/360 images
    build_sample(root / "data", seed=1, image_size=96, per_class=72)
    return root


def _typed(card_dir, monkeypatch, line):
    monkeypatch.chdir(card_dir)
    return CliRunner().invoke(cli, line.split()[1:])


def test_card_tsne_as_typed(card_dir, monkeypatch):
    result = _typed(card_dir, monkeypatch, "a2 tsne data/val.t7b --quiet")
    assert result.exit_code == 0, result.output
    record = json.loads((card_dir / "tsne.run.json").read_text())
    assert record["config"]["data"] == "data/val.t7b" and record["results"]["n_images"] == 40
    assert (card_dir / "tsne.png").exists() and (card_dir / "tsne_map.png").exists()


def test_card_augmentations_as_typed(card_dir, monkeypatch):
    result = _typed(card_dir, monkeypatch, "a2 visualize augmentations --quiet")
    assert result.exit_code == 0, result.output
    record = json.loads((card_dir / "augmentations.run.json").read_text())
    assert record["config"]["extra"] == "data/extra.t7b"


def test_card_kmeans_fit_as_typed(card_dir, monkeypatch):
    # as typed, plus sizes small enough for the sample (no input or output option)
    result = _typed(card_dir, monkeypatch, "a2 kmeans fit --k 4 --patches 2000 --iterations 2 --quiet")
    assert result.exit_code == 0, result.output
    assert (card_dir / "centroids.t7").exists()
    record = json.loads((card_dir / "centroids.run.json").read_text())
    assert "data/extra.t7b" in record["config"].values()


def test_card_surrogate_build_as_typed(card_dir, monkeypatch):
    # as typed, plus sizes small enough for the sample (no input or output option)
    result = _typed(card_dir, monkeypatch,
                    "a2 surrogate build --classes 4 --per-seed 2 --quiet")
    assert result.exit_code == 0, result.output
    assert (card_dir / "surrogate.t7b").exists()
    record = json.loads((card_dir / "surrogate.run.json").read_text())
    assert record["config"]["extra"] == "data/extra.t7b"


def test_card_train_predict_score_as_typed(card_dir, monkeypatch):
    # the baseline's three commands with their default inputs and outputs (sizes cut down)
    result = _typed(card_dir, monkeypatch, "a2 train --model 4c5-8f --epochs 1 --batch-size 50 --quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((card_dir / "logs" / "run.json").read_text())["config"]["train"] == "data/train.t7b"
    result = _typed(card_dir, monkeypatch, "a2 predict logs/model.net --quiet")
    assert result.exit_code == 0, result.output
    record = json.loads((card_dir / "predictions.run.json").read_text())
    assert record["config"]["test"] == "data/test.t7b"
    assert sum(record["results"]["per_class"]) == 160 and len(record["results"]["classes"]) == 10
    result = _typed(card_dir, monkeypatch, "a2 score predictions.csv")
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout
