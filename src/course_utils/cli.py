"""The ``course`` command: doctor, list, run, app, eval, serve, grade.

    course doctor            what is installed, where the assets are, which backends work
    course list              the lessons and labs
    course run [NB ...]      execute lessons headlessly into build/course/ with a report
    course app               the local assistant app (lesson 11) on http://127.0.0.1:7860/
    course eval TASK ...     score benchmark tasks (arc_easy, mmlu, gsm8k, ...) with a backend
    course serve             one OpenAI-compatible model server for a whole class (API key, request log)
    course grade SUB ...     instructors: run learners' lab notebooks, write every verdict to a CSV
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
    run.add_argument("--in-place", action="store_true", help="store outputs in the notebooks themselves (authors; needs a quiet machine)")
    run.add_argument("--force", action="store_true", help="with --in-place: store even on a busy machine (recorded in the notebook)")
    run.add_argument("--readme", action="store_true", help="write the measured lesson run times into README.md's lesson table")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), help="papermill parameter, e.g. -p FULL True")
    app = sub.add_parser("app", help="start the local assistant app (chat, documents, voice) on 127.0.0.1")
    app.add_argument("--backend", default="auto", help="backend name (default: auto)")
    app.add_argument("--model", default=None, help="model path or id (default: COURSE_MODEL or the bundled SmolLM2)")
    app.add_argument("--port", type=int, default=7860, help="port on 127.0.0.1 (0 = any free port; default 7860)")
    app.add_argument("--docs", default=None, help="folder or file of .md/.txt documents for documents mode (default: the course notes)")
    app.add_argument("--no-voice", action="store_true", help="hide the voice input (Whisper is never loaded)")
    ev = sub.add_parser("eval", help="score benchmark tasks; prints acc, acc_norm, standard errors, chance")
    ev.add_argument("tasks", nargs="+", metavar="TASK", help="arc_easy, arc_challenge, hellaswag, mmlu, mmlu_5shot, winogrande, boolq, piqa, gsm8k, humaneval")
    ev.add_argument("--backend", default="transformers", help="transformers or llamacpp (log-probabilities); any backend for gsm8k/humaneval")
    ev.add_argument("--limit", type=int, default=50, help="items per task, the first ones (default 50; 0 = all)")
    ev.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                    help="transformers weights: bf16 is what leaderboards usually use, ~2x faster on CPUs with native bf16")
    serve = sub.add_parser("serve", help="serve the model to a class: an OpenAI-compatible server with an API key and a request log")
    serve.add_argument("--engine", choices=("auto", "llama-server", "llama-cpp-python"), default="auto",
                       help="llama-server: llama.cpp's C++ server, continuous batching over --parallel slots (build it once: "
                            "bash tools/build_llama_server.sh); llama-cpp-python: one request at a time; auto (default): llama-server if built")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on: 0.0.0.0 for every network (default 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--api-key", default=None, help="the key learners send (default: $COURSE_SERVE_API_KEY, else a new random key, printed)")
    serve.add_argument("--model", default=None, help="a .gguf file (default: COURSE_MODEL or the bundled SmolLM2)")
    serve.add_argument("--parallel", type=int, default=8, help="llama-server slots decoded together (default 8)")
    serve.add_argument("--ctx", type=int, default=None, help="context window per request, tokens (default COURSE_CTX)")
    serve.add_argument("--log", default=None, help="also append one JSON line per request to this file")
    gr = sub.add_parser("grade", help="instructors: execute learners' lab notebooks and write every exercise's verdict to a CSV")
    gr.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="learners' .ipynb files, or folders holding them")
    gr.add_argument("--out", default="grades.csv", help="the CSV to write (default: grades.csv)")
    gr.add_argument("--lab", default=None, help="the lab they should all be, e.g. 01 (default: the lab each notebook is)")
    gr.add_argument("--timeout", type=float, default=600.0, help="seconds per notebook (default 600)")
    gr.add_argument("--cell-timeout", type=float, default=120.0, help="seconds per cell before it is interrupted (default 120)")
    gr.add_argument("--keep", default=None, metavar="FOLDER", help="also keep the executed graded notebooks in FOLDER")
    args = parser.parse_args(argv)
    try:
        return {"doctor": cmd_doctor, "list": cmd_list, "run": cmd_run, "app": cmd_app, "eval": cmd_eval,
                "serve": cmd_serve, "grade": cmd_grade}[args.command](args)
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
    from .paths import project_root
    from .runner import lessons, notebook_title

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
    from .paths import project_root
    from .runner import lessons, run_notebooks, select, update_readme_run_times, write_report

    root = project_root()
    pool = lessons(root, include_labs=args.labs or args.all)
    if args.all:
        pool += sorted((root / "labs").glob("[0-9][0-9]_*.ipynb"))
    chosen = select(pool, args.notebooks)
    out = Path(args.out) if args.out else root / "build" / "course"
    params = {k: _parse_value(v) for k, v in (args.parameter or [])}
    print(f"Running {len(chosen)} notebook(s) -> {out if not args.in_place else 'in place'}")
    runs = run_notebooks(chosen, out, parameters=params, in_place=args.in_place, force=args.force)
    report = write_report(runs, out / "report.md")
    if args.readme:
        done = update_readme_run_times(runs, root / "README.md")
        print(f"README: run times of lessons {', '.join(done) or 'none'} updated")
    failed = [r for r in runs if r.status != "ok"]
    print(f"\n{len(runs) - len(failed)}/{len(runs)} ok in {sum(r.seconds for r in runs):.0f} s. Report: {report}")
    return 1 if failed else 0


# ----------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    from .errors import InvalidOption
    from .evaluation import (
        GEN_TASKS,
        MC_TASKS,
        load_task,
        make_scorer,
        run_gsm8k,
        run_humaneval,
        score_multiple_choice,
    )

    limit = None if args.limit == 0 else args.limit
    unknown = [t for t in args.tasks if t not in MC_TASKS and t not in GEN_TASKS]
    if unknown:
        raise InvalidOption(f"unknown task(s) {unknown}", fix=f"use some of {sorted(MC_TASKS) + list(GEN_TASKS)}")
    if any(t in MC_TASKS for t in args.tasks) and args.backend not in ("transformers", "llamacpp", "auto"):
        raise InvalidOption(f"the {args.backend} backend gives no log-probabilities, which multiple-choice tasks need",
                            fix="use --backend transformers or llamacpp (any backend works for gsm8k and humaneval)")
    tasks = {t: load_task(t, limit) for t in args.tasks if t in MC_TASKS}  # checks limit before loading a model
    if any(t in GEN_TASKS for t in args.tasks) and (limit is None or limit < 1):
        raise InvalidOption(f"--limit {args.limit} is not allowed for generation tasks", fix="use e.g. --limit 5")
    from .backends import get_backend

    if args.dtype != "fp32" and args.backend != "transformers":
        raise InvalidOption(f"--dtype {args.dtype} applies to the transformers backend only", fix="add --backend transformers, or drop --dtype")
    backend = get_backend(args.backend)
    scorer = None
    try:
        if args.dtype == "bf16":
            import torch

            backend.model.to(torch.bfloat16)  # this backend is closed at the end of the command
        if tasks:
            scorer = make_scorer(backend)
        weights = args.dtype if backend.name == "transformers" else backend.info().quantization
        print(f"backend {backend.name} ({weights}), limit {limit or 'all'}\n")
        print(f"{'task':<15}{'n':>5}  {'metric':<12}{'value':>7} {'± se':>7}  {'acc':>6}  {'acc_norm':>8}  {'chance':>6}  {'items/s':>7}")
        for name in args.tasks:
            if name in tasks:
                task = tasks[name]
                r = score_multiple_choice(scorer, task.items, task=name)
                value, se = (r.acc, r.acc_stderr) if task.metric == "acc" else (r.acc_norm, r.acc_norm_stderr)
                print(f"{name:<15}{r.n:>5}  {task.metric:<12}{value:>7.3f} {se:>7.3f}  {r.acc:>6.3f}  {r.acc_norm:>8.3f}  {r.chance:>6.3f}  {r.items_per_s:>7.1f}")
            else:
                g = (run_gsm8k if name == "gsm8k" else run_humaneval)(backend, limit=limit)
                row = g.row()
                metric = "exact_match" if name == "gsm8k" else "pass@1"
                print(f"{name:<15}{g.n:>5}  {metric:<12}{g.score:>7.3f} {row['±']:>7.3f}  {'':>6}  {'':>8}  {'0':>6}  {g.n / g.seconds:>7.1f}")
    finally:
        if scorer is not None and hasattr(scorer, "close"):
            scorer.close()
        backend.close()
    return 0


# ----------------------------------------------------------------------------- grade
def cmd_grade(args: argparse.Namespace) -> int:
    from .errors import InvalidOption
    from .grading import grade, summary, write_csv

    if not (args.timeout > 0 and args.cell_timeout > 0):
        raise InvalidOption(f"--timeout {args.timeout:g} and --cell-timeout {args.cell_timeout:g} must be above 0", fix="use e.g. --timeout 600 --cell-timeout 120")
    results = grade(args.submissions, lab=args.lab, timeout_s=args.timeout, cell_timeout_s=args.cell_timeout, keep=args.keep)
    out = write_csv(results, args.out)
    print("\n" + summary(results))
    print(f"\n{len(results)} submission(s) graded -> {out}" + (f"; executed notebooks in {args.keep}" if args.keep else ""))
    return 0


def _parse_value(text: str) -> object:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# ----------------------------------------------------------------------------- app
def cmd_app(args: argparse.Namespace) -> int:
    from .app import ShutdownSignals, exit_if_slower_than, exit_watchdog, launch_app, serve_forever
    from .paths import project_root

    signals = ShutdownSignals().install()  # kept until the process ends: a late Ctrl-C must not print a traceback
    handle = None
    try:
        docs = args.docs
        if docs is None:  # the course's own notes, so documents mode works out of the box
            notes = project_root() / "data" / "tokens_corpus.md"
            docs = notes if notes.is_file() else None
        print("Starting the assistant (loading the model)...", flush=True)
        handle = launch_app(args.backend, model=args.model, documents=docs, voice=not args.no_voice, port=args.port)
        print(f"Running on {handle.url}  (only this machine can reach it; Ctrl-C stops it)", flush=True)
        serve_forever(handle, signals=signals)
    except KeyboardInterrupt:  # Ctrl-C while starting; launch_app stops what it had started itself
        if handle is not None:
            with exit_if_slower_than(4.5):
                handle.close()
    print("Stopped.", flush=True)
    exit_watchdog(2.0)  # the interpreter's own exit (thread joins, atexit hooks) must not hang either
    return 0


# ----------------------------------------------------------------------------- serve
def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import ClassServer, RequestLog, new_api_key, serve_forever

    key = args.api_key or os.environ.get("COURSE_SERVE_API_KEY") or new_api_key()
    server = ClassServer(args.engine, host=args.host, port=args.port, api_key=key, model=args.model,
                         parallel=args.parallel, n_ctx=args.ctx, log=RequestLog(Path(args.log) if args.log else None))
    engine = server.engine_name
    slots = f", {args.parallel} parallel slots" if engine == "llama-server" else ", one request at a time"
    print(f"Starting {engine}{slots} (loading the model)...", flush=True)
    if engine == "llama-cpp-python":
        print("  (for a class, build llama.cpp's own server once: bash tools/build_llama_server.sh)", flush=True)

    def ready(s: ClassServer) -> None:
        shown = "<this machine's address>" if s.host in ("0.0.0.0", "::") else s.host
        print(f"Serving on {s.base_url}  (Ctrl-C stops it)", flush=True)
        print("Learners set:", flush=True)
        print(f"  COURSE_BACKEND=openai  OPENAI_BASE_URL={s.base_url.replace(s.host, shown, 1)}  OPENAI_API_KEY={key}", flush=True)
        print("One line per request follows: status, latency, first token, tokens.", flush=True)

    serve_forever(server, on_ready=ready)
    print("Stopped: the engine is shut down and the port is free.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
