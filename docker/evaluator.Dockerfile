# The PhaseBench evaluator image: the interpreter and libraries a method's worker runs with.
#
#   GPU hosts:  --build-arg BASE_IMAGE=<a CUDA PyTorch image>  (torch comes with the base)
#   here/tests: --build-arg BASE_IMAGE=localhost/debian-min:bookworm, with the CPU torch wheel
#               placed in docker/wheels/ so nothing pulls a multi-GB CUDA build.
# The worker script is baked in, so the image digest recorded with every score pins it too.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TORCH_SPEC="torch==2.13.0"
ARG PIP_PACKAGES="numpy scipy scikit-learn safetensors"

# A Python 3.11+ interpreter, from the distribution when the base image has none.
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi

# System site packages: a CUDA base image's torch is reused instead of downloaded again.
# Behind a TLS-inspecting proxy, pass its CA bundle as the build secret `pip_ca`; it is used for
# this step only and never stored in the image. The wheels are bind-mounted, not copied: a COPY
# layer would keep a copy of the 200 MB+ torch wheel in the image beside the installed torch.
RUN --mount=type=secret,id=pip_ca,required=false \
    --mount=type=bind,source=docker/wheels,target=/tmp/wheels \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && python3 -m venv --system-site-packages /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && if /opt/venv/bin/python -c "import torch" 2>/dev/null; then echo "torch from the base image"; \
       elif ls /tmp/wheels/torch-*.whl >/dev/null 2>&1; then /opt/venv/bin/pip install --no-cache-dir /tmp/wheels/torch-*.whl; \
       else /opt/venv/bin/pip install --no-cache-dir "${TORCH_SPEC}"; fi \
    && /opt/venv/bin/pip install --no-cache-dir ${PIP_PACKAGES}

COPY evaluator/sandbox/worker_entry.py /opt/phasebench/worker.py
# The baselines' shared library (phasebench_baselines), importable by every submission, as in the
# bubblewrap sandbox's environment; its version and sha256 are recorded with every evaluation.
COPY evaluator/baselines_library/ /tmp/baselines_library/
# pip fetches the build backend (setuptools): the same proxy CA secret as above.
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/baselines_library && rm -rf /tmp/baselines_library

USER 65534:65534
WORKDIR /scratch
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/scratch
ENTRYPOINT []
CMD ["python", "-I", "-B", "/opt/phasebench/worker.py", "/in/job.json"]
