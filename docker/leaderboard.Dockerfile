# The PhaseBench application image: the leaderboard website under gunicorn (the default command)
# and, built with WITH_TORCH=1 and `phasebench worker` as the command, the evaluator worker of
# docker/compose.yaml.
#
#   docker build -f docker/leaderboard.Dockerfile -t phasebench-app .                              # website
#   docker build -f docker/leaderboard.Dockerfile --build-arg WITH_TORCH=1 -t phasebench-worker .  # worker
#   here/tests: --build-arg BASE_IMAGE=localhost/debian-min:bookworm, and for the worker the CPU torch
#               wheel in docker/wheels/ (the worker needs no GPU either).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# The website and the schema migration never import torch (tests/leaderboard/test_leaderboard_imports.py
# holds them to it), so their image leaves out its 200 MB+ wheel. The worker needs it: it builds the
# task data (`phasebench data build` trains the grokking-onset runs) and the process sandbox runs
# methods in its own environment.
ARG WITH_TORCH=0
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# A Python 3.11+ interpreter, from the distribution when the base image has none.
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi

# torch first, CPU build, so that the project's range never pulls a multi-GB CUDA build. The wheels
# are bind-mounted, not copied: a COPY layer would keep the wheel in the website's image too.
RUN --mount=type=secret,id=pip_ca,required=false \
    --mount=type=bind,source=docker/wheels,target=/tmp/wheels \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && if [ "${WITH_TORCH}" != 1 ]; then echo "no torch: the website's image"; \
       elif ls /tmp/wheels/torch-*.whl >/dev/null 2>&1; then /opt/venv/bin/pip install --no-cache-dir /tmp/wheels/torch-*.whl; \
       else /opt/venv/bin/pip install --no-cache-dir --index-url "${TORCH_INDEX}" "${TORCH_SPEC}"; fi

WORKDIR /app
COPY pyproject.toml README.md ./
# The project's dependencies but torch, read from pyproject.toml (their one list): pip would
# otherwise fetch torch, a CUDA build from PyPI, for the website. The package itself goes in below
# with --no-deps.
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && /opt/venv/bin/python -c 'import re, tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print("\n".join(d for d in deps if re.match(r"[A-Za-z0-9._-]+", d).group().lower() != "torch"))' \
       > /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY benchmark/ benchmark/
COPY evaluator/ evaluator/
COPY leaderboard/ leaderboard/
# The worker builds per-submission images from this file (evaluator/sandbox/submission_image.py).
COPY docker/submission.Dockerfile docker/
# Editable: the package finds docker/ and the embedded dataset next to its sources.
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /app --no-create-home phasebench

USER 10001
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-", "leaderboard:create_app()"]
