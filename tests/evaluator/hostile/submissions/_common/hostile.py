"""Copied into every hostile submission: where to aim, and what a successful attack does.

Each attack tries its steps with ``attempt``. A step that finds something hands it to ``use``,
which does what a real cheater would do: return the true answer (the score would be perfect) or
publish the secret (in the error message, which the evaluator stores and the leaderboard shows).
A step that is blocked is noted; when every step was blocked the method raises ``Contained``
listing them, so the stored error proves the attack ran and how each step failed.
"""
import json
import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TARGETS = json.loads((HERE / "targets.json").read_text())
_tried = []


class Contained(Exception):
    pass


def attempt(label, step):
    """Run one step; its loot (truthy) or None when it found nothing or failed."""
    try:
        loot = step()
    except Exception as exc:  # the sandbox blocking us is the expected outcome
        _tried.append(f"{label}: {type(exc).__name__}{' ' + str(exc.errno) if isinstance(exc, OSError) and exc.errno else ''}")
        return None
    if not loot:
        _tried.append(f"{label}: nothing")
        return None
    return loot


def use(loot, problem):
    """What a cheater does with a find: the true answer is returned, any other secret published."""
    if isinstance(loot, bytes):
        try:
            from safetensors.numpy import load

            truth = load(loot)
            if "features" in truth:
                return {"atoms": truth["features"]}
        except Exception:
            pass
        loot = loot.hex()
    raise RuntimeError(f"LEAKED {str(loot)[:300]}")


def contained():
    raise Contained("; ".join(_tried))


def zeros(problem):
    return {"atoms": np.zeros((1, problem["dim"]))}
