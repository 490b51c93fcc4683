"""Run every benchmark side by side: `python -m benchmarks [name ...]` (or `make bench`).

Each ``benchmarks/bench_<name>.py`` has a ``main()`` that prints its figures and returns
them; this runner calls them in one process, one after the other, and writes all figures
to ``benchmarks/results/latest.json``. Figures are printed, never asserted: the machine is
shared and noisy, so goals are stated as ratios measured in the same run.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    figures: dict[str, object] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name in names:
        print(f"== {name} ==", flush=True)
        module = importlib.import_module(f"benchmarks.bench_{name}")
        figures[name] = module.main()
        print(flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(figures, indent=2, default=str))
    print(f"figures written to {out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
