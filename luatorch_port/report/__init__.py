"""The whole report: every section on one data folder, resumable, rendered as ``report.md``.

Port of the report (Sung & Yao, DS-GA 1008 A2, 2016) as a program: part 1's tables, each
method of part 2 with its accuracy, part 3's figures, timings and a Kaggle CSV, regenerated from
the data in ``DATA_DIR``. ``run.run_report`` does the work; ``sections`` holds one function per
section, ``budget`` their sizes and ``render`` the write-up.
"""

from .budget import BUDGETS, budget
from .render import render_report
from .run import load_states, run_report
from .sections import SECTIONS

__all__ = ["run_report", "BUDGETS", "SECTIONS", "render_report", "load_states", "budget"]
