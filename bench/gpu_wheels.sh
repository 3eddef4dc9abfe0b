#!/bin/sh
# What a bare GPU machine of this workplace lacks for bench/gpu_bench.py (its image has Python
# 3.12, torch, numpy, scipy, click, safetensors, psutil, ninja, ... but not these), packed into
# .whl/site.tar.xz (ignored by git; ~32 MB, so the working tree + pack stays under the 64 MiB a
# device run carries). Versions are this venv's. DeepSpeed publishes only a source archive: it is
# built here as a pure-Python wheel (no ops compiled; init_inference without kernel injection
# needs none). Then, on the device (carry .whl):
#   python3 -c "import tarfile; tarfile.open('.whl/site.tar.xz').extractall('/tmp/site')" &&
#   export PYTHONPATH=/tmp/site && python3 bench/gpu_bench.py --out $OUT
set -eu
cd "$(dirname "$0")/.."
PY=.venv/bin/python
grep -qxF '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ver() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
pins=""
for name in av sqlalchemy alembic mako platformdirs pyloudnorm hjson pydantic pydantic-core annotated-types \
        typing-inspection; do
    pins="$pins $name==$(ver "$name")"
done
# shellcheck disable=SC2086
nice -n 19 "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$work/wheels" $pins
nice -n 19 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$work/wheels" "deepspeed==$(ver deepspeed)"
mkdir -p "$work/site" .whl
for w in "$work"/wheels/*.whl; do
    "$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$w" "$work/site"
done
nice -n 19 tar -cJf .whl/site.tar.xz -C "$work/site" .
ls -la .whl
