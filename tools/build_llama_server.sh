#!/usr/bin/env bash
# Build llama.cpp's own C++ server, `llama-server` (parallel slots, continuous batching), for `course serve
# --engine llama-server`. Opt-in: the lessons never need it, and nothing builds it at a lesson's run time.
#
#   bash tools/build_llama_server.sh [PYTHON]     # PYTHON: the course's python (default .venv/bin/python)
#
# The sources are the llama.cpp that llama-cpp-python vendors in its source distribution, at the version the
# course has installed, so both servers run the same llama.cpp. The binary is cached (built once, ~6-10 min
# on 2 cores) in $COURSE_CACHE/llama-server/<version>/llama-server and reused afterwards; the cache folder is
# only put in place when the build has succeeded and the binary answers --version.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${1:-.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3
VERSION="$("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)' 2>/dev/null || true)"
VERSION="${LLAMA_SERVER_VERSION:-${VERSION:-0.3.36}}"
CACHE="${COURSE_CACHE:-$HOME/.cache/local-llm-lab}"
DEST="$CACHE/llama-server/$VERSION"
if [[ -x "$DEST/llama-server" ]] && "$DEST/llama-server" --version >/dev/null 2>&1; then
  echo ">> llama-server $VERSION already built: $DEST/llama-server"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/llama-server-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo ">> fetching the llama-cpp-python $VERSION source distribution (it vendors llama.cpp)"
"$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$WORK"
tar -xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"

# As in tools/install.sh: no AMX kernels on x86-64 (they die with SIGILL on VMs whose CPU reports AMX).
FLAGS=""
if [[ "$(uname -m)" == "x86_64" ]]; then FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"; fi
# LLAMA_USE_PREBUILT_UI=OFF: otherwise the build downloads the web UI from a model hub. The server then
# serves the API only (what a class needs); LLAMA_OPENSSL=OFF: plain HTTP, no libssl needed.
echo ">> configuring (cmake)"
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
  -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" >"$WORK/cmake.log" 2>&1 \
  || { tail -20 "$WORK/cmake.log"; exit 1; }
echo ">> compiling llama-server ($(nproc) jobs; 6-10 min on 2 cores)"
cmake --build "$WORK/build" --target llama-server -j "$(nproc)" >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log"; exit 1; }
"$WORK/build/bin/llama-server" --version

mkdir -p "$CACHE/llama-server"
STAGE="$(mktemp -d "$CACHE/llama-server/.$VERSION.XXXXXX")"
cp "$WORK/build/bin/llama-server" "$STAGE/"
rm -rf "$DEST"
mv "$STAGE" "$DEST"  # atomic: a half-copied binary is never at $DEST
echo ">> built $DEST/llama-server"
