"""One-layer transformers in the configuration of Nanda et al. 2023, many trained at once as one batched model.

The input is the three tokens ``a b =`` (vocabulary 0..p-1 and '=' = p), with learned token and
positional embeddings; one attention layer (``n_heads`` heads of ``d_model / n_heads``, causal, no
biases), one ReLU MLP (``d_mlp``, with biases), no LayerNorm, and the unembedding read at the last
position (p output classes). Nanda et al. use d_model 128, 4 heads, d_mlp 512: the defaults here;
tests use tiny widths. Initialisation follows their code — every weight N(0, 1/d_model) but the
unembedding N(0, 1/p), biases 0 — times the run's ``init_scale``.

Every parameter carries a leading run dimension and the forward pass is batched matrix products,
so runs with their own labels, train/test masks, learning rate, weight decay and initialisation
train together with the AdamW loop, logging and checkpoints of the MLP runs
(:func:`~.trainer.train_batched_runs`), on CPU or CUDA with the same code.

Only the last position's output is read, and in one layer nothing flows from the MLP or the
attention output of positions 0 and 1 into it: the batched forward computes the query, the
attention and the MLP at the last position only (the keys and values at every position). The
loss and its gradients are those of the full model; :func:`train_reference`, which runs the full
three-position model alone with ``torch.optim.AdamW``, checks that.

``compile=True`` trains with the compiled step of :mod:`.trainer` (curves equal to float tolerance).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from .trainer import (BETAS, EPS, WARMUP_STEPS, Curves, batch_shape, labels_for, log_grid, tensor_sum, torch_seed,
                      train_batched_runs, train_mask_for)

__all__ = ["TransformerConfig", "TRANSFORMER_CURVE_KEYS", "PARAM_NAMES", "init_transformer_params",
           "train_transformer_batch", "train_transformer_reference"]

#: parameter names, in the order of the batched tensors
PARAM_NAMES = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")
#: per-layer weight norms logged (name -> parameters), besides the losses, accuracies and gradient norm
NORM_GROUPS = {"norm_embed": ("W_E",), "norm_pos": ("W_pos",), "norm_attn": ("W_Q", "W_K", "W_V", "W_O"),
               "norm_mlp": ("W_in", "b_in", "W_out", "b_out"), "norm_unembed": ("W_U",)}
TRANSFORMER_CURVE_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", *NORM_GROUPS, "grad_norm")


@dataclass(frozen=True)
class TransformerConfig:
    op: str
    p: int
    lr: float
    wd: float
    train_frac: float
    init_scale: float
    dtype: str          # "float32" or "float64"
    seed: int
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"TransformerConfig: d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def shape_key(self) -> tuple[str, int, int, int, int, str]:
        """Runs with equal keys train in one batch."""
        return ("transformer", self.p, self.d_model, self.n_heads, self.d_mlp, self.dtype)


def init_transformer_params(cfg: TransformerConfig) -> dict[str, torch.Tensor]:
    """The run's initial parameters (float64, CPU), drawn from its own seed, in ``PARAM_NAMES`` order."""
    gen = torch.Generator().manual_seed(torch_seed(cfg.seed, 3))
    d, h, dh, m, p = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.p
    shapes = {"W_E": (p + 1, d), "W_pos": (3, d), "W_Q": (h, d, dh), "W_K": (h, d, dh), "W_V": (h, d, dh),
              "W_O": (h, dh, d), "W_in": (d, m), "b_in": (m,), "W_out": (m, d), "b_out": (d,), "W_U": (d, p)}
    out = {}
    for name in PARAM_NAMES:
        if name.startswith("b_"):
            out[name] = torch.zeros(shapes[name], dtype=torch.float64)
        else:
            std = 1 / math.sqrt(p if name == "W_U" else d)
            out[name] = torch.randn(shapes[name], generator=gen, dtype=torch.float64) * (cfg.init_scale * std)
    return out


def _forward(params: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor, d_head: int) -> torch.Tensor:
    """(R, p^2, p) logits at the last position for every pair (a, b) and every run."""
    W_E, W_pos = params["W_E"], params["W_pos"]
    R, H, d, _ = params["W_Q"].shape
    eq = W_E.shape[1] - 1                                              # the token '='
    x_a = W_E[:, a] + W_pos[:, 0:1]                                     # (R, N, d) residual at position 0
    x_b = W_E[:, b] + W_pos[:, 1:2]                                     # (R, N, d)
    x_eq = W_E[:, eq] + W_pos[:, 2]                                     # (R, d): the same for every pair
    w_k = params["W_K"].permute(0, 2, 1, 3).reshape(R, d, H * d_head)  # heads side by side
    w_v = params["W_V"].permute(0, 2, 1, 3).reshape(R, d, H * d_head)
    q = torch.einsum("rd,rhde->rhe", x_eq, params["W_Q"])               # (R, H, dh)
    keys = [torch.bmm(x, w_k).view(R, -1, H, d_head) for x in (x_a, x_b)]
    vals = [torch.bmm(x, w_v).view(R, -1, H, d_head) for x in (x_a, x_b)]
    k_eq = torch.einsum("rd,rhde->rhe", x_eq, params["W_K"])
    v_eq = torch.einsum("rd,rhde->rhe", x_eq, params["W_V"])
    n = x_a.shape[1]
    keys.append(k_eq.unsqueeze(1).expand(R, n, H, d_head))
    vals.append(v_eq.unsqueeze(1).expand(R, n, H, d_head))
    scores = torch.stack([(k * q.unsqueeze(1)).sum(-1) for k in keys], dim=-1) / math.sqrt(d_head)  # (R, N, H, 3)
    pattern = torch.softmax(scores, dim=-1)
    z = tensor_sum(pattern[..., j:j + 1] * vals[j] for j in range(3))          # (R, N, H, dh)
    attn_out = torch.bmm(z.reshape(R, n, H * d_head), params["W_O"].reshape(R, H * d_head, d))
    resid = x_eq.unsqueeze(1) + attn_out
    hidden = torch.relu(torch.baddbmm(params["b_in"].unsqueeze(1), resid, params["W_in"]))
    resid = resid + torch.baddbmm(params["b_out"].unsqueeze(1), hidden, params["W_out"])
    return torch.bmm(resid, params["W_U"])


def _table_forward(tensors: Sequence[torch.Tensor], d_head: int) -> torch.Tensor:
    """:func:`_forward` over the whole table (pair index a * p + b), parameters in ``PARAM_NAMES``
    order: the compiled step's model. What depends on a alone or on b alone (the inputs, keys, values
    and attention scores of positions 0 and 1) is computed once per token and broadcast over the
    pairs, which saves 4 d_model^2 of the 5 d_model^2 + 2 d_model d_mlp + d_model p multiply-adds per
    pair, and makes their gradients sums over the table rather than scatter-adds."""
    P = dict(zip(PARAM_NAMES, tensors))
    W_E, W_pos, W_Q, W_K, W_V = P["W_E"], P["W_pos"], P["W_Q"], P["W_K"], P["W_V"]
    R, H, d, _ = W_Q.shape
    p = W_E.shape[1] - 1                                                # the token '=' is p
    x_eq = W_E[:, p] + W_pos[:, 2]                                      # (R, d)
    q = torch.einsum("rd,rhde->rhe", x_eq, W_Q)                         # (R, H, dh)
    scores, vals = [], []
    for x in (W_E[:, :p] + W_pos[:, 0:1], W_E[:, :p] + W_pos[:, 1:2], x_eq.unsqueeze(1)):   # a, b, '='
        scores.append((torch.einsum("rtd,rhde->rthe", x, W_K) * q.unsqueeze(1)).sum(-1) / math.sqrt(d_head))
        vals.append(torch.einsum("rtd,rhde->rthe", x, W_V))             # (R, tokens, H, dh)
    # over the table (R, a, b, ...): a's along dim 1, b's along dim 2, '=' the same for every pair
    (s_a, s_b, s_eq), (v_a, v_b, v_eq) = scores, vals
    s_ab = torch.broadcast_tensors(s_a.unsqueeze(2), s_b.unsqueeze(1), s_eq.unsqueeze(1))
    pattern = torch.softmax(torch.stack(s_ab, dim=-1), dim=-1)          # (R, p, p, H, 3)
    z = (pattern[..., 0:1] * v_a.unsqueeze(2) + pattern[..., 1:2] * v_b.unsqueeze(1)
         + pattern[..., 2:3] * v_eq.unsqueeze(1))                       # (R, p, p, H, dh)
    n = p * p
    attn_out = torch.bmm(z.reshape(R, n, H * d_head), P["W_O"].reshape(R, H * d_head, d))
    resid = x_eq.unsqueeze(1) + attn_out
    hidden = torch.relu(torch.baddbmm(P["b_in"].unsqueeze(1), resid, P["W_in"]))
    resid = resid + torch.baddbmm(P["b_out"].unsqueeze(1), hidden, P["W_out"])
    return torch.bmm(resid, P["W_U"])


def train_transformer_batch(configs: Sequence[TransformerConfig], budget: int, n_log: int, ckpt_steps: Iterable[int],
                            device: str = "cpu",
                            progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
                            compile: bool = False, compile_mode: str | None = None) -> list[Curves]:
    """Train transformer runs of one shape together, as :func:`~.trainer.train_batch` trains MLP runs.

    The metrics are ``TRANSFORMER_CURVE_KEYS`` (train/test loss and accuracy, per-layer weight norms,
    gradient norm). The checkpoints ``ckpt_U`` and ``ckpt_V`` (k, p, d_model) are the residual-stream
    inputs of a (W_E[a] + W_pos[0]) and of b (W_E[b] + W_pos[1]): the counterparts of the MLP's U[a], V[b].
    ``compile`` and ``compile_mode``: as for :func:`~.trainer.train_batch`.
    """
    if not configs:
        return []
    p, dtype, dev = batch_shape(configs, device, "train_transformer_batch needs runs of one shape")
    inits = [init_transformer_params(c) for c in configs]
    params = {k: torch.stack([q[k] for q in inits]).to(dev, dtype).requires_grad_(True) for k in PARAM_NAMES}
    tensors = [params[k] for k in PARAM_NAMES]
    idx = torch.arange(p * p, device=dev)
    a, b = idx // p, idx % p
    d_head = configs[0].d_head
    groups = {name: [PARAM_NAMES.index(k) for k in members] for name, members in NORM_GROUPS.items()}

    def inputs_of_a_and_b() -> tuple[torch.Tensor, torch.Tensor]:
        tokens = params["W_E"][:, :p]
        return tokens + params["W_pos"][:, 0:1], tokens + params["W_pos"][:, 1:2]

    return train_batched_runs(configs, tensors, lambda: _forward(params, a, b, d_head), budget, n_log, ckpt_steps,
                              norm_groups=groups, ckpt_fn=inputs_of_a_and_b, device=dev, dtype=dtype,
                              progress=progress, compiled=(_table_forward, (d_head,)) if compile else None,
                              compile_mode=compile_mode)


def train_transformer_reference(cfg: TransformerConfig, budget: int, n_log: int) -> dict[str, np.ndarray]:
    """One run, unbatched and written plainly: the full three-position model with a causal mask
    (every position's attention and MLP computed, the last position read), ``torch.optim.AdamW`` and
    the warmup schedule. The reference the batched trainer is tested against."""
    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg.dtype]
    P = {k: v.to(dtype).requires_grad_(True) for k, v in init_transformer_params(cfg).items()}
    p = cfg.p
    labels = torch.from_numpy(labels_for(cfg.op, p))
    train = torch.from_numpy(train_mask_for(cfg))
    idx = torch.arange(p * p)
    tokens = torch.stack([idx // p, idx % p, torch.full_like(idx, p)], dim=1)      # (N, 3): a, b, '='
    causal = torch.tril(torch.ones(3, 3, dtype=torch.bool))
    opt = torch.optim.AdamW(list(P.values()), lr=cfg.lr, betas=BETAS, eps=EPS, weight_decay=cfg.wd)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / WARMUP_STEPS))
    logged = set(log_grid(budget, n_log).tolist())
    out: dict[str, Any] = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc", "norm_embed",
                                           "norm_attn")}
    for t in range(budget + 1):
        x = P["W_E"][tokens] + P["W_pos"]                                           # (N, 3, d)
        q = torch.einsum("npd,hde->nhpe", x, P["W_Q"])
        k = torch.einsum("npd,hde->nhpe", x, P["W_K"])
        v = torch.einsum("npd,hde->nhpe", x, P["W_V"])
        scores = (q @ k.transpose(-1, -2) / math.sqrt(cfg.d_head)).masked_fill(~causal, float("-inf"))
        z = torch.softmax(scores, dim=-1) @ v                                       # (N, H, 3, dh)
        x = x + torch.einsum("nhpe,hed->npd", z, P["W_O"])
        x = x + torch.relu(x @ P["W_in"] + P["b_in"]) @ P["W_out"] + P["b_out"]
        logits = (x @ P["W_U"])[:, -1]
        nll = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        correct = (logits.argmax(-1) == labels).to(dtype)
        loss = nll[train].mean()
        if t in logged:
            with torch.no_grad():
                out["train_loss"].append(float(loss))
                out["train_acc"].append(float(correct[train].mean()))
                out["test_loss"].append(float(nll[~train].mean()))
                out["test_acc"].append(float(correct[~train].mean()))
                out["norm_embed"].append(float(P["W_E"].norm()))
                attn = tensor_sum(P[n].square().sum() for n in ("W_Q", "W_K", "W_V", "W_O"))
                out["norm_attn"].append(float(torch.sqrt(attn)))
        if t == budget:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return {k: np.asarray(v) for k, v in out.items()}
