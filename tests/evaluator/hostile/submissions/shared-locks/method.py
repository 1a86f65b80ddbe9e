"""Looks for a channel to other workers through the files every worker shares (the submission, the
Python installation): a lock on one of them, or a watch on its accesses, is kernel state that every
process on the host reads. The test holds locks on this submission's method.py from outside the
sandbox; a step that sees them, or takes a lock of its own, has found the channel."""
import ctypes
import errno
import fcntl
import os
import struct

from hostile import attempt, contained, use

SHARED = "/submission/method.py"
F_OFD_GETLK, F_OFD_SETLK, F_NOTIFY = 36, 37, 1026
SYS_FCNTL = {"x86_64": 72, "aarch64": 25}[os.uname().machine]
DN_ACCESS = 0x1
libc = ctypes.CDLL(None, use_errno=True)


def _lock_seen(take):
    fd = os.open(SHARED, os.O_RDONLY)
    try:
        take(fd)
        return "took a lock that every worker sees"
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):  # a lock held elsewhere answers this way
            return f"saw a lock held outside the sandbox ({errno.errorcode[exc.errno]})"
        raise
    finally:
        os.close(fd)


def _flock(fd):
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)


def _posix_lock(fd):
    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)


def _ofd_lock(fd):
    # struct flock: l_type, l_whence (short), l_start, l_len (off_t), l_pid (int)
    fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_RDLCK, 0, 0, 0, 0))


def _lock_query():
    fd = os.open(SHARED, os.O_RDONLY)
    try:
        got = fcntl.fcntl(fd, F_OFD_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
        kind = struct.unpack("hhqqi", got)[0]
        return f"read the lock table (type {kind})"
    finally:
        os.close(fd)


def _high_bits():
    # The kernel reads fcntl's command as 32 bits; a filter comparing all 64 would let this through.
    fd = os.open(SHARED, os.O_RDONLY)
    try:
        lock = ctypes.create_string_buffer(struct.pack("hhqqi", fcntl.F_RDLCK, 0, 0, 0, 0))
        if libc.syscall(ctypes.c_long(SYS_FCNTL), ctypes.c_long(fd), ctypes.c_long((1 << 32) | F_OFD_SETLK),
                        lock) == 0:
            return "took a lock with a 64-bit command"
        err = ctypes.get_errno()
        if err in (errno.EAGAIN, errno.EACCES):
            return "saw a lock held outside the sandbox (64-bit command)"
        raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def _inotify():
    fd = libc.inotify_init1(0)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    os.close(fd)
    return "can watch accesses to shared files (inotify)"


def _dnotify():
    fd = os.open("/submission", os.O_RDONLY)
    try:
        fcntl.fcntl(fd, F_NOTIFY, DN_ACCESS)
        return "can watch accesses to a shared folder (dnotify)"
    finally:
        os.close(fd)


def run(problem):
    steps = [("flock", lambda: _lock_seen(_flock)), ("posix lock", lambda: _lock_seen(_posix_lock)),
             ("ofd lock", lambda: _lock_seen(_ofd_lock)), ("lock query", _lock_query), ("high bits", _high_bits),
             ("inotify", _inotify), ("dnotify", _dnotify)]
    for label, step in steps:
        loot = attempt(label, step)
        if loot:
            return use(loot, problem)
    attempt("filelock on scratch", _filelock_on_scratch)
    contained()


def _filelock_on_scratch():
    """What torch.compile's caches and huggingface_hub do; it must still work (through lock files),
    so this step ends as "nothing" and any failure shows as its exception."""
    import filelock

    with filelock.FileLock(os.path.join(os.getcwd(), "cache.lock"), timeout=5):
        pass
