"""`a2 report`: every section of the report on one data folder, resumable, as report.md."""

from __future__ import annotations


import click

from ..report.budget import BUDGETS
from .common import (device_option, out_dir_option, meter, quiet_option, record_path, resolve_device,
                     seed_everything, seed_option)


@click.command("report")
@click.argument("data_dir", metavar="DATA_DIR", type=click.Path(exists=True, file_okay=False))
@out_dir_option("report", "report.md, figures, predictions.csv, sections/*.json")
@click.option("--budget", "budget_name", type=click.Choice(list(BUDGETS)), default="quick",
              help="Sizes of every section: tiny (the tests), quick (the digits sample, make demo), "
                   "standard (photographs at reduced sizes, CPU) or full (the report's sizes, a GPU); "
                   "see docs/report.md.")
@click.option("--force", is_flag=True, help="Recompute every section, even finished ones.")
@click.option("--redo", multiple=True, metavar="SECTION",
              help="Recompute this section (repeatable): part1, baseline, surrogate, kmeans, pseudolabel, "
                   "combo, augmentations, tsne, predictions.")
@click.option("--only", multiple=True, metavar="SECTION", help="Run only these sections (repeatable).")
@seed_option()
@device_option()
@quiet_option()
def report_cmd(data_dir, out_dir, budget_name, force, redo, only, seed, device, quiet):
    """Run every section of the report on DATA_DIR (train/val/test/extra.t7b) and write
    OUT/report.md with its tables, figures, timings and a Kaggle CSV for test. Finished sections
    are kept on a rerun (resume); a section that fails is reported and the others still run."""
    from ..util.provenance import write_record
    from ..report import run_report

    dev = resolve_device(device)
    seed_everything(seed, quiet=quiet)
    echo = (lambda line: click.echo(line, err=True)) if not quiet else None
    result = run_report(data_dir, out_dir, budget_name=budget_name, force=force, redo=redo, only=only or None,
                        seed=seed, device=dev, progress=meter(quiet), echo=echo)
    states = result["states"]
    summary = {name: st["status"] for name, st in states.items()}
    write_record(record_path(out_dir, folder=True), "report",
                 {"data_dir": data_dir, "budget": budget_name, "force": force, "redo": list(redo),
                  "only": list(only)}, seed=seed, device=dev,
                 results={"sections": summary, "seconds": {n: st.get("seconds") for n, st in states.items()}})
    click.echo(f"{result['report']}: " + ", ".join(f"{n} {s}" for n, s in summary.items()))
    failed = [n for n, s in summary.items() if s == "failed"]
    if failed:
        raise click.ClickException(f"section(s) failed: {', '.join(failed)} (see {result['report']})")
