"""``docker``: each worker in a container of the evaluator image, through the Docker Engine API.

The same API is served by Podman (``podman system service``), which is how the tests run it on
hosts without a Docker engine. The container has no network, a read-only root file system,
sized tmpfs for scratch (unlinked and unreadable files count; its pages and inodes are charged to
the memory limit) and /tmp, memory
with no swap, CPU (a quota of the worker's CPUs), process, open-file and file-size limits, no
capabilities, runs as nobody, and sees only its submission (read-only), one instance's inputs,
and the answer, error and log files the parent created for it. That the worker started is the
container's state, never a file the method could delete. With ``--device cuda`` it is given one
GPU through a device request.
"""
from __future__ import annotations

import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmark.settings import default_of, get_settings

from .base import (MAX_OPEN_FILES, SHM_MB, TMP_MB, Sandbox, SandboxError, WorkerCancelled, WorkerJob, WorkerResult,
                   apply_oracle_usage, collect_result, job_files, oracle_served, remove_tree, stage_file, tail_file,
                   worker_environment, write_job)
from .oracle_channel import SOCKET_NAME
from .syscall_policy import container_profile

__all__ = ["DockerSandbox", "DEFAULT_IMAGE"]

DEFAULT_IMAGE: str = default_of("image")
# Podman's default profile (containers-common) with clone and unshare allowed only without
# namespace flags, as Docker's default has it, and clone3 answered ENOSYS (its flags sit behind a
# pointer seccomp cannot read): Podman's own default lets a container create a user namespace.
# The worker's profile is this one with syscall_policy applied (no file locks or watches).
SECCOMP_PROFILE = Path(__file__).resolve().parents[2] / "docker" / "seccomp.json"
_TMPFS = f"rw,nosuid,nodev,size={TMP_MB}m"


class DockerSandbox(Sandbox):
    name = "docker"
    isolated = True

    def __init__(self, image: str | None = None, base_url: str | None = None, gpu: str | None = None):
        settings = get_settings()
        self.image = image or settings.image
        # DOCKER_HOST is the Docker client's own variable, the usual way to point it elsewhere.
        self.base_url = base_url or settings.docker_host or os.environ.get("DOCKER_HOST")
        self.gpu = gpu or settings.gpu
        self._client = None
        self._seccomp: str | None = None

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

    def seccomp_option(self) -> str:
        """The security option that applies SECCOMP_PROFILE under the syscall policy: Docker takes
        the profile's JSON, Podman's compatible API the path of a file on its own host (the
        evaluator's, for a local socket)."""
        if self._seccomp is None:
            profile = json.dumps(container_profile(json.loads(SECCOMP_PROFILE.read_text())))
            components = self.client.version().get("Components") or []
            if any("podman" in str(c.get("Name", "")).lower() for c in components):
                # A file of this process's own (mode 0600), not a shared name another user could plant.
                fd, path = tempfile.mkstemp(prefix="phasebench-seccomp-", suffix=".json")
                with os.fdopen(fd, "w") as out:
                    out.write(profile)
                profile = path
            self._seccomp = f"seccomp={profile}"
        return self._seccomp

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
        return {"image": self.image, "image_id": str(image.id), **({"repo_digest": digests[0]} if digests else {}),
                **labels}

    def _wait(self, container, start: float, wall_time_s: float,
              cancel: threading.Event | None = None) -> tuple[int | None, str | None, str]:
        """(exit code, verdict, detail): no exit code past the wall-time limit. Polls the container's
        state: Podman's blocking wait endpoint spins a core while it waits, which starves the worker
        it waits for. Scratch is a sized tmpfs: the kernel enforces its limits, nothing is scanned."""
        import docker
        import docker.errors

        delay = 0.01
        failures = 0
        while True:
            try:
                container.reload()
                failures = 0
            except docker.errors.APIError:
                # Podman answers 500 when asked while the container's last process is going away
                # ("read /proc/N/cgroup: no such process"): ask again, give up only if it persists.
                failures += 1
                if failures > 20:
                    raise
                time.sleep(0.05)
                continue
            state = container.attrs.get("State", {})
            if state.get("Status") in ("exited", "dead", "stopped"):
                return int(state.get("ExitCode", -1)), None, ""
            now = time.perf_counter()
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
            remove_tree(root)

    def _run(self, job: WorkerJob, root: Path) -> WorkerResult:
        import docker
        import docker.types

        files = job_files(root, mode=0o666)  # the container runs as nobody
        # Scratch is a tmpfs on a path no image has: Podman ignores the tmpfs's mode=1777 over the
        # /scratch folder of a per-submission image (root 0755, the worker could not write).
        seen = {"submission": "/submission", "inputs": "/in/inputs.safetensors", "scratch": "/phasebench-scratch",
                "job": "/in/job.json", "oracle": "/in/oracle.sock", "answer": "/out/answer.safetensors",
                "error": "/out/error.json", "log": "/out/worker.log"}
        write_job(job, seen, files.job)
        files.job.chmod(0o644)
        inputs = stage_file(job.inputs_file, root / "inputs.safetensors", readable_by_all=True)  # runs as nobody
        limits = job.limits
        fsize = int(limits.output_mb * 2**20)
        # Only these files of the host are writable inside, each mounted on its own (a method can
        # neither add files beside them nor replace them); scratch is a sized tmpfs.
        volumes = {str(job.submission_dir): {"bind": seen["submission"], "mode": "ro"},
                   str(inputs): {"bind": seen["inputs"], "mode": "ro"},
                   str(files.job): {"bind": seen["job"], "mode": "ro"},
                   str(files.answer): {"bind": seen["answer"], "mode": "rw"},
                   str(files.error): {"bind": seen["error"], "mode": "rw"},
                   str(files.log): {"bind": seen["log"], "mode": "rw"}}
        if job.oracle is not None:
            volumes[str(root / SOCKET_NAME)] = {"bind": seen["oracle"], "mode": "rw"}
        # No nr_inodes (Podman refuses it): each empty file is kernel memory charged to the memory limit.
        scratch_tmpfs = f"rw,nosuid,nodev,size={int(self.scratch_mb)}m,mode=1777"
        nofile = min(MAX_OPEN_FILES, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        kwargs: dict[str, Any] = dict(
            # Output goes to a file under the container's file-size limit, as with the other
            # backends, instead of into the engine's log, which nothing would cap.
            command=["/bin/sh", "-c", f"exec python -I -B /opt/phasebench/worker.py {seen['job']} "
                                      f"> {seen['log']} 2>&1"],
            detach=True, network_mode="none", read_only=True,
            tmpfs={"/tmp": _TMPFS, seen["scratch"]: scratch_tmpfs}, shm_size=f"{SHM_MB}m",
            # Swap off: the memory limit is the memory and swap limit.
            mem_limit=f"{limits.memory_mb}m", memswap_limit=f"{limits.memory_mb}m", pids_limit=self.max_processes,
            nano_cpus=int(self.cpu_quota(job) * 1e9),
            user="65534:65534", working_dir=seen["scratch"], volumes=volumes, cap_drop=["ALL"],
            security_opt=["no-new-privileges", self.seccomp_option()],
            # The device request picks the GPU; inside, it is the container's only one.
            environment={**{k: v for k, v in worker_environment(job).items() if k != "CUDA_VISIBLE_DEVICES"},
                         "HOME": seen["scratch"]},
            ulimits=[docker.types.Ulimit(name="fsize", soft=fsize, hard=fsize),
                     docker.types.Ulimit(name="core", soft=0, hard=0),
                     # An engine's default open-file and process limits can exceed what this host
                     # allows a container (runc then refuses to start): ask for no more than we have.
                     docker.types.Ulimit(name="nofile", soft=nofile, hard=nofile),
                     docker.types.Ulimit(name="nproc", soft=self.max_processes, hard=self.max_processes)],
        )
        if job.device == "cuda":
            kwargs["device_requests"] = [docker.types.DeviceRequest(device_ids=[self.gpu], capabilities=[["gpu"]])]
        with oracle_served(job, root) as oracle:
            result = self._run_container(kwargs, files, limits, job.cancel)
        return apply_oracle_usage(result, oracle)

    def _run_container(self, kwargs: dict, files, limits, cancel: threading.Event | None = None) -> WorkerResult:
        import docker
        import docker.errors

        start = time.perf_counter()
        try:
            container = self.client.containers.run(self.image, **kwargs)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"sandbox 'docker' could not start a container from {self.image}: {exc}") from exc
        try:
            returncode, verdict, detail = self._wait(container, start, limits.wall_time_s, cancel)
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
            # The engine's record that the container ran, which nothing inside it can delete.
            started = bool(state.get("StartedAt")) and not str(state.get("StartedAt")).startswith("0001-")
        finally:
            try:
                container.remove(force=True)
            except docker.errors.DockerException:
                pass
        log_tail = tail_file(files.log)
        if verdict is None and not started:
            raise SandboxError(f"sandbox 'docker' could not start the worker (exit code {returncode}): "
                               f"{log_tail.strip()[-500:]}")
        result = collect_result(returncode, verdict, files.out, log_tail, limits, detail,
                                scratch_limits=(self.scratch_mb, self.scratch_files))
        result.wall_s = wall
        return result
