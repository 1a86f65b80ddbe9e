"""Black-box access to a model: the parent runs it, the method only sends inputs and counts.

A task whose method may query a model but must not see it (rare-behavior's black-box track)
returns an ``Oracle`` from ``Task.oracle``. The evaluator builds it in the parent process from the
instance's answers, serves it to the sandboxed worker over a socket, and enforces the budget there:
the worker cannot reach the weights, and cannot count for itself.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["Oracle", "MAX_ROWS_PER_CALL"]

#: One call's batch is capped so that a method cannot make the parent allocate without bound.
MAX_ROWS_PER_CALL = 65536


class Oracle(ABC):
    """A model behind the black-box channel.

    ``budget`` is the number of forward passes (input rows, summed over calls) the method may make;
    ``input_shape`` is one input's shape without the batch dimension, ``input_dtype`` a numpy dtype
    name; ``forward`` maps a batch ``(rows, *input_shape)`` to outputs ``(rows, ...)``.
    """

    budget: int
    input_shape: tuple[int, ...]
    input_dtype: str

    @abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray: ...

    def describe(self) -> dict:
        """What the worker is told about the oracle (no weights, by construction)."""
        return {"budget": int(self.budget), "input_shape": [int(s) for s in self.input_shape],
                "input_dtype": str(np.dtype(self.input_dtype))}
