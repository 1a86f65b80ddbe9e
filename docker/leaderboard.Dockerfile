# The PhaseBench application image: the leaderboard website under gunicorn (the default command)
# and, with `phasebench worker` as the command, the evaluator worker of docker/compose.yaml.
#
#   docker build -f docker/leaderboard.Dockerfile -t phasebench-app .
#   here/tests: --build-arg BASE_IMAGE=localhost/debian-min:bookworm, with the CPU torch wheel in
#               docker/wheels/ (the scoring code imports torch; the website needs no GPU).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# A Python 3.11+ interpreter, from the distribution when the base image has none.
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi

COPY docker/wheels/ /tmp/wheels/
# torch first, CPU build, so that the project's range never pulls a multi-GB CUDA build.
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && if ls /tmp/wheels/torch-*.whl >/dev/null 2>&1; then /opt/venv/bin/pip install --no-cache-dir /tmp/wheels/torch-*.whl; \
       else /opt/venv/bin/pip install --no-cache-dir --index-url "${TORCH_INDEX}" "${TORCH_SPEC}"; fi \
    && rm -rf /tmp/wheels

WORKDIR /app
COPY pyproject.toml README.md ./
COPY benchmark/ benchmark/
COPY evaluator/ evaluator/
COPY leaderboard/ leaderboard/
# The worker builds per-submission images from this file (evaluator/sandbox/submission_image.py).
COPY docker/submission.Dockerfile docker/
# Editable: the package finds docker/ and the embedded dataset next to its sources.
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && /opt/venv/bin/pip install --no-cache-dir -e . \
    && useradd --system --uid 10001 --home-dir /app --no-create-home phasebench

USER 10001
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-", "leaderboard:create_app()"]
