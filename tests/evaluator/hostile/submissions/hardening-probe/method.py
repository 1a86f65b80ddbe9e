"""Not an attack: looks at its own sandbox from inside and fails listing every hardening it misses
(capabilities, no-new-privileges, user, network interfaces, read-only root, sized in-memory
folders, a process limit, no nested user namespaces)."""
import ctypes
import os
import socket

from hostile import TARGETS, zeros


def _status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


def _size_mb(folder):
    st = os.statvfs(folder)
    return st.f_blocks * st.f_frsize / 2**20


def _writable(path):
    try:
        open(path, "w").close()
    except OSError:
        return False
    os.unlink(path)
    return True


def _userns_allowed():
    libc = ctypes.CDLL(None, use_errno=True)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if libc.unshare(0x10000000) == 0 else 1)
    return os.waitpid(pid, 0)[1] == 0


def run(problem):
    missing = []
    if _status("CapEff") != "0000000000000000":
        missing.append(f"capabilities {_status('CapEff')}")
    if _status("NoNewPrivs") != "1":
        missing.append("no-new-privileges")
    if os.getuid() != 65534 or os.getgid() != 65534:
        missing.append(f"uid {os.getuid()}:{os.getgid()}")
    interfaces = [name for _, name in socket.if_nameindex() if name != "lo"]
    if interfaces:
        missing.append(f"network interfaces {interfaces}")
    for path in ("/evil", "/usr/evil", "/submission/evil"):
        if _writable(path):
            missing.append(f"{path} writable")
    for folder, limit in (("/tmp", TARGETS["tmp_mb"]), ("/dev/shm", TARGETS["shm_mb"])):
        if os.path.isdir(folder) and _size_mb(folder) > limit:
            missing.append(f"{folder} of {_size_mb(folder):.0f} MB")
    if TARGETS.get("check_userns", True) and _userns_allowed():
        missing.append("nested user namespaces")
    if missing:
        raise RuntimeError("missing: " + ", ".join(missing))
    return zeros(problem)
