"""Per-submission container images: the evaluator image plus the extra pip requirements a
submission declares (``requirements:`` in submission.yaml), installed at build time in a layer
of their own. The container has no network when the worker runs, so nothing is fetched then.

A requirement is a pip requirement line (``sympy==1.13``) or the relative path of a wheel shipped
inside the submission folder (``wheels/mylib-0.1-py3-none-any.whl``). The image is tagged by a key
over the evaluator image id, the requirement lines and the bytes of every local file they name,
so it is built once and rebuilt whenever any of those change.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from .base import SandboxError

__all__ = ["SUBMISSION_DOCKERFILE", "REQUIREMENTS_FILE", "image_key", "image_tag", "build_context",
           "ensure_submission_image"]

SUBMISSION_DOCKERFILE = Path(__file__).resolve().parents[2] / "docker" / "submission.Dockerfile"
#: The name the generated requirements file has inside the build context.
REQUIREMENTS_FILE = "phasebench-requirements.txt"
_LABEL = "phasebench.requirements"


def _local_files(folder: Path, requirements: list[str]) -> list[Path]:
    """Requirement lines that name a file inside the submission folder (a shipped wheel)."""
    out = []
    for line in requirements:
        candidate = (folder / line).resolve()
        if candidate.is_file():
            if not candidate.is_relative_to(folder.resolve()):
                raise SandboxError(f"{folder}/submission.yaml: requirements: {line!r} points outside the submission")
            out.append(candidate)
    return out


def image_key(base_image_id: str, folder: Path, requirements: list[str]) -> str:
    h = hashlib.sha256(base_image_id.encode() + b"\0")
    for line in requirements:
        h.update(line.encode() + b"\0")
    for path in _local_files(folder, requirements):
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def image_tag(name: str, key: str) -> str:
    return f"localhost/phasebench-submission-{name}:{key}"


def build_context(folder: Path, requirements: list[str]) -> bytes:
    """A tar of the Dockerfile, the requirements file and the local files it names, nothing else:
    the submission's code is mounted at run time and must not be baked into the image."""
    folder = folder.resolve()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0  # mtime 0: the same bytes every time
            tar.addfile(info, io.BytesIO(data))
        files_dir = tarfile.TarInfo("files")  # present even when empty: the Dockerfile copies it
        files_dir.type, files_dir.mode, files_dir.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(files_dir)
        add("Dockerfile", SUBMISSION_DOCKERFILE.read_bytes())
        add(REQUIREMENTS_FILE, "".join(f"{line}\n" for line in requirements).encode())
        for path in _local_files(folder, requirements):
            add(f"files/{path.relative_to(folder)}", path.read_bytes())
    return buf.getvalue()


def ensure_submission_image(client, base_image: str, name: str, folder: Path, requirements: list[str],
                            log=None) -> str:
    """The tag of ``name``'s image, built from ``base_image`` if it does not exist yet."""
    import docker
    import docker.errors

    base = client.images.get(base_image)
    tag = image_tag(name, image_key(base.id, folder, requirements))
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    if log:
        log(f"building {tag}: {base_image} + {', '.join(requirements)}")
    try:
        client.images.build(fileobj=io.BytesIO(build_context(folder, requirements)), custom_context=True,
                            tag=tag, buildargs={"EVALUATOR_IMAGE": base.id}, rm=True, pull=False,
                            labels={_LABEL: json.dumps(requirements), "phasebench.base_image_id": base.id})
    except docker.errors.BuildError as exc:
        tail = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)[-1500:]
        raise SandboxError(f"{folder}/submission.yaml: requirements could not be installed in the "
                           f"evaluator image: {exc.msg}\n{tail}") from exc
    return tag
