"""The system calls a worker may not make, in both isolated backends: the ones that read or write
kernel state attached to the files every worker shares.

Parallel workers see the same read-only files (the submission, the Python installation, the system
libraries). A lock on one of them, or a watch of its accesses, lives in the kernel, per inode, and
any process on the host can take or observe it: 32 bits an instance can pass to another one, or to
another submission's worker that runs at the same time. Refusing them closes that channel. They
fail with ENOSYS, as on a file system without locks: no numerical method needs one, and the lock
libraries they may use (filelock, under torch.compile's caches and huggingface_hub) fall back to
lock files on scratch when flock answers ENOSYS.

bwrap gets these as a filter that allows everything else (``bwrap_filter``); the container backend
applies them to its allow-list profile, docker/seccomp.json (``container_profile``), so one list
here is what both enforce.
"""
from __future__ import annotations

import copy
import errno
import functools
import tempfile
from typing import Any

__all__ = ["ALLOWED_FCNTL", "REFUSAL_ERRNO", "REFUSED_FCNTL", "REFUSED_SYSCALLS", "bwrap_filter",
           "container_profile"]

REFUSAL_ERRNO = errno.ENOSYS

# Whole system calls refused: advisory locks and watches on files or folders.
REFUSED_SYSCALLS = ("flock", "inotify_init", "inotify_init1", "fanotify_init")

# fcntl commands refused: POSIX and open-file-description locks (taking and querying them), leases
# and directory notification.
REFUSED_FCNTL = {
    "F_GETLK": 5, "F_SETLK": 6, "F_SETLKW": 7, "F_OFD_GETLK": 36, "F_OFD_SETLK": 37, "F_OFD_SETLKW": 38,
    "F_SETLEASE": 1024, "F_GETLEASE": 1025, "F_NOTIFY": 1026,
}

# fcntl commands the container's allow-list keeps (any other is refused there): descriptor flags,
# status flags, ownership and signals, pipe sizes, seals and write hints.
ALLOWED_FCNTL = {
    "F_DUPFD": 0, "F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4, "F_SETOWN": 8, "F_GETOWN": 9,
    "F_SETSIG": 10, "F_GETSIG": 11, "F_SETOWN_EX": 15, "F_GETOWN_EX": 16, "F_GETOWNER_UIDS": 17,
    "F_DUPFD_CLOEXEC": 1030, "F_SETPIPE_SZ": 1031, "F_GETPIPE_SZ": 1032, "F_ADD_SEALS": 1033,
    "F_GET_SEALS": 1034, "F_GET_RW_HINT": 1035, "F_SET_RW_HINT": 1036, "F_GET_FILE_RW_HINT": 1037,
    "F_SET_FILE_RW_HINT": 1038,
}

# The kernel reads fcntl's command as a 32-bit int while seccomp sees the whole register: a command
# with high bits set would pass an exact comparison and still lock. Only the low 32 bits are compared.
_CMD_MASK = 0xFFFF_FFFF
_FCNTL_CALLS = ("fcntl", "fcntl64")


@functools.cache
def bwrap_filter() -> bytes:
    """A compiled seccomp program (classic BPF, as bwrap's --seccomp reads it) that allows every
    call but the refused ones, which fail with REFUSAL_ERRNO; calls of another architecture (32-bit entry
    points on a 64-bit host) kill the worker. Raises OSError where libseccomp is missing."""
    try:
        import pyseccomp as seccomp
    except RuntimeError as exc:  # pyseccomp raises this on import when libseccomp.so is absent
        raise OSError(f"libseccomp is not installed ({exc}): bwrap cannot apply the syscall policy") from exc

    refuse = seccomp.ERRNO(REFUSAL_ERRNO)
    program = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in REFUSED_SYSCALLS:
        program.add_rule(refuse, name)
    for cmd in REFUSED_FCNTL.values():
        # fcntl64 exists on 32-bit architectures only; libseccomp drops it where it does not.
        for call in _FCNTL_CALLS:
            program.add_rule(refuse, call, seccomp.Arg(1, seccomp.MASKED_EQ, _CMD_MASK, cmd))
    with tempfile.TemporaryFile() as compiled:
        program.export_bpf(compiled)
        compiled.seek(0)
        return compiled.read()


def container_profile(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (an allow-list profile in the Docker/OCI JSON format) with the refused calls taken
    out of its allow rules and fcntl allowed only for ALLOWED_FCNTL."""
    if base.get("defaultAction") in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        raise ValueError("the container's seccomp profile must refuse by default: it is an allow-list")
    profile = copy.deepcopy(base)
    taken_out = set(REFUSED_SYSCALLS) | set(_FCNTL_CALLS)
    rules = []
    for rule in profile["syscalls"]:
        if rule.get("action") == "SCMP_ACT_ALLOW":
            names = [n for n in rule["names"] if n not in taken_out]
            if not names:
                continue
            rule = {**rule, "names": names}
        rules.append(rule)
    # Stated rather than left to the profile's default answer, which need not be REFUSAL_ERRNO.
    rules.append({"names": list(REFUSED_SYSCALLS), "action": "SCMP_ACT_ERRNO", "errnoRet": REFUSAL_ERRNO})
    for cmds, action in ((ALLOWED_FCNTL, {"action": "SCMP_ACT_ALLOW"}),
                         (REFUSED_FCNTL, {"action": "SCMP_ACT_ERRNO", "errnoRet": REFUSAL_ERRNO})):
        for cmd in cmds.values():
            rules.append({"names": list(_FCNTL_CALLS), **action,
                          "args": [{"index": 1, "value": _CMD_MASK, "valueTwo": cmd, "op": "SCMP_CMP_MASKED_EQ"}]})
    profile["syscalls"] = rules
    return profile
