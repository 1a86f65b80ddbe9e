"""Returns answers built to misbehave when the evaluator validates or scores them; the variant
comes from targets.json. Some forge the answer file itself and exit before the worker writes it."""
import json
import os
import pickle
import struct
import sys

import numpy as np

from hostile import TARGETS


class Flattering(np.ndarray):
    """Claims to equal anything, to be finite, and to be whatever shape it is asked about."""

    def __eq__(self, other):
        return True

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("the evaluator called __array__ on the method's object")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return np.ones(1)

    def astype(self, *args, **kwargs):
        return self

    def tolist(self):
        return [[1.0]]


class Shifty(dict):
    """Shows one key to iteration and another to item access."""

    def __iter__(self):
        return iter(["atoms"])

    def items(self):
        return [("atoms", np.full((2, 2), np.inf)), ("extra", np.zeros(1))]

    def keys(self):
        return ["atoms"]


def _forge(payload):
    job = json.load(open(sys.argv[1]))
    # Wherever the evaluator reads the answer from: the file the job names (the scratch folder before).
    with open(job.get("answer") or os.path.join(job["scratch"], "answer.safetensors"), "wb") as f:
        f.write(payload)
    sys.stdout.flush()
    os._exit(0)


def run(problem):
    n, d = problem["n_features"], problem["dim"]
    variant = TARGETS["variant"]
    if variant == "numpy-subclass":
        return {"atoms": np.zeros((n, d)).view(Flattering)}
    if variant == "huge-array":
        return {"atoms": np.zeros((3_000_000, d))}
    if variant == "huge-shape":
        return {"atoms": np.zeros((1, 4_000_000), dtype=np.int8)}  # 4 MB: under the output limit
    if variant == "object-dtype":
        return {"atoms": np.array([object(), {"atoms": 1}], dtype=object)}
    if variant == "nan":
        return {"atoms": np.full((n, d), np.nan)}
    if variant == "dict-subclass":
        return Shifty()
    if variant == "many-fields":
        return {f"f{i}": np.zeros(1) for i in range(10_000)}
    if variant == "pickled-payload":
        _forge(pickle.dumps({"atoms": np.zeros((n, d))}) + b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.")
    if variant == "header-bomb":
        header = json.dumps({"atoms": {"dtype": "F64", "shape": [2**40, 2**20], "data_offsets": [0, 2**63]}})
        _forge(struct.pack("<Q", len(header)) + header.encode())
    raise ValueError(f"unknown variant {variant}")
