#!/usr/bin/env bash
# Simulate a learner opening lessons 00 and 07 from their "Open in Colab" badges, on this machine, and time it.
#
#   bash tools/colab_simulation.sh [WORKDIR]      # default: a new folder under /tmp; needs /content (root)
#
# What stands in for what:
# - Colab's Python: a new venv holding only what Colab preinstalls that the course touches (torch 2.13.0, the
#   CPU build here, and Jupyter). No course venv, nothing from this checkout's .venv.
# - A fresh Colab VM: HOME, the pip cache, the Jupyter kernels and the course cache all start empty, so
#   llama.cpp compiles as it does there. Only the pip configuration is copied into the new HOME: it points
#   pip at this machine's package mirror, where Colab reaches PyPI.
# - GitHub: `git clone https://github.com/local-llm-lab/local-llm-lab` is rewritten (git's `insteadOf`) to
#   this checkout's committed HEAD, so the notebooks' install cell runs unchanged.
# - `google.colab`: an empty module, imported when Colab's Python starts, as Colab's kernel has it in sys.modules
#   before the first cell (what the install cell tests for).
# The notebooks are executed as Colab runs them: a kernel started *before* the install (so the install
# cell must make `course_utils` importable in the running kernel), working directory /content.
# Printed: the install cell's time, each lesson's run time and whether every cell ran without an error;
# the executed copies are kept in WORKDIR/executed/.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
WORK="${1:-$(mktemp -d /tmp/colab-sim.XXXXXX)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
URL="https://github.com/local-llm-lab/local-llm-lab"

if [[ -e /content && ! -f /content/.course-colab-simulation ]]; then
  echo "/content exists and was not made by this script: not touching it. Fix: move it away, then run again." >&2
  exit 2
fi
rm -rf /content && mkdir -p /content && touch /content/.course-colab-simulation

PIP_CONF="${PIP_CONFIG_FILE:-$HOME/.config/pip/pip.conf}"  # read before HOME is replaced
export HOME="$WORK/home" XDG_CACHE_HOME="$WORK/home/.cache" JUPYTER_DATA_DIR="$WORK/home/.local/share/jupyter"
mkdir -p "$HOME/.config/pip"
if [[ -f "$PIP_CONF" ]]; then cp "$PIP_CONF" "$HOME/.config/pip/pip.conf"; fi
unset VIRTUAL_ENV PYTHONPATH COURSE_CACHE COURSE_BACKEND COURSE_MODEL
git config --file "$HOME/.gitconfig" "url.file://$REPO.insteadOf" "$URL"

echo ">> Colab's Python: torch 2.13.0 and Jupyter in a new environment"
start=$(date +%s)
python3 -m venv "$WORK/colab-python"
export PATH="$WORK/colab-python/bin:$PATH"
python -m pip install -q --disable-pip-version-check torch==2.13.0 jupyter nbclient ipykernel
SITE="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$SITE/google/colab" && : >"$SITE/google/colab/__init__.py"
echo "import google.colab" >"$SITE/colab-runtime.pth"  # Colab's kernel has imported it before the first cell runs
echo ">> (that took $(( $(date +%s) - start )) s; on Colab it is already there)"

mkdir -p "$WORK/opened" "$WORK/executed"
for lesson in 00_setup 07_rag; do  # what the badge opens: the notebook as committed
  git -C "$REPO" show "HEAD:notebooks/$lesson.ipynb" >"$WORK/opened/$lesson.ipynb"
done

python - "$WORK" <<'PYEOF'
"""Run each opened notebook in a kernel of Colab's Python, from /content, the way Colab runs it."""
import datetime as dt
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def seconds(cell) -> float:
    """How long one executed cell ran, from the timestamps nbclient records."""
    t = cell.metadata.get("execution", {})
    begin, end = t.get("iopub.execute_input"), t.get("shell.execute_reply")
    return (dt.datetime.fromisoformat(end.rstrip("Z")) - dt.datetime.fromisoformat(begin.rstrip("Z"))).total_seconds()


work = Path(sys.argv[1])
for lesson in ("00_setup", "07_rag"):
    nb = nbformat.read(work / "opened" / f"{lesson}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": "/content"}},
                            allow_errors=True, record_timing=True)
    start = time.perf_counter()
    client.execute()
    total = time.perf_counter() - start
    nbformat.write(nb, work / "executed" / f"{lesson}.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]

    install = next(c for c in code if "google.colab" in c.source)
    errors = [(i, o.ename, o.evalue) for i, c in enumerate(code) for o in c.get("outputs", []) if o.output_type == "error"]
    print(f">> {lesson}: install cell {seconds(install):.0f} s, the whole notebook {total:.0f} s, "
          f"{len(code)} code cells, {len(errors)} with an error")
    for i, name, value in errors:
        print(f"   cell {i}: {name}: {value[:300]}")
    for o in install.get("outputs", []):
        if o.output_type == "stream":
            print("   install cell printed:", " | ".join(o.text.strip().splitlines()[-4:]))
PYEOF
echo ">> executed copies in $WORK/executed/"
