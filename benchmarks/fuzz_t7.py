"""The t7 reader on many mutated files (luatorch_port.t7.fuzz): a longer run than the test's.

Every case must load or raise T7FormatError; anything else is listed and the script exits 1.
Writes the counts, the slowest case and the rate to bench-out/fuzz_t7.json.

    python benchmarks/fuzz_t7.py                     # 100,000 cases, seed 1008
    python benchmarks/fuzz_t7.py --cases 20000 --seed 7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import Result  # noqa: E402

from luatorch_port.t7 import fuzz  # noqa: E402

DEFAULT_CASES = 100_000
DEFAULT_SEED = 1008


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    if args.cases < 1:
        parser.error(f"--cases {args.cases} should be >= 1")
    out = fuzz.run(args.cases, seed=args.seed)
    res = Result("fuzz_t7")
    res.figure("cases", out["cases"], "files")
    res.figure("loaded", out["loaded"], "files")
    res.figure("t7_format_errors", out["T7FormatError"], "files")
    res.figure("value_outside_its_type", out["messages"].get("fits a type", 0), "files")
    res.figure("other_exceptions", len(out["other"]), "files", limit=0)
    res.figure("slowest_case", out["slowest_s"], "s", case=out["slowest_case"])
    res.figure("rate", out["cases"] / out["seconds"], "files/s")
    res.note(f"seed {args.seed}")
    for how, what in out["other"][:20]:
        res.note(f"{how}: {what}")
    res.write()
    print(f"{out['cases']} cases in {out['seconds']:.1f} s: {out['loaded']} loaded, "
          f"{out['T7FormatError']} T7FormatError ({out['messages'].get('fits a type', 0)} a "
          f"value outside its type), {len(out['other'])} other; slowest "
          f"{out['slowest_s'] * 1000:.0f} ms ({out['slowest_case']})")
    for how, what in out["other"][:20]:
        print(f"  {how}: {what}")
    return 1 if out["other"] else 0


if __name__ == "__main__":
    sys.exit(main())
