"""The secret a split is drawn from, and every random stream derived from it.

A split's configurations, instance ids, order and seeds all come from one key through HMAC-SHA256
over a labelled tuple (task, split, purpose, index...). Two consequences the leak probes test:

* nothing public narrows the key: guessing it means guessing 128+ random bits (the test split's
  key is the operator's secret, made by ``phasebench data secret new``);
* streams never collide: the task name is in every label, so two tasks (or two tracks, which are
  tasks of their own) built from the same secret share no draw, and no seed is cut to 32 bits
  (a derived seed is the whole 256-bit digest).

The dev split uses the same derivation from a key that is public by design (its answers are public).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .settings import RETIRED, Settings, env_name, get_settings, retired_in_environment

__all__ = [
    "MIN_SECRET_BYTES",
    "SECRET_ENV",
    "SECRET_FILE_ENV",
    "SecretError",
    "SplitSecret",
    "default_secret_file",
    "load_test_secret",
    "new_secret_text",
    "write_secret_file",
]

MIN_SECRET_BYTES = 16  # 128 bits
SECRET_ENV = env_name("test_secret")
SECRET_FILE_ENV = env_name("test_secret_file")
_RETIRED_SEED = "PHASEBENCH_TEST_SEED"
_ID_HEX = 16  # 64 bits: collisions within a split are astronomically unlikely, and are checked anyway


class SecretError(ValueError):
    """A secret is missing, malformed or too weak; the message says which and where it came from."""


@dataclass(frozen=True)
class SplitSecret:
    """A key and the streams derived from it. ``repr`` never shows the key."""
    key: bytes = field(repr=False)
    public: bool = False

    @classmethod
    def public_label(cls, label: str) -> SplitSecret:
        """The public key of a dev split: the label is in the code, and so is everything it draws."""
        return cls(hashlib.sha256(b"phasebench public split key\0" + label.encode()).digest(), public=True)

    @classmethod
    def parse(cls, text: str, source: str) -> SplitSecret:
        """A test-split key from its hex text; SecretError naming ``source`` if it is short or weak."""
        text = text.strip().lower()
        if not text:
            raise SecretError(f"{source}: the secret is empty")
        if not re.fullmatch(r"[0-9a-f]+", text):
            raise SecretError(f"{source}: the secret must be hexadecimal (make one with `phasebench data secret new`)")
        if len(text) < 2 * MIN_SECRET_BYTES:
            raise SecretError(f"{source}: the secret has {len(text) * 4} bits; at least {MIN_SECRET_BYTES * 8} are"
                              " needed (make one with `phasebench data secret new`)")
        if weakness := _low_entropy(text):
            raise SecretError(f"{source}: the secret looks chosen, not random ({weakness}); make one with "
                              "`phasebench data secret new`")
        return cls(bytes.fromhex(text if len(text) % 2 == 0 else "0" + text))

    # --- derivation -------------------------------------------------------------------------
    def digest(self, *label: str | int) -> bytes:
        """HMAC-SHA256 of the label; the label is JSON so that ("a", "b-c") and ("a-b", "c") differ."""
        if not label:
            raise ValueError("a derivation needs a label (task, split, purpose, ...)")
        message = json.dumps(list(label), separators=(",", ":")).encode()
        return hmac.new(self.key, message, hashlib.sha256).digest()

    def seed(self, *label: str | int) -> int:
        """A 256-bit seed: ``numpy.random.default_rng`` takes it whole."""
        return int.from_bytes(self.digest(*label), "big")

    def rng(self, *label: str | int) -> np.random.Generator:
        return np.random.default_rng(self.seed(*label))

    def token(self, *label: str | int) -> str:
        """An opaque identifier: hex of the digest, so nothing about the label can be read from it."""
        return self.digest(*label).hex()[:_ID_HEX]


def _low_entropy(text: str) -> str | None:
    """Why a hex string cannot be a random key, or None. A decimal-only string (an integer, a date)
    has probability (10/16)^32 < 1e-6 for a random 128-bit key, so refusing it costs nothing."""
    if text.isdigit():
        return "only decimal digits, like an integer or a date"
    if len(set(text)) < 8:
        return f"only {len(set(text))} distinct hex digits"
    if re.search(r"(.)\1{7,}", text):
        return "a digit repeated 8 times or more"
    halves = len(text) // 2
    if text[:halves] == text[halves:2 * halves]:
        return "the same half twice"
    return None


def new_secret_text() -> str:
    """A fresh 256-bit key as hex, from the operating system's CSPRNG."""
    while True:
        text = secrets.token_hex(32)
        if _low_entropy(text) is None:  # the refusal rules above, which a random key passes almost always
            return text


def default_secret_file(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).test_secret_file


def write_secret_file(path: Path, text: str, force: bool = False) -> None:
    """Write the key with mode 0600 from the start (never readable by others, even briefly)."""
    if path.exists() and not force:
        raise SecretError(f"{path}: a secret is already there; it built the published test split, so replacing it "
                          "is refused without --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def load_test_secret(settings: Settings | None = None) -> SplitSecret:
    """The operator's test-split key: ``$PHASEBENCH_TEST_SECRET`` (hex; for CI secrets), else the file
    ``$PHASEBENCH_TEST_SECRET_FILE`` (default ``var/test-secret``). SecretError says what to do."""
    settings = settings or get_settings()
    if settings.test_secret is not None:
        return SplitSecret.parse(settings.test_secret.get_secret_value(), f"${SECRET_ENV}")
    if _RETIRED_SEED in retired_in_environment():
        raise SecretError(f"{_RETIRED_SEED} is no longer read: {RETIRED[_RETIRED_SEED]}")
    path = default_secret_file(settings)
    if not path.exists():
        raise SecretError(f"{path}: no test-split secret (make one with `phasebench data secret new`, or set "
                          f"{SECRET_ENV})")
    mode = path.stat().st_mode & 0o077
    if mode:
        raise SecretError(f"{path}: readable by other users (mode {oct(path.stat().st_mode & 0o777)}); "
                          f"`chmod 600 {path}`")
    return SplitSecret.parse(path.read_text(), str(path))
