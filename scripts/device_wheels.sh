#!/usr/bin/env bash
# Wheels for the GPU machine (perf/gpu_check.sh): the project's runtime packages its image lacks
# (/work/.library/device/KINDS.md lists what it holds: torch, numpy, scipy, safetensors, click,
# tqdm, pytest, PyYAML, psutil, huggingface_hub...), for its Python 3.12, at this venv's versions.
# Into .whl/ (ignored: .git/info/exclude); the device call carries it.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
names="pydantic pydantic-core pydantic-settings python-dotenv annotated-types typing-inspection SQLAlchemy greenlet alembic Mako docker pyseccomp"
pins=()
for name in $names; do
  pin=$(.venv/bin/python -m pip freeze 2>/dev/null | grep -i -E "^${name//-/[-_]}==" || true)
  [ -n "$pin" ] || { echo "$name is not installed in .venv: run make install first" >&2; exit 1; }
  pins+=("$pin")
done
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${pins[@]}"
ls .whl
