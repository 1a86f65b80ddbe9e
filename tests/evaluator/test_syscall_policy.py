"""The syscall policy both isolated backends enforce (evaluator/sandbox/syscall_policy.py). That
it holds inside real workers is tests/evaluator/hostile's shared-locks attack; here, the one list
and what each backend is given from it."""
import json
import os
import subprocess
import sys

import pytest

from evaluator.sandbox import syscall_policy
from evaluator.sandbox.docker import SECCOMP_PROFILE
from evaluator.sandbox.syscall_policy import (ALLOWED_FCNTL, REFUSED_FCNTL, REFUSED_SYSCALLS, bwrap_filter,
                                              container_profile)
from tests.builders import requires_bwrap


def test_no_fcntl_command_is_both_allowed_and_refused():
    assert not set(ALLOWED_FCNTL.values()) & set(REFUSED_FCNTL.values())
    assert not set(ALLOWED_FCNTL) & set(REFUSED_FCNTL)


def test_the_container_profile_allows_no_refused_call():
    base = json.loads(SECCOMP_PROFILE.read_text())
    assert any(set(REFUSED_SYSCALLS) & set(r["names"]) for r in base["syscalls"] if r["action"] == "SCMP_ACT_ALLOW"), \
        "the base profile allows the refused calls: the policy is what takes them out"
    profile = container_profile(base)
    for rule in profile["syscalls"]:
        if rule["action"] != "SCMP_ACT_ALLOW":
            continue
        assert not set(REFUSED_SYSCALLS) & set(rule["names"]), rule
        if {"fcntl", "fcntl64"} & set(rule["names"]):
            # fcntl is allowed command by command, comparing the low 32 bits the kernel reads.
            (arg,) = rule["args"]
            assert arg["index"] == 1 and arg["op"] == "SCMP_CMP_MASKED_EQ" and arg["value"] == 0xFFFF_FFFF
            assert arg["valueTwo"] in ALLOWED_FCNTL.values()
    refused = [r for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ERRNO" and "fcntl" in r["names"]]
    assert sorted(r["args"][0]["valueTwo"] for r in refused) == sorted(REFUSED_FCNTL.values())
    assert base == json.loads(SECCOMP_PROFILE.read_text()), "the base profile was changed in place"


def test_an_allow_by_default_profile_is_refused():
    with pytest.raises(ValueError, match="allow-list"):
        container_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []})


def test_a_host_without_libseccomp_gets_no_bwrap_sandbox(monkeypatch):
    from evaluator.sandbox.bwrap import BubblewrapSandbox

    def missing():
        raise OSError("libseccomp is not installed (Unable to find libseccomp): bwrap cannot apply the syscall policy")

    monkeypatch.setattr("evaluator.sandbox.bwrap.bwrap_filter", missing)
    ok, why = BubblewrapSandbox().available()
    assert not ok and "libseccomp" in why


@requires_bwrap
def test_the_bwrap_filter_refuses_locks_and_keeps_ordinary_fcntl(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import fcntl, os\n"
        "fd = os.open(__file__, os.O_RDONLY)\n"
        "fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)\n"           # allowed: descriptor flags
        "assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC\n"
        "for take in (lambda: fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB),\n"
        "             lambda: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)):\n"
        "    try:\n"
        "        take()\n"
        "    except OSError as exc:\n"
        "        print(exc.errno)\n")
    read, write = os.pipe()
    os.write(write, bwrap_filter())
    os.close(write)
    done = subprocess.run(["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--seccomp", str(read), sys.executable,
                           str(probe)], pass_fds=(read,), capture_output=True, text=True)
    os.close(read)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(syscall_policy.REFUSAL_ERRNO)] * 2
