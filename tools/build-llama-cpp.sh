#!/usr/bin/env bash
# Build llama-cpp-python from source once (PyPI has no wheel for it) and install the wheel
# into the project's venv. The wheel is kept in a project-owned cache keyed by version and
# build flags: pip's own wheel cache ignores CMAKE_ARGS and could hand back a wheel built
# with flags that crash here (the default native build dies in the AMX path on these CPUs).
#
#   tools/build-llama-cpp.sh [PYTHON]        (default .venv/bin/python)
#
# LALM_EVAL_WHEEL_CACHE overrides the cache folder (default ~/.cache/lalm-eval/wheels).
set -euo pipefail

VERSION=0.3.36
# portable x86-64 build: AVX2/FMA/F16C kernels, no -march=native (see docs/models.md)
FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
PY="${1:-.venv/bin/python}"
KEY="$(printf '%s %s' "$VERSION" "$FLAGS" | sha256sum | cut -c1-16)"
CACHE="${LALM_EVAL_WHEEL_CACHE:-$HOME/.cache/lalm-eval/wheels}/llama-cpp-python-$VERSION-$KEY"

have() { "$PY" - "$VERSION" "$FLAGS" <<'PY'
import sys
from importlib import metadata
try:
    ok = metadata.version("llama-cpp-python") == sys.argv[1]
    from pathlib import Path
    import llama_cpp
    flags = Path(llama_cpp.__file__).with_name("BUILD_FLAGS.txt")
    ok = ok and flags.is_file() and flags.read_text().strip() == sys.argv[2]
except Exception:
    ok = False
sys.exit(0 if ok else 1)
PY
}

if have; then
    echo "llama-cpp-python $VERSION ($FLAGS) already installed"
    exit 0
fi
mkdir -p "$(dirname "$CACHE")"
# one build at a time per cache: a second set-up waits for the first and reuses its wheel
exec 9>"$CACHE.lock"
flock 9
wheel="$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ]; then
    echo "building llama-cpp-python $VERSION with $FLAGS (a few minutes; once per machine)"
    staging="$CACHE.tmp-$$"
    rm -rf "$staging"
    mkdir -p "$staging"
    CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$PY" -m pip wheel --quiet \
        --no-deps --no-cache-dir --no-binary llama-cpp-python \
        "llama-cpp-python==$VERSION" -w "$staging"
    printf '%s\n' "$FLAGS" >"$staging/BUILD_FLAGS.txt"
    rm -rf "$CACHE"
    mv "$staging" "$CACHE"
    wheel="$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl | head -1)"
fi
echo "installing $wheel"
"$PY" -m pip install --quiet --no-deps --force-reinstall "$wheel"
# record the flags next to the installed module (run_info and model fingerprints read them)
"$PY" - "$FLAGS" <<'PY'
import sys
from pathlib import Path
import llama_cpp
Path(llama_cpp.__file__).with_name("BUILD_FLAGS.txt").write_text(sys.argv[1] + "\n")
PY
