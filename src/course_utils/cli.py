"""The ``course`` command: doctor, list, run.

    course doctor            what is installed, where the assets are, which backends work
    course list              the lessons and labs
    course run [NB ...]      execute lessons headlessly into build/course/ with a report
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import CourseError


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="course", description="Local LLM Lab command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="check the installation and every backend")
    doctor.add_argument("--backend", action="append", help="check only this backend (repeatable)")
    sub.add_parser("list", help="list the lessons and labs")
    run = sub.add_parser("run", help="execute notebooks headlessly and write build/course/report.md")
    run.add_argument("notebooks", nargs="*", help="numbers or names (default: every lesson)")
    run.add_argument("--out", default=None, help="output folder (default: build/course)")
    run.add_argument("--labs", action="store_true", help="also run the lab solutions")
    run.add_argument("--all", action="store_true", help="lessons, lab solutions and student labs")
    run.add_argument("--in-place", action="store_true", help="store outputs in the notebooks themselves (authors)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), help="papermill parameter, e.g. -p FULL True")
    args = parser.parse_args(argv)
    try:
        return {"doctor": cmd_doctor, "list": cmd_list, "run": cmd_run}[args.command](args)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


# ----------------------------------------------------------------------------- doctor
def cmd_doctor(args: argparse.Namespace) -> int:
    from .assets import cache_size_bytes
    from .backends import available_backends
    from .config import settings
    from .doctor import asset_locations, check_backend, package_versions

    cfg = settings()
    print(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores")
    print("\nPackages")
    for name, version in package_versions().items():
        print(f"  {name:<22} {version}")

    print("\nAssets")
    for label, (path, detail) in asset_locations().items():
        print(f"  {'✓' if path else '✗'} {label:<22} " + (f"{path} ({detail})" if path else detail))

    print("\nSettings")
    print(f"  COURSE_MODEL={cfg.model or '(bundled SmolLM2-135M-Instruct)'}  COURSE_BACKEND={cfg.backend}  COURSE_CTX={cfg.n_ctx}  threads={cfg.n_threads}")
    print(f"  cache {cfg.cache_dir}: {cache_size_bytes(cfg) / 1e6:.0f} MB")

    print("\nBackends (each loads the model and generates a few tokens)")
    checks = [check_backend(name) for name in (args.backend or available_backends())]
    for check in checks:
        print(f"  {'✓' if check.ok else '✗'} {check.name:<13} {check.line()}")
    working = [c.name for c in checks if c.ok]
    if working:
        print(f"\nVerdict: ready. {len(working)} backend(s) work ({', '.join(working)}); `make course` will run the lessons.")
        return 0
    print("\nVerdict: NOT ready: no backend works. Fix the first ✗ above (usually: `make setup`).")
    return 1


# ----------------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    from .runner import lessons, notebook_title, project_root

    root = project_root()
    print(f"{'#':<4}{'lesson':<28}{'title'}")
    for path in lessons(root):
        print(f"{path.stem[:2]:<4}{path.stem:<28}{notebook_title(path)}")
    labs = sorted((root / "labs").glob("[0-9][0-9]_*.ipynb"))
    if labs:
        print("\nLabs (solutions in labs/solutions/):")
        for path in labs:
            print(f"    {path.relative_to(root)}")
    return 0


# ----------------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    from .runner import lessons, project_root, run_notebooks, select, write_report

    root = project_root()
    pool = lessons(root, include_labs=args.labs or args.all)
    if args.all:
        pool += sorted((root / "labs").glob("[0-9][0-9]_*.ipynb"))
    chosen = select(pool, args.notebooks)
    out = Path(args.out) if args.out else root / "build" / "course"
    params = {k: _parse_value(v) for k, v in (args.parameter or [])}
    print(f"Running {len(chosen)} notebook(s) -> {out if not args.in_place else 'in place'}")
    runs = run_notebooks(chosen, out, parameters=params, in_place=args.in_place)
    report = write_report(runs, out / "report.md")
    failed = [r for r in runs if r.status != "ok"]
    print(f"\n{len(runs) - len(failed)}/{len(runs)} ok in {sum(r.seconds for r in runs):.0f} s. Report: {report}")
    return 1 if failed else 0


def _parse_value(text: str) -> object:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


if __name__ == "__main__":
    raise SystemExit(main())
