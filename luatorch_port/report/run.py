"""The work of ``a2 report``: every section on one data folder, resumable, rendered as
``report.md`` (the ``<package>/run.py`` + ``run_<command>`` rule).

Section state lives in ``REPORT_DIR/sections/<name>.json``; a section whose state says
``done`` under the same budget and seed is not recomputed (``force``/``redo`` to override). A
section that cannot run in this install is marked ``unavailable``, and one that fails is
marked ``failed`` with its error; neither stops the others.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..util.files import atomic_output
from ..util.progress import or_silent
from ..util.provenance import git_revision
from .budget import BUDGETS, budget
from .render import render_report
from .sections import ALWAYS, DEPENDS, SECTIONS, Context, Unavailable

STATE_DIR = "sections"
REPORT_NAME = "report.md"


def _state_path(out_dir: Path, name: str) -> Path:
    return out_dir / STATE_DIR / f"{name}.json"


def load_states(out_dir) -> dict:
    """``{section: state dict}`` for every section with a state file in ``out_dir``."""
    out_dir = Path(out_dir)
    states = {}
    for name in SECTIONS:
        path = _state_path(out_dir, name)
        if path.exists():
            states[name] = json.loads(path.read_text(encoding="utf-8"))
    return states


def _write_state(out_dir: Path, name: str, state: dict) -> None:
    path = _state_path(out_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "w") as f:
        json.dump(state, f, indent=2, default=str)
        f.write("\n")


def _check_splits(data_dir) -> None:
    """Scan every split present in ``data_dir`` (layout, sizes, truncation; pixels are skipped,
    so it costs little): a bad file is an error before the report writes anything."""
    from ..data import scan_split
    for split, expect in (("train", "labelled"), ("val", "labelled"), ("test", "labelled"),
                          ("extra", "extra")):
        path = Path(data_dir) / f"{split}.t7b"
        if path.exists():
            scan_split(path, expect=expect)


def run_report(data_dir, out_dir, *, budget_name: str = "quick", force: bool = False, redo=(), only=None,
               seed: int = 1, device=None, progress=None, echo=None) -> dict:
    """Run (or resume) every section, then write ``out_dir/report.md``.

    Parameters
    ----------
    data_dir : folder with train/val/test/extra.t7b (``a2 data sample`` or the course's files)
    out_dir : report folder (created)
    budget_name : ``tiny`` | ``quick`` | ``standard`` | ``full`` (see :mod:`.budget`)
    force : recompute every section; ``redo`` : names of sections to recompute
    only : run only these sections (the others keep their state); None = all
    seed, device, progress, echo : passed to sections (``echo(line)`` prints a status line);
        ``progress`` also sees the sections done (stage "report")

    Returns
    -------
    dict ``{"report": path, "states": {section: state}}``; a state has ``status`` (done, failed,
    unavailable, skipped), ``seconds``, ``results`` or ``error``.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    settings = budget(budget_name)
    unknown = [n for n in list(redo) + list(only or []) if n not in SECTIONS]
    if unknown:
        from ..util.errors import A2Error
        raise A2Error(f"unknown section(s) {', '.join(unknown)}; sections: {', '.join(SECTIONS)}")
    _check_splits(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    echo = echo or (lambda line: None)
    ctx = Context(data_dir=data_dir, out_dir=out_dir, budget_name=budget_name, settings=settings, seed=seed,
                  device=device, progress=progress, echo=echo)
    states = load_states(out_dir)
    rerun = set()
    report_progress = or_silent(progress)
    for index, (name, fn) in enumerate(SECTIONS.items()):
        report_progress(index, len(SECTIONS), stage="report", section=name)
        old = states.get(name)
        fresh = (old is not None and old.get("status") == "done" and old.get("budget") == budget_name
                 and old.get("seed") == seed and old.get("data_dir") == os.path.abspath(data_dir))
        wanted = only is None or name in only
        stale = force or name in redo or name in ALWAYS or any(d in rerun for d in DEPENDS.get(name, ()))
        if (fresh and not stale) or (not wanted and old is not None):
            if old.get("status") == "done":
                ctx.results[name] = old["results"]
            echo(f"[{name}] {old['status']} (kept; --redo {name} to recompute)")
            continue
        if not wanted:
            continue
        echo(f"[{name}] running ({budget_name} budget)")
        t0, c0 = time.perf_counter(), time.process_time()
        state = {"section": name, "budget": budget_name, "seed": seed, "data_dir": os.path.abspath(data_dir),
                 "settings": settings.get(name)}
        try:
            results = fn(ctx)
            state.update(status="done", results=results)
            ctx.results[name] = results
            rerun.add(name)
        except Unavailable as why:
            state.update(status="unavailable", error=str(why))
        except Exception as err:  # a failed section is reported, the others still run
            state.update(status="failed", error=f"{type(err).__name__}: {' '.join(str(err).split())}")
        state["seconds"] = time.perf_counter() - t0
        state["cpu_seconds"] = time.process_time() - c0  # all threads; wall time on a busy machine misleads
        state["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        state["git"] = git_revision()   # the code each section ran with (a resumed report mixes them)
        _write_state(out_dir, name, state)
        states[name] = state
        echo(f"[{name}] {state['status']} in {state['seconds']:.1f} s"
             + (f": {state['error']}" if "error" in state else ""))
    report_progress(len(SECTIONS), len(SECTIONS), stage="report")
    report = out_dir / REPORT_NAME
    with atomic_output(report, "w") as f:
        f.write(render_report(states, budget_name=budget_name, settings=settings, data_dir=data_dir,
                              seed=seed))
    return {"report": os.fspath(report), "states": states}
