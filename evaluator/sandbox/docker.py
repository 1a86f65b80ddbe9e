"""``docker``: each worker in a container of the evaluator image, through the Docker Engine API.

The same API is served by Podman (``podman system service``), which is how the tests run it on
hosts without a Docker engine. The container has no network, a read-only root file system, a
small /tmp tmpfs, memory, CPU, process and file-size limits, no capabilities, runs as nobody,
and sees only its submission (read-only), one instance's inputs, and a scratch folder. With
``--device cuda`` it is given one GPU through a device request.
"""
from __future__ import annotations

import os
import resource
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path

from .base import (SHM_MB, TMP_MB, Sandbox, SandboxError, WorkerCancelled, WorkerJob, WorkerResult, apply_oracle_usage,
                   collect_result, oracle_served, scratch_overrun, tail_file, worker_environment, write_job)

__all__ = ["DockerSandbox", "DEFAULT_IMAGE"]

DEFAULT_IMAGE = "localhost/phasebench-evaluator:latest"
_TMPFS = f"rw,nosuid,nodev,size={TMP_MB}m"
_SCRATCH_POLL_S = 0.2
_LOG = ".worker.log"


class DockerSandbox(Sandbox):
    name = "docker"
    isolated = True

    def __init__(self, image: str | None = None, base_url: str | None = None, gpu: str | None = None):
        self.image = image or os.environ.get("PHASEBENCH_IMAGE", DEFAULT_IMAGE)
        self.base_url = base_url or os.environ.get("PHASEBENCH_DOCKER_HOST") or os.environ.get("DOCKER_HOST")
        self.gpu = gpu or os.environ.get("PHASEBENCH_GPU", "0")
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import docker

            self._client = docker.DockerClient(base_url=self.base_url) if self.base_url else docker.from_env()
        return self._client

    def available(self) -> tuple[bool, str]:
        try:
            self.client.ping()
        except Exception as exc:  # no engine, no socket, wrong URL: all mean "not here"
            return False, f"no Docker Engine API answers ({self.base_url or 'DOCKER_HOST/default socket'}): {exc}"
        try:
            self.client.images.get(self.image)
        except Exception:
            return False, f"image {self.image} not found: build it with `make evaluator-image`"
        return True, self.image

    def for_submission(self, submission, log=None) -> "DockerSandbox":
        """This sandbox, or one on the submission's own image when it declares extra requirements
        (built once, at build time: see submission_image.py)."""
        requirements = list(submission.spec.requirements)
        if not requirements:
            return self
        from .submission_image import ensure_submission_image

        tag = ensure_submission_image(self.client, self.image, submission.name, submission.folder, requirements, log)
        return DockerSandbox(image=tag, base_url=self.base_url, gpu=self.gpu)

    def provenance(self) -> dict[str, str]:
        image = self.client.images.get(self.image)
        digests = image.attrs.get("RepoDigests") or []
        # A submission's own image names the evaluator image it was built from and what it added.
        labels = {k.removeprefix("phasebench."): v for k, v in (image.labels or {}).items()
                  if k in ("phasebench.base_image_id", "phasebench.requirements")}
        return {"image": self.image, "image_id": image.id, **({"repo_digest": digests[0]} if digests else {}),
                **labels}

    def _wait(self, container, start: float, wall_time_s: float, scratch: Path,
              cancel: threading.Event | None = None) -> tuple[int | None, str | None, str]:
        """(exit code, verdict, detail): no exit code past the wall-time or scratch limit. Polls the
        container's state: Podman's blocking wait endpoint spins a core while it waits, which
        starves the worker it waits for. The scratch folder is bound from the host's disk, so its
        size and file count are watched here (the file-size ulimit caps only one file)."""
        delay = 0.01
        next_scratch_check = start + _SCRATCH_POLL_S
        while True:
            container.reload()
            state = container.attrs.get("State", {})
            if state.get("Status") in ("exited", "dead", "stopped"):
                # A method can fill its scratch folder faster than the poll: the limit holds at the end too.
                overrun = scratch_overrun(scratch, self.scratch_mb, self.scratch_files)
                return int(state.get("ExitCode", -1)), ("scratch" if overrun else None), overrun or ""
            now = time.perf_counter()
            if now > next_scratch_check:
                next_scratch_check = now + _SCRATCH_POLL_S
                overrun = scratch_overrun(scratch, self.scratch_mb, self.scratch_files)
                if overrun:
                    return None, "scratch", overrun
            if now - start > wall_time_s:
                return None, "timeout", ""
            if cancel is not None and cancel.is_set():
                return None, "cancelled", ""
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)

    def run(self, job: WorkerJob) -> WorkerResult:
        root = Path(tempfile.mkdtemp(prefix="phasebench-job-"))
        try:
            return self._run(job, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _run(self, job: WorkerJob, root: Path) -> WorkerResult:
        import docker

        scratch = root / "scratch"
        scratch.mkdir()
        scratch.chmod(0o777)  # the container runs as nobody
        seen = {"submission": "/submission", "inputs": "/in/inputs.safetensors", "scratch": "/scratch",
                "job": "/in/job.json"}
        job_file = root / "job.json"
        write_job(job, seen, job_file)
        job_file.chmod(0o644)
        inputs = job.inputs_file
        if not inputs.stat().st_mode & stat.S_IROTH:
            # The container runs as nobody: hand it a readable copy rather than loosen the dataset's modes.
            inputs = root / "inputs.safetensors"
            shutil.copyfile(job.inputs_file, inputs)
            inputs.chmod(0o644)
        limits = job.limits
        fsize = int(limits.output_mb * 2**20)
        volumes = {str(job.submission_dir): {"bind": seen["submission"], "mode": "ro"},
                   str(inputs): {"bind": seen["inputs"], "mode": "ro"},
                   str(job_file): {"bind": seen["job"], "mode": "ro"},
                   str(scratch): {"bind": seen["scratch"], "mode": "rw"}}
        nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        kwargs = dict(
            # Output goes to a file under the container's file-size limit, as with the other
            # backends, instead of into the engine's log, which nothing would cap.
            command=["/bin/sh", "-c", f"exec python -I -B /opt/phasebench/worker.py {seen['job']} "
                                      f"> {seen['scratch']}/{_LOG} 2>&1"],
            detach=True, network_mode="none", read_only=True, tmpfs={"/tmp": _TMPFS}, shm_size=f"{SHM_MB}m",
            mem_limit=f"{limits.memory_mb}m", memswap_limit=f"{limits.memory_mb}m", pids_limit=self.max_processes,
            user="65534:65534", working_dir=seen["scratch"], volumes=volumes, cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            # The device request picks the GPU; inside, it is the container's only one.
            environment={**{k: v for k, v in worker_environment(job).items() if k != "CUDA_VISIBLE_DEVICES"},
                         "HOME": seen["scratch"]},
            ulimits=[docker.types.Ulimit(name="fsize", soft=fsize, hard=fsize),
                     docker.types.Ulimit(name="core", soft=0, hard=0),
                     # An engine's default open-file and process limits can exceed what this host
                     # allows a container (runc then refuses to start): ask for no more than we have.
                     docker.types.Ulimit(name="nofile", soft=min(4096, nofile_hard), hard=nofile_hard),
                     docker.types.Ulimit(name="nproc", soft=self.max_processes, hard=self.max_processes)],
        )
        if job.device == "cuda":
            kwargs["device_requests"] = [docker.types.DeviceRequest(device_ids=[self.gpu], capabilities=[["gpu"]])]
        with oracle_served(job, scratch) as oracle:
            result = self._run_container(kwargs, scratch, limits, job.cancel)
        return apply_oracle_usage(result, oracle)

    def _run_container(self, kwargs: dict, scratch: Path, limits, cancel: threading.Event | None = None) -> WorkerResult:
        import docker

        start = time.perf_counter()
        try:
            container = self.client.containers.run(self.image, **kwargs)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"sandbox 'docker' could not start a container from {self.image}: {exc}") from exc
        try:
            returncode, verdict, detail = self._wait(container, start, limits.wall_time_s, scratch, cancel)
            if returncode is None:
                try:
                    container.kill()
                except docker.errors.APIError:
                    # It exited by itself between the last poll and the kill (seen in CI: "can
                    # only kill running containers"); the verdict stands either way.
                    pass
                returncode = -9
            if verdict == "cancelled":
                raise WorkerCancelled("the evaluation was interrupted")
            wall = time.perf_counter() - start
            container.reload()
            state = container.attrs.get("State", {})
            # Only the kernel's OOM killer sends SIGKILL (137) to a container we did not kill;
            # some engines (Podman on cgroups v1) do not set OOMKilled.
            if verdict is None and (state.get("OOMKilled") or returncode == 137):
                verdict = "memory"
        finally:
            try:
                container.remove(force=True)
            except docker.errors.DockerException:
                pass
        log_path = scratch / _LOG
        log_tail = tail_file(log_path) if log_path.is_file() else ""
        if verdict is None and not (scratch / "started").exists():
            raise SandboxError(f"sandbox 'docker' could not start the worker (exit code {returncode}): "
                               f"{log_tail.strip()[-500:]}")
        result = collect_result(returncode, verdict, scratch, log_tail, limits, detail)
        result.wall_s = wall
        return result
