"""pytest plugin: a marker per report section and layer, and a grader-style summary.

Each test gets one ``section_*`` marker from the table below (by module, and inside a few
modules by test name), so ``pytest -m section_2_2`` runs k-means alone. At the end of the run
the plugin prints one line per section: PASS/FAIL, passed, failed and skipped counts.
pytest's exit status stays what it is: non-zero when anything failed.

Loaded from tests/conftest.py (``pytest_plugins``); ``-p no:sections`` turns it off.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePath
from typing import Dict, List, Tuple

import pytest

# (key, title), in the order of the summary: the layers, then the report's sections.
SECTIONS: List[Tuple[str, str]] = [
    ("t7", "t7 files: reader, writer, stream"),
    ("data", "data: course layout, STL-10, sample, Kaggle CSV"),
    ("nn parity", "nn layers and models against Torch7"),
    ("baseline", "the starter's train.lua: loop, optim.sgd, provider"),
    ("1.1", "backprop through the DAG"),
    ("1.2", "batch normalisation by hand"),
    ("2.1", "surrogate classes (Exemplar-CNN)"),
    ("2.2", "k-means features (Coates)"),
    ("2.3", "pseudo-labels (Lee)"),
    ("2.4", "k-means + pseudo-labels"),
    ("3.1", "filters, centroids, augmentations"),
    ("3.2", "t-SNE"),
    ("report", "a2 report"),
    ("CLI", "commands: conventions, bad input"),
    ("project", "layers, utilities, benchmarks, test tooling"),
]
OTHER = "other"  # a test module no rule names; tests/test_sections.py keeps it empty

# (module name prefix, test name substring or "", section); the first match wins.
RULES: List[Tuple[str, str, str]] = [
    ("test_backprop", "batchnorm", "1.2"),
    ("test_backprop", "_bn", "1.2"),
    ("test_backprop", "", "1.1"),
    ("test_pseudolabel_selftrain", "", "2.4"),
    ("test_pseudolabel", "kmeans", "2.4"),
    ("test_pseudolabel", "", "2.3"),
    ("test_combo", "", "2.4"),
    ("test_viz_cli", "tsne", "3.2"),
    ("test_viz", "", "3.1"),
    ("test_visualize", "", "3.1"),
    ("test_tsne", "", "3.2"),
    ("test_t7_", "", "t7"),
    ("test_data", "", "data"),
    ("test_kaggle", "", "data"),
    ("test_nn_", "", "nn parity"),
    ("test_train", "", "baseline"),
    ("test_optim", "", "baseline"),
    ("test_provider", "", "baseline"),
    ("test_bench_surrogate", "", "2.1"),
    ("test_surrogate", "", "2.1"),
    ("test_kmeans", "", "2.2"),
    ("test_svm", "", "2.2"),
    ("test_report", "", "report"),
    ("test_cli", "", "CLI"),
    ("test_readme", "", "CLI"),
    ("test_architecture", "", "project"),
    ("test_threads", "", "project"),
    ("test_progress", "", "project"),
    ("test_dependencies", "", "project"),
    ("test_util", "", "project"),
    ("test_bench", "", "project"),
    ("test_fixtures", "", "project"),
    ("test_sections", "", "project"),
]


def marker_name(section: str) -> str:
    """``"2.2"`` -> ``"section_2_2"``, ``"nn parity"`` -> ``"section_nn_parity"``."""
    return "section_" + section.replace(".", "_").replace(" ", "_").lower()


def section_of(module: str, test: str) -> str:
    """The section of test function ``test`` in module file ``module`` (``test_x.py``)."""
    stem = PurePath(module).stem
    for prefix, part, section in RULES:
        if stem.startswith(prefix) and part in test:
            return section
    return OTHER


def _outcome(report) -> str:
    if report.failed:
        return "failed"
    if report.skipped:  # also an xfail
        return "skipped"
    return "passed"


class SectionTally:
    """The plugin's state: each test counted once, by its worst phase (failed > skipped > passed)."""

    RANK = {"passed": 0, "skipped": 1, "failed": 2}

    def __init__(self):
        self.section: Dict[str, str] = {}
        self.outcome: Dict[str, str] = {}

    def add(self, nodeid: str, outcome: str, section: str = None):
        if section is not None:
            self.section.setdefault(nodeid, section)
        before = self.outcome.get(nodeid, "passed")
        self.outcome[nodeid] = max(before, outcome, key=self.RANK.__getitem__)

    def counts(self) -> Dict[str, Counter]:
        out: Dict[str, Counter] = {}
        for nodeid, outcome in self.outcome.items():
            out.setdefault(self.section.get(nodeid, OTHER), Counter())[outcome] += 1
        return out

    def lines(self) -> List[str]:
        """One line per section that ran: verdict, key, title, passed/failed/skipped."""
        counts = self.counts()
        shown = [(key, title) for key, title in SECTIONS + [(OTHER, "not assigned to a section")]
                 if counts.get(key)]
        if not shown:
            return []
        width = max(len(key) for key, _ in shown)
        twidth = max(len(title) for _, title in shown)
        rows = []
        for key, title in shown:
            c = counts[key]
            verdict = "FAIL" if c["failed"] else "PASS"
            rows.append(f"{verdict}  {key:<{width}}  {title:<{twidth}}  {c['passed']:4d} passed "
                        f"{c['failed']:3d} failed {c['skipped']:3d} skipped")
        return rows

    # -- hooks ----------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
    def pytest_collection_modifyitems(self, items):
        for item in items:
            section = section_of(item.path.name, item.originalname or item.name)
            self.section[item.nodeid] = section
            item.add_marker(marker_name(section))

    def pytest_collectreport(self, report):
        if report.failed:  # a module that does not import: one failure in its section
            self.add(report.nodeid, "failed", section_of(report.nodeid.split("::")[0], ""))

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.failed or report.skipped:
            self.add(report.nodeid, _outcome(report))

    def pytest_terminal_summary(self, terminalreporter):
        lines = self.lines()
        if lines:
            terminalreporter.write_sep("=", "sections")
        for line in lines:
            terminalreporter.write_line(line, red=line.startswith("FAIL"),
                                        green=line.startswith("PASS"))


def pytest_configure(config):
    for key, title in SECTIONS:
        config.addinivalue_line("markers", f"{marker_name(key)}: {key}, {title}")
    config.pluginmanager.register(SectionTally(), "section-tally")
