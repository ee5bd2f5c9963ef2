"""`a2 backprop ...`: report part 1, backpropagation checked three ways."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..util import provenance
from ..util.files import atomic_output
from .. import t7 as t7io
from ..backprop import batchnorm as bnlib
from ..backprop import dag as daglib
from ..backprop.jacobian import PERTURBATION
from ..util.errors import A2Error
from .common import record_path, seed_everything, seed_option


class FloatList(click.ParamType):
    """A float, or several separated by commas (``1,-0.5,0.5``); the option may repeat."""

    name = "FLOAT[,FLOAT...]"

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return [float(v) for v in value]
        if isinstance(value, (int, float)):
            return [float(value)]
        try:
            return [float(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of numbers", param, ctx)


def _flatten(values):
    return [v for chunk in values for v in (chunk if isinstance(chunk, list) else [chunk])]


def _csv(values):
    return ",".join(f"{v:g}" for v in values)


def _emit(result, text, as_json, out, command, config, seed=None):
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(text)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        provenance.write_record(record_path(out, folder=False), command, config, seed=seed,
                                device="cpu", results={"max_error": result["max_error"]})


OUT_HELP = ("File to write: the result as JSON (besides printing it); the record is <stem>.run.json "
            "beside it.")


@click.group("backprop")
def group():
    """Report part 1: backpropagation through a DAG (1.1) and batch normalisation (1.2), each
    hand-written Lua-style and checked against the closed form, finite differences and autograd."""


@group.command("dag", short_help="Part 1.1: sigmoid -> min/max -> sum; hand vs closed form vs numeric vs autograd.")
@click.option("--x1", "x1", type=FloatList(), multiple=True, default=[_csv(daglib.DEFAULT_X1)],
              help="x1 values (comma-separated and/or repeated option).")
@click.option("--x2", "x2", type=FloatList(), multiple=True, default=[_csv(daglib.DEFAULT_X2)],
              help="x2 values; as many as --x1, or one.")
@click.option("--grad-output", "grad_output", type=FloatList(), multiple=True,
              default=[_csv(daglib.DEFAULT_GRAD_OUTPUT)], help="dE/dy values; as many as --x1, or one.")
@click.option("--step", type=float, default=PERTURBATION, help="Central finite-difference step.")
@click.option("--from-t7", "from_t7", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Take x1, x2, gradOutput from a Torch7 record like dag_backprop.t7 (instead of --x1, --x2, "
                   "--grad-output) and compare with the y, dx1, dx2 Torch computed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help=OUT_HELP)
def dag(x1, x2, grad_output, step, from_t7, as_json, out):
    """y = min(sigma(x1), sigma(x2)) + max(sigma(x1), sigma(x2)): dE/dx1 and dE/dx2 from the
    hand-written backward (nn.Sigmoid, CMinTable, CMaxTable, CAddTable), the closed form, central
    finite differences and torch.autograd, side by side, with the largest difference.

    On a tie (sigma(x1) == sigma(x2)) Torch sends the whole gradient to x1 (autograd splits it);
    the sum dx1 + dx2 is unchanged. The report's eq. 1.3 has a sign typo; the correct form is
    printed.
    """
    if not step > 0:
        raise A2Error(f"--step={step} should be > 0")
    expected = None
    if from_t7:
        case = daglib.load_case(t7io.load(from_t7), source=Path(from_t7).name)
        x1, x2, go = (case[k].tolist() for k in ("x1", "x2", "grad_output"))
        expected = case["expected"]
    else:
        x1, x2, go = _flatten(x1), _flatten(x2), _flatten(grad_output)
    result = daglib.dag_table(x1, x2, go, step=step, expected=expected)
    config = {"x1": x1, "x2": x2, "grad_output": go, "step": step, "from_t7": from_t7}
    _emit(result, daglib.format_table(result), as_json, out, "backprop dag", config)


@group.command("batchnorm", short_help="Part 1.2: hand-written BatchNormalization, gradient-checked.")
@click.option("--batch", type=int, default=bnlib.DEFAULT_BATCH,
              help=f"N, rows of the random input batch (1..{bnlib.MAX_BATCH}).")
@click.option("--features", type=int, default=bnlib.DEFAULT_FEATURES,
              help=f"D, features (1..{bnlib.MAX_FEATURES}).")
@click.option("--eps", type=float, default=bnlib.BN_EPS,
              help="Added to the variance, > 0 (the course starter used 1e-3).")
@click.option("--momentum", type=float, default=bnlib.BN_MOMENTUM, help="Running-statistics momentum.")
@click.option("--affine/--no-affine", default=True, help="Learnable gamma (weight) and beta (bias).")
@click.option("--mode", type=click.Choice(["train", "evaluate", "both"]), default="both",
              help="Which mode(s) to check.")
@click.option("--from-t7", "from_t7", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Take the case from a Torch7 record like batchnorm_part12.t7 (input, gradOutput, weight, "
                   "bias, running_*_before) and compare with what Torch computed; --batch, --features, "
                   "--eps, --momentum, --affine are then read from the file.")
@click.option("--case", "case_key", default=None, help="With --from-t7: a sub-table holding the case (e.g. batch1).")
@seed_option()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help=OUT_HELP)
def batchnorm(batch, features, eps, momentum, affine, mode, from_t7, case_key, seed, as_json, out):
    """nn.BatchNormalization on an N x D batch, forward and backward written by hand: prints the
    derivation's final formulas and, per mode, the largest difference of output, dL/dx, dL/dgamma,
    dL/dbeta and the running statistics from autograd (F.batch_norm), from central finite
    differences, and from a Torch7 file when given; plus nn.Jacobian's check.

    Training mode normalises with the batch mean and biased variance and updates running_var with
    the unbiased one. A training batch of ONE sample follows Torch: it silently uses the running
    statistics (evaluate path, no update), where PyTorch would raise.
    """
    modes = bnlib.MODES if mode == "both" else (mode,)
    if from_t7:
        case = bnlib.load_case(t7io.load(from_t7), case_key, source=Path(from_t7).name)
        source = from_t7 + (f"[{case_key}]" if case_key else "")
        generator = None
    else:
        if case_key:
            raise A2Error("--case needs --from-t7")
        generator = seed_everything(seed, quiet=as_json)
        case = bnlib.random_case(batch, features, eps, momentum, affine, generator)
        source = f"random, seed {seed}"
    result = bnlib.batchnorm_check(case, modes, source=source)
    config = {**result["config"], "modes": list(modes), "from_t7": from_t7, "case": case_key}
    _emit(result, bnlib.format_check(result), as_json, out, "backprop batchnorm", config,
          seed=None if from_t7 else seed)
