"""`make bench`: every figure of the speed claim in one run, one table.

Each section runs in a process of its own (no CPU pinning, loaded program or
imported compiler carries over) and hands back its figures as JSON; the
table is printed at the end and written to bench/results.json.

    python -m bench            # everything (about 15 minutes on 2 CPUs)
    python -m bench --quick    # every section with tiny sizes: does it run?
    python -m bench --only throughput,scaling
    python -m bench --only diagnosis   # what the diagnosis probe costs, on and off
    python -m bench --markdown # docs/performance.md's table from bench/results.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.figures import Figure, machine, markdown, table

SECTIONS = (
    "per_packet",
    "throughput",
    "versus_capture",
    "footprint",
    "service",
    "publish",
    "scaling",
    "exposition",
    "diagnosis",
)
RESULTS = Path(__file__).resolve().parent / "results.json"


def _section(name: str, quick: bool) -> None:
    """In the child: run one section, print its figures as JSON last."""
    module = importlib.import_module(f"bench.{name}")
    figures = module.run(quick=quick)
    print(json.dumps([asdict(f) for f in figures]))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument(
        "--only", default="", help="comma-separated sections: " + ", ".join(SECTIONS)
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--section", help=argparse.SUPPRESS)
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print --output's figures as docs/performance.md's table",
    )
    args = parser.parse_args()
    if args.markdown:
        saved = json.loads(args.output.read_text())
        fields = set(Figure.__dataclass_fields__)
        print(markdown([Figure(**{k: v for k, v in f.items() if k in fields}) for f in saved]))
        return
    if args.section:
        _section(args.section, args.quick)
        return
    chosen = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: no section {', '.join(unknown)} (sections: {', '.join(SECTIONS)})")
    figures: list[Figure] = []
    started = time.monotonic()
    for name in chosen:
        t0 = time.monotonic()
        print(f"[{name}] ...", flush=True)
        command = [sys.executable, "-m", "bench", "--section", name] + (
            ["--quick"] if args.quick else []
        )
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"section {name} failed (exit {done.returncode})")
        section = [Figure(**f) for f in json.loads(done.stdout.strip().splitlines()[-1])]
        figures += section
        print(f"[{name}] {len(section)} figures in {time.monotonic() - t0:.0f} s", flush=True)
    print(
        f"\n{machine()}; {time.monotonic() - started:.0f} s"
        + (" (quick: sizes too small to quote)" if args.quick else "")
    )
    print(table(figures))
    missed = [f.name for f in figures if f.met is False]
    if missed:
        print(f"\ngoals missed: {', '.join(missed)} (docs/performance.md says why)")
    args.output.write_text(json.dumps([f.as_json() for f in figures], indent=2) + "\n")
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
