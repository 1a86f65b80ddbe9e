# One submission's image: the evaluator image plus the extra pip requirements its submission.yaml
# declares, installed here, at build time, in a layer of their own (the worker runs without a
# network). Built by the docker sandbox from a generated context (evaluator/sandbox/
# submission_image.py): the requirements file and the wheels it names, never the method's code,
# which is mounted read-only at run time.
ARG EVALUATOR_IMAGE=localhost/phasebench-evaluator:latest
# hadolint ignore=DL3006
FROM ${EVALUATOR_IMAGE}

USER 0
COPY phasebench-requirements.txt /tmp/phasebench-req/requirements.txt
COPY files/ /tmp/phasebench-req/
# Relative wheel paths in the requirements resolve against the submission folder's copy.
WORKDIR /tmp/phasebench-req
RUN /opt/venv/bin/pip install --no-cache-dir -r requirements.txt && rm -rf /tmp/phasebench-req

USER 65534:65534
WORKDIR /scratch
