"""The models of rare-behavior, as flat dicts of named arrays, and their forward passes.

Two architectures, each a pure function of its arrays so that the same dict is the white-box
input, the black-box oracle's model and the truth generator's model:

* ``mlp``: ``w0, b0, ..., wK, bK``; ``h <- relu(w_i h + b_i)`` for i < K, output ``wK h + bK``
  (K = 0 is a linear score). Inputs are real vectors.
* ``transformer``: token and position embeddings, ``n_layers`` blocks of causal multi-head
  attention and a ReLU MLP, both residual, no layer norm, and an unembedding; the output is the
  logits at the last position. Inputs are token sequences.

The reference forward is float64 numpy (the truth's tie-breaker and the oracle's model); the
enumeration uses a float32 torch copy for speed and recomputes near-ties with the reference.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["mlp_layers", "mlp_forward", "transformer_forward", "TorchTransformer", "forward",
           "transformer_arrays", "ARCHITECTURES"]

ARCHITECTURES = ("mlp", "transformer")


def mlp_layers(arrays: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (weight, bias) pairs of an mlp, in order, as float64."""
    n = sum(1 for k in arrays if k.startswith("w") and k[1:].isdigit())
    if n == 0:
        raise KeyError("mlp arrays have no w0")
    return [(np.asarray(arrays[f"w{i}"], dtype=np.float64), np.asarray(arrays[f"b{i}"], dtype=np.float64))
            for i in range(n)]


def mlp_forward(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = np.asarray(x, dtype=np.float64)
    layers = mlp_layers(arrays)
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def _softmax(s: np.ndarray, axis: int = -1) -> np.ndarray:
    s = s - s.max(axis=axis, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=axis, keepdims=True)


def transformer_forward(arrays: dict[str, np.ndarray], tokens: np.ndarray) -> np.ndarray:
    """Float64 logits at the last position, shape (batch, vocab)."""
    a = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    tokens = np.asarray(tokens, dtype=np.int64)
    n_layers, n_heads = int(a["n_layers"].reshape(-1)[0]), int(a["n_heads"].reshape(-1)[0])
    batch, length = tokens.shape
    h = a["embed"][tokens] + a["pos"][None, :length]
    width = h.shape[-1]
    dh = width // n_heads
    mask = np.triu(np.full((length, length), -np.inf), k=1)
    for layer in range(n_layers):
        p = f"l{layer}."
        last = layer == n_layers - 1
        q_in = h[:, -1:] if last else h  # the last block only matters at the last position
        q = (q_in @ a[p + "wq"]).reshape(batch, q_in.shape[1], n_heads, dh).transpose(0, 2, 1, 3)
        k = (h @ a[p + "wk"]).reshape(batch, length, n_heads, dh).transpose(0, 2, 1, 3)
        v = (h @ a[p + "wv"]).reshape(batch, length, n_heads, dh).transpose(0, 2, 1, 3)
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh)
        s = s + (mask[-1:] if last else mask)
        att = (_softmax(s) @ v).transpose(0, 2, 1, 3).reshape(batch, q_in.shape[1], width)
        h = q_in + att @ a[p + "wo"]
        h = h + np.maximum(h @ a[p + "w_in"] + a[p + "b_in"], 0.0) @ a[p + "w_out"] + a[p + "b_out"]
    return h[:, -1] @ a["unembed"]


def forward(architecture: str, arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    if architecture == "mlp":
        return mlp_forward(arrays, x)
    if architecture == "transformer":
        return transformer_forward(arrays, x)
    raise ValueError(f"unknown architecture {architecture!r}; expected one of {ARCHITECTURES}")


def transformer_arrays(rng: np.random.Generator, vocab: int, length: int, width: int, n_layers: int,
                       n_heads: int, mlp_ratio: int = 2) -> dict[str, np.ndarray]:
    """Random weights, stored as float32 (the float64 forward upcasts them exactly)."""
    m = mlp_ratio * width

    def g(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)
    arrays = {"embed": g(vocab, width), "pos": g(length, width, scale=0.5),
              "unembed": g(width, vocab, scale=1.0 / math.sqrt(width)),
              "n_layers": np.array([n_layers], dtype=np.int64), "n_heads": np.array([n_heads], dtype=np.int64)}
    for layer in range(n_layers):
        p = f"l{layer}."
        for name in ("wq", "wk", "wv", "wo"):
            arrays[p + name] = g(width, width, scale=1.0 / math.sqrt(width))
        arrays[p + "w_in"] = g(width, m, scale=1.0 / math.sqrt(width))
        arrays[p + "b_in"] = g(m, scale=0.1)
        arrays[p + "w_out"] = g(m, width, scale=1.0 / math.sqrt(m))
        arrays[p + "b_out"] = g(width, scale=0.1)
    return arrays


class TorchTransformer:
    """The same transformer in torch (float32 by default) for fast batched enumeration."""

    def __init__(self, arrays: dict[str, np.ndarray], device: str = "cpu", dtype=None):
        import torch

        self.torch = torch
        dtype = dtype or torch.float32
        self.n_layers = int(np.asarray(arrays["n_layers"]).reshape(-1)[0])
        self.n_heads = int(np.asarray(arrays["n_heads"]).reshape(-1)[0])
        self.t = {k: torch.as_tensor(np.asarray(v, dtype=np.float32), device=device).to(dtype)
                  for k, v in arrays.items() if k not in ("n_layers", "n_heads")}

    def __call__(self, tokens):
        torch, t = self.torch, self.t
        batch, length = tokens.shape
        h = t["embed"][tokens] + t["pos"][:length]
        width = h.shape[-1]
        dh = width // self.n_heads
        for layer in range(self.n_layers):
            p = f"l{layer}."
            last = layer == self.n_layers - 1
            q_in = h[:, -1:] if last else h
            q = (q_in @ t[p + "wq"]).view(batch, q_in.shape[1], self.n_heads, dh).transpose(1, 2)
            k = (h @ t[p + "wk"]).view(batch, length, self.n_heads, dh).transpose(1, 2)
            v = (h @ t[p + "wv"]).view(batch, length, self.n_heads, dh).transpose(1, 2)
            att = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=not last)
            h = q_in + att.transpose(1, 2).reshape(batch, q_in.shape[1], width) @ t[p + "wo"]
            h = h + torch.relu(h @ t[p + "w_in"] + t[p + "b_in"]) @ t[p + "w_out"] + t[p + "b_out"]
        return h[:, -1] @ t["unembed"]
