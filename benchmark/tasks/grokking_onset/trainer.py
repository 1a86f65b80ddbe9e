"""Many small modular-arithmetic networks trained at once, as one batched model.

Each run r is a two-layer MLP on learned embeddings: ``logits = act(U_r[a] + V_r[b]) @ W_r`` for the
pair (a, b) of the full p x p table, with its own labels (operation), train/test split, activation,
initialisation, learning rate and weight decay. Runs share only the shapes (p, width, dtype), so the
whole batch is a few batched matrix products per step; gradients of the summed per-run losses are
per-run gradients, and the optimiser is AdamW written out with per-run hyperparameters (the same
update as ``torch.optim.AdamW``, which the unbatched reference :func:`train_reference` uses).
The loop itself (:func:`train_batched_runs`: AdamW, logging, checkpoints) is shared with the
one-layer transformer runs of :mod:`.transformer`.

The same code runs on CPU and CUDA (``device``); every random draw is made on the CPU from the
run's own seed, so a run's initialisation and split do not depend on the device or on its batch.

``compile=True`` trains with one ``torch.compile``d step instead (:func:`_train_step`: forward,
gradients by ``torch.func.grad``, the logged metrics and the AdamW update in one graph, CUDA graphs
on a GPU). Its curves equal the eager ones to float tolerance, not bit for bit (the kernels sum in
another order), so the data builds, whose bytes are pinned, train eager.
"""
from __future__ import annotations

import functools
import math
import operator
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np
import torch

from .design import OPERATIONS

__all__ = ["RunConfig", "Curves", "CURVE_KEYS", "log_grid", "labels_for",
           "train_mask_for", "init_params", "train_batch", "train_reference", "BETAS", "EPS", "WARMUP_STEPS",
           "batch_shape", "train_batched_runs"]

BETAS = (0.9, 0.98)
EPS = 1e-8
WARMUP_STEPS = 10
#: the metrics logged at every step of the grid, one (n_log,) curve per run each
CURVE_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "norm_U", "norm_V", "norm_W", "grad_norm")


@dataclass(frozen=True)
class RunConfig:
    op: str
    p: int
    width: int
    act: str
    lr: float
    wd: float
    train_frac: float
    init_scale: float
    dtype: str          # "float32" or "float64"
    seed: int

    @property
    def shape_key(self) -> tuple[int, int, str]:
        """Runs with equal keys train in one batch."""
        return (self.p, self.width, self.dtype)


@dataclass
class Curves:
    steps: np.ndarray                 # (n_log,) int64, the logged steps
    metrics: dict[str, np.ndarray]    # CURVE_KEYS -> (n_log,)
    ckpt_steps: np.ndarray            # (k,) int64
    ckpt_U: np.ndarray                # (k, p, width) embeddings of a at the checkpoint steps
    ckpt_V: np.ndarray                # (k, p, width)


def log_grid(budget: int, n_points: int) -> np.ndarray:
    """0 and about ``n_points`` log-spaced steps from 1 to ``budget`` (integers, unique, sorted)."""
    grid = np.unique(np.round(np.logspace(0, math.log10(budget), n_points)).astype(np.int64))
    return np.concatenate([[0], grid])


def labels_for(op: str, p: int) -> np.ndarray:
    a, b = np.divmod(np.arange(p * p), p)
    if op == "add":
        y = a + b
    elif op == "sub":
        y = a - b
    elif op == "mul":
        y = a * b
    elif op == "sq":
        y = a * a + b * b
    else:
        raise ValueError(f"unknown operation {op!r}; expected one of {OPERATIONS}")
    return np.mod(y, p).astype(np.int64)


class PairsDraw(Protocol):
    """What draws a run's training pairs: an MLP's or a transformer's (frozen) configuration."""
    @property
    def p(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def train_frac(self) -> float: ...


def tensor_sum(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """The sum of tensors, added left to right as built-in ``sum`` does (without its leading 0)."""
    return functools.reduce(operator.add, terms)


def train_mask_for(cfg: PairsDraw) -> np.ndarray:
    """The run's training pairs: round(train_frac * p^2) of the table, drawn from its seed."""
    rng = np.random.default_rng([cfg.seed, 1])
    n = cfg.p * cfg.p
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: int(round(cfg.train_frac * n))]] = True
    return mask


def torch_seed(seed: int, stream: int) -> int:
    """A torch generator's seed for one stream of a run. torch takes 64 bits; the runs of the committed
    version-2 dev split have 32-bit seeds and keep the 32-bit derivation they were trained with (their
    bytes are pinned), every other run's seed is 256-bit and gets 64."""
    state = np.random.SeedSequence([seed, stream])
    return int(state.generate_state(1)[0]) if seed < 2 ** 32 else int(state.generate_state(1, np.uint64)[0])


def init_params(cfg: RunConfig) -> dict[str, torch.Tensor]:
    """U, V ~ N(0, 1/2) and W ~ N(0, 1/width), all times the run's init scale (float64, CPU)."""
    gen = torch.Generator().manual_seed(torch_seed(cfg.seed, 2))
    shape = (cfg.p, cfg.width)
    u = torch.randn(shape, generator=gen, dtype=torch.float64) * (cfg.init_scale / math.sqrt(2))
    v = torch.randn(shape, generator=gen, dtype=torch.float64) * (cfg.init_scale / math.sqrt(2))
    w = torch.randn((cfg.width, cfg.p), generator=gen, dtype=torch.float64) * (cfg.init_scale / math.sqrt(cfg.width))
    return {"U": u, "V": v, "W": w}


def _forward(U: torch.Tensor, V: torch.Tensor, W: torch.Tensor, quad: torch.Tensor, a: torch.Tensor,
             b: torch.Tensor) -> torch.Tensor:
    """(R, p^2, p) logits of every pair for every run; ``quad`` (R, 1, 1) selects x^2 over ReLU."""
    h = U[:, a] + V[:, b]
    act = torch.where(quad, h * h, torch.relu(h))
    return torch.bmm(act, W)


def _table_forward(tensors: Sequence[torch.Tensor], quad: torch.Tensor) -> torch.Tensor:
    """:func:`_forward` over the whole table with pair index a * p + b, written as a broadcast: the
    gradient of U and V is then a sum over b or a, not the scatter-add of a gather (which compiles
    to atomic adds); the compiled step's model."""
    U, V, W = tensors
    R, p, width = U.shape
    h = (U.unsqueeze(2) + V.unsqueeze(1)).reshape(R, p * p, width)
    act = torch.where(quad, h * h, torch.relu(h))
    return torch.bmm(act, W)


def _grad(x: torch.Tensor) -> torch.Tensor:
    """A parameter's gradient, which backward has filled in by the time it is read."""
    assert x.grad is not None, "backward() has not run"
    return x.grad


def _run_losses(logits: torch.Tensor, labels: torch.Tensor,
                masks: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Per-run mean loss and accuracy over the pairs of each (R, p^2) mask, for the train and test masks."""
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)                # (R, p^2)
    correct = (logits.argmax(-1) == labels).to(logits.dtype)
    out = []
    for m in masks:
        n = m.sum(-1).clamp(min=1)
        out += [(nll * m).sum(-1) / n, (correct * m).sum(-1) / n]
    return tuple(out)


def train_batch(configs: Sequence[RunConfig], budget: int, n_log: int, ckpt_steps: Iterable[int],
                device: str = "cpu", progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
                compile: bool = False, compile_mode: str | None = None) -> list[Curves]:
    """Train runs of one shape together for ``budget`` full-batch steps; log metrics on ``log_grid``.

    Metrics at step t are those of the parameters after t updates (t = 0: the initialisation); the
    gradient norm is that of the full-batch training loss at those parameters. ``compile``: train
    with the compiled step (``compile_mode``: torch.compile's mode; default "reduce-overhead", CUDA
    graphs, on a GPU and "default" on CPU).
    """
    if not configs:
        return []
    p, dtype, dev = batch_shape(configs, device, "train_batch needs runs of one (p, width, dtype)")
    R = len(configs)
    params = [init_params(c) for c in configs]
    U, V, W = (torch.stack([q[k] for q in params]).to(dev, dtype).requires_grad_(True) for k in ("U", "V", "W"))
    quad = torch.tensor([c.act == "quad" for c in configs], device=dev).view(R, 1, 1)
    idx = torch.arange(p * p, device=dev)
    a, b = idx // p, idx % p
    return train_batched_runs(configs, [U, V, W], lambda: _forward(U, V, W, quad, a, b), budget, n_log, ckpt_steps,
                              norm_groups={"norm_U": [0], "norm_V": [1], "norm_W": [2]}, ckpt_fn=lambda: (U, V),
                              device=dev, dtype=dtype, progress=progress,
                              compiled=(_table_forward, (quad,)) if compile else None, compile_mode=compile_mode)


def batch_shape(configs: Sequence[Any], device: str, what: str) -> tuple[int, torch.dtype, torch.device]:
    """(p, dtype, device) of a batch whose runs share one ``shape_key``; ValueError (``what``) otherwise."""
    keys = {c.shape_key for c in configs}
    if len(keys) != 1:
        raise ValueError(f"{what}; got {sorted(keys)}")
    dtype = {"float32": torch.float32, "float64": torch.float64}[configs[0].dtype]
    return configs[0].p, dtype, torch.device(device)


def train_batched_runs(configs: Sequence[Any], tensors: list[torch.Tensor], logits_fn: Callable[[], torch.Tensor],
                       budget: int, n_log: int, ckpt_steps: Iterable[int], norm_groups: dict[str, list[int]],
                       ckpt_fn: Callable[[], tuple[torch.Tensor, torch.Tensor]], device: torch.device | str,
                       dtype: torch.dtype,
                       progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
                       compiled: tuple[Callable[..., torch.Tensor], tuple] | None = None,
                       compile_mode: str | None = None) -> list[Curves]:
    """The loop every model kind shares: full-batch steps of per-run AdamW over ``tensors`` (each with a
    leading run dimension), logging on ``log_grid`` and checkpointing ``ckpt_fn()`` (two (R, p, k)
    tensors: the inputs of a and of b).

    ``logits_fn()`` gives the (R, p^2, p) logits at the current parameters. The logged rows are train
    and test loss and accuracy, the norm of each group of ``norm_groups`` (name -> indices into ``tensors``),
    and the gradient norm; runs' labels, masks, learning rate and weight decay come from ``configs``.

    ``compiled`` = (fn, args): train with the compiled step instead, the logits being
    ``fn(tensors, *args)``. ``fn`` must be a module-level function and ``args`` tensors or constants
    (no closures): torch.compile keeps one graph per function and shape, reused by every batch.
    """
    dev = torch.device(device)
    R, p = len(configs), configs[0].p
    labels = torch.from_numpy(np.stack([labels_for(c.op, p) for c in configs])).to(dev)
    train = torch.from_numpy(np.stack([train_mask_for(c) for c in configs])).to(dev, dtype)
    test = 1.0 - train
    lr = torch.tensor([c.lr for c in configs], device=dev, dtype=dtype)
    wd = torch.tensor([c.wd for c in configs], device=dev, dtype=dtype)
    exp_avg = [torch.zeros_like(t) for t in tensors]
    exp_avg_sq = [torch.zeros_like(t) for t in tensors]

    grid = log_grid(budget, n_log)
    log_at = {int(s): i for i, s in enumerate(grid)}
    ckpts = sorted({int(s) for s in ckpt_steps if 0 <= s <= budget})
    ckpt_at = {s: i for i, s in enumerate(ckpts)}
    logs = torch.zeros((4 + len(norm_groups) + 1, R, grid.size), dtype=dtype, device=dev)
    ck_a, ck_b = (torch.zeros((R, len(ckpts), *x.shape[1:]), dtype=dtype, device=dev) for x in ckpt_fn())

    compiled_step = None
    if compiled is not None:
        compiled_step = _compiled_stepper(compiled, compile_mode, dev, tensors, exp_avg, exp_avg_sq, lr, wd,
                                          labels, train, test, norm_groups)

    steps: Iterable[int] = range(budget + 1)
    for t in (progress(steps) if progress else steps):
        if t in ckpt_at:
            with torch.no_grad():
                x_a, x_b = ckpt_fn()
                ck_a[:, ckpt_at[t]] = x_a
                ck_b[:, ckpt_at[t]] = x_b
        if compiled_step is not None:
            metrics = compiled_step()      # these parameters' metrics, then the update (unused at t = budget)
            if t in log_at:
                logs[:, :, log_at[t]] = metrics
            continue
        logits = logits_fn()
        tr_loss, tr_acc, te_loss, te_acc = _run_losses(logits, labels, (train, test))
        for t_ in tensors:
            t_.grad = None
        tr_loss.sum().backward()
        with torch.no_grad():
            if t in log_at:
                i = log_at[t]
                gnorm = torch.sqrt(tensor_sum((_grad(g) ** 2).sum(tuple(range(1, g.dim()))) for g in tensors))
                norms = [_group_norm([tensors[j] for j in group]) for group in norm_groups.values()]
                logs[:, :, i] = torch.stack([tr_loss, tr_acc, te_loss, te_acc, *norms, gnorm])
            if t == budget:
                break
            _adamw_step(tensors, exp_avg, exp_avg_sq, lr, wd, t + 1)

    logs_np = logs.cpu().numpy()
    ck_a_np, ck_b_np = ck_a.detach().cpu().numpy(), ck_b.detach().cpu().numpy()
    keys = ("train_loss", "train_acc", "test_loss", "test_acc", *norm_groups, "grad_norm")
    return [Curves(steps=grid, metrics={k: logs_np[j, r].copy() for j, k in enumerate(keys)},
                   ckpt_steps=np.asarray(ckpts, dtype=np.int64), ckpt_U=ck_a_np[r], ckpt_V=ck_b_np[r])
            for r in range(R)]


def _sq_norm(x: torch.Tensor) -> torch.Tensor:
    """Per-run squared Frobenius norm of an (R, ...) tensor."""
    return x.square().sum(tuple(range(1, x.dim())))


def _group_norm(group: list[torch.Tensor]) -> torch.Tensor:
    total = _sq_norm(group[0])
    for x in group[1:]:
        total = total + _sq_norm(x)
    return total.sqrt()


def _adamw_step(tensors: list[torch.Tensor], exp_avg: list[torch.Tensor], exp_avg_sq: list[torch.Tensor],
                lr: torch.Tensor, wd: torch.Tensor, step: int) -> None:
    """AdamW (Loshchilov & Hutter), as torch.optim.AdamW computes it, with per-run (R,) lr and wd and
    a linear warmup over ``WARMUP_STEPS``; ``step`` counts from 1."""
    lr_t = lr * min(1.0, step / WARMUP_STEPS)
    bc1 = 1 - BETAS[0] ** step
    bc2 = 1 - BETAS[1] ** step
    for x, m, v in zip(tensors, exp_avg, exp_avg_sq):
        _adamw_update(x, _grad(x), m, v, lr_t, wd, bc1, math.sqrt(bc2))


def _adamw_update(x: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, lr_t: torch.Tensor,
                  wd: torch.Tensor, bc1: float | torch.Tensor, sqrt_bc2: float | torch.Tensor) -> None:
    """One tensor's AdamW update in place: per-run (R,) learning rate (warmup applied) and weight
    decay; the bias corrections 1 - beta1^t and sqrt(1 - beta2^t) as numbers or (1,) tensors."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    lr_x, wd_x = lr_t.view(shape), wd.view(shape)
    x.mul_(1 - lr_x * wd_x)
    m.lerp_(grad, 1 - BETAS[0])
    v.mul_(BETAS[1]).addcmul_(grad, grad, value=1 - BETAS[1])
    denom = (v.sqrt() / sqrt_bc2).add_(EPS)
    x.sub_(m / denom * (lr_x / bc1))


def _train_step(logits_of: Callable[..., torch.Tensor], logits_args: tuple, params: list[torch.Tensor],
                exp_avg: list[torch.Tensor], exp_avg_sq: list[torch.Tensor], lr: torch.Tensor, wd: torch.Tensor,
                step: torch.Tensor, labels: torch.Tensor, train: torch.Tensor, test: torch.Tensor,
                norm_groups: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """One full-batch step as one tensor program, for torch.compile: the logged metrics at the
    current parameters ((K, R) rows: train/test loss and accuracy, group norms, gradient norm), then
    the AdamW update of :func:`_adamw_step` in place, ``step`` ((1,) float64, updates so far) counting it.

    Metrics are computed at every step, not only at logged ones: they cost a few reductions over
    the parameters, and one graph for every step means no recompiles and no graph breaks.
    """
    def summed_train_loss(ps: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        losses = _run_losses(logits_of(ps, *logits_args), labels, (train, test))
        return losses[0].sum(), losses

    grads, losses = torch.func.grad(summed_train_loss, has_aux=True)(list(params))
    gnorm = torch.sqrt(tensor_sum(_sq_norm(g) for g in grads))
    norms = [_group_norm([params[j] for j in group]) for group in norm_groups]
    metrics = torch.stack([*losses, *norms, gnorm])
    step.add_(1)
    # the schedule in float64, rounded to the runs' dtype as the eager step's Python floats are
    lr_t = lr * torch.clamp(step / WARMUP_STEPS, max=1.0).to(lr.dtype)
    bc1 = (1 - BETAS[0] ** step).to(lr.dtype)
    sqrt_bc2 = torch.sqrt(1 - BETAS[1] ** step).to(lr.dtype)
    for x, g, m, v in zip(params, grads, exp_avg, exp_avg_sq):
        _adamw_update(x, g, m, v, lr_t, wd, bc1, sqrt_bc2)
    return metrics


@functools.lru_cache(maxsize=None)
def _compiled_train_step(mode: str) -> Callable[..., torch.Tensor]:
    """:func:`_train_step` compiled in ``mode``; one wrapper per mode, so its graphs are reused."""
    return torch.compile(_train_step, mode=mode)


def _compiled_stepper(compiled: tuple[Callable[..., torch.Tensor], tuple], compile_mode: str | None,
                      device: torch.device, tensors: list[torch.Tensor], exp_avg: list[torch.Tensor],
                      exp_avg_sq: list[torch.Tensor], lr: torch.Tensor, wd: torch.Tensor, labels: torch.Tensor,
                      train: torch.Tensor, test: torch.Tensor,
                      norm_groups: dict[str, list[int]]) -> Callable[[], torch.Tensor]:
    """A function that runs one compiled step of these runs and returns its (K, R) metrics."""
    logits_of, logits_args = compiled
    mode = compile_mode or ("reduce-overhead" if device.type == "cuda" else "default")
    if device.type == "cpu" and os.environ.get("ATEN_CPU_CAPABILITY"):
        # Measured with torch 2.13 on an AVX-512 machine: with ATEN_CPU_CAPABILITY=avx2 (the
        # reference build environment, benchmark/build_env.py) inductor's CPU kernels for this step
        # return wrong numbers (NaN losses from step 1), while eager is exact. Refuse, never guess.
        raise RuntimeError("compile=True on CPU with ATEN_CPU_CAPABILITY="
                           f"{os.environ['ATEN_CPU_CAPABILITY']!r} set: torch 2.13's inductor gives wrong "
                           "curves under a forced ATen capability; unset it (the data builds train eager)")
    step_fn = _compiled_train_step(mode)
    params = [t.detach() for t in tensors]     # the same storage, updated in place by the compiled step
    # (1,), not 0-d: inductor (torch 2.13) drops the in-place update of a 0-d float64 CPU input
    step = torch.zeros(1, dtype=torch.float64, device=device)
    groups = tuple(tuple(g) for g in norm_groups.values())
    # Fixed addresses let CUDA graphs update the state in place rather than copy it in and out each
    # step; guard=False so that the next batch's tensors reuse the graph instead of recompiling it.
    state = [*params, *exp_avg, *exp_avg_sq, lr, wd, step, labels, train, test,
             *(x for x in logits_args if isinstance(x, torch.Tensor))]
    for x in state:
        torch._dynamo.mark_static_address(x, guard=False)

    def run_step() -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()    # the last step's metrics are consumed: its buffers may go
        return step_fn(logits_of, logits_args, params, exp_avg, exp_avg_sq, lr, wd, step, labels, train, test,
                       groups)

    return run_step


def train_reference(cfg: RunConfig, budget: int, n_log: int) -> dict[str, np.ndarray]:
    """One run, unbatched, with ``torch.optim.AdamW`` and a warmup schedule: the reference the
    batched trainer is tested against (logged train/test loss and accuracy, and weight norms)."""
    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg.dtype]
    init = init_params(cfg)
    U, V, W = (init[k].to(dtype).requires_grad_(True) for k in ("U", "V", "W"))
    labels = torch.from_numpy(labels_for(cfg.op, cfg.p))
    train = torch.from_numpy(train_mask_for(cfg))
    idx = torch.arange(cfg.p * cfg.p)
    a, b = idx // cfg.p, idx % cfg.p
    opt = torch.optim.AdamW([U, V, W], lr=cfg.lr, betas=BETAS, eps=EPS, weight_decay=cfg.wd)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / WARMUP_STEPS))
    grid = log_grid(budget, n_log)
    logged = set(grid.tolist())
    out: dict[str, Any] = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc", "norm_U")}
    for t in range(budget + 1):
        h = U[a] + V[b]
        logits = (h * h if cfg.act == "quad" else torch.relu(h)) @ W
        nll = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        correct = (logits.argmax(-1) == labels).to(dtype)
        loss = nll[train].mean()
        if t in logged:
            with torch.no_grad():
                out["train_loss"].append(float(loss))
                out["train_acc"].append(float(correct[train].mean()))
                out["test_loss"].append(float(nll[~train].mean()))
                out["test_acc"].append(float(correct[~train].mean()))
                out["norm_U"].append(float(U.norm()))
        if t == budget:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return {k: np.asarray(v) for k, v in out.items()}
