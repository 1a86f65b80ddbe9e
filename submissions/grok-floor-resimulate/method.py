"""Floor: re-simulation. The public configuration of a grokking-onset run (architecture, operation,
modulus, widths, optimiser, initialisation scale, precision, budget) is all it takes to train the run
again, so this method does exactly that, with its own seed (the run's seed, and so its training pairs
and initialisation, are not public), and reports the grok step it sees, by the task's onset rule,
on the logged grid the observed steps reveal.

It trains for as long as the instance's wall-time limit allows (the task's declared limits, copied
below, less the time the worker took to start and a margin) and stops early once the run has grokked.
The MLP trains in numpy, forward and backward written out (it starts in a fraction of a second; torch's
import alone takes 1.5 s of CPU), the transformer in torch, imported only when the time left allows.
A run that has not grokked when the time is up is predicted never to grok (its budget T), unless a
grok was under way (test accuracy >= 0.9, hold window unfinished): then that step. A re-simulation
reads nothing of the observed curves but the grid, so it measures what the compute limit allows,
not what a method learns from the start of training: with enough time it is nearly the truth (a
fresh seed's grok step scatters around the run's). Issue 16 asks for limits under which it does not
beat the best honest baseline; the task's card says how far its limits (a tenth of a run's training
cost per architecture) get there: for the transformer, not for the MLP."""
from __future__ import annotations

import math
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

#: the task's per-instance wall-time limits (``phasebench tasks --json``: limits.wall_time_by, else
#: limits.wall_time_s), by the public field ``architecture``; other values get ``DEFAULT_LIMIT_S``
LIMIT_S = {"mlp": 2.5, "transformer": 4.5}
DEFAULT_LIMIT_S = 2.5
#: the share of the limit it may use, counted from the worker's start, and the time kept for the rest
SHARE = 0.9
RESERVE_S = 0.3
#: the least time left worth importing torch for (the transformer; the MLP trains in numpy, which
#: starts in a tenth of the time): about what the import costs
TORCH_IMPORT_S = 1.5
#: the time kept for the worker's exit once torch is loaded (its teardown: with 0.3 s the transformer
#: instances ran past 4.5 s in bwrap, with 1 s they ended by 3.7 s)
TORCH_EXIT_S = 1.0
GROK_ACC, MEM_ACC, MIN_HOLD, HOLD_FRACTION = 0.9, 0.99, 200, 0.1
BETAS, EPS, WARMUP = (0.9, 0.98), 1e-8, 10
_IMPORTED = time.monotonic()


def _started_s_ago() -> float:
    """Seconds since this process started (/proc), or since this module was imported."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED


def log_grid(budget: int, n_points: int) -> np.ndarray:
    grid = np.unique(np.round(np.logspace(0, math.log10(budget), n_points)).astype(np.int64))
    return np.concatenate([[0], grid])


def logged_grid(steps: np.ndarray, budget: int) -> np.ndarray:
    """The whole logged grid, recovered from its observed start (log-spaced points, 0 first)."""
    steps = np.asarray(steps, dtype=np.int64)
    for n in range(2, 2000):
        grid = log_grid(budget, n)
        if grid.size >= steps.size and np.array_equal(grid[:steps.size], steps):
            return grid
    return log_grid(budget, 200)


def labels(op: str, p: int) -> np.ndarray:
    a, b = np.divmod(np.arange(p * p), p)
    y = {"add": a + b, "sub": a - b, "mul": a * b, "sq": a * a + b * b}[op]
    return np.mod(y, p).astype(np.int64)


class Onset:
    """The task's onset rule, applied as the logged steps come: memorised at train accuracy >= 0.99,
    grokked at the first logged step from which test accuracy stays >= 0.9 for max(200, 0.1 s) steps."""

    def __init__(self) -> None:
        self.t_mem: int | None = None
        self.candidate: int | None = None

    def log(self, t: int, train_acc: float, test_acc: float) -> int | None:
        """The grok step once the hold is over, else None."""
        if self.t_mem is None and train_acc >= MEM_ACC:
            self.t_mem = t
        if self.t_mem is None or test_acc < GROK_ACC:
            self.candidate = None
            return None
        if self.candidate is None:
            self.candidate = t
        return self.candidate if t >= self.candidate + max(MIN_HOLD, HOLD_FRACTION * self.candidate) else None


def _adamw(x: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float, wd: float, step: int) -> None:
    """torch.optim.AdamW's update in place, with the task's 10-step linear warmup (``step`` from 1)."""
    lr_t = lr * min(1.0, step / WARMUP)
    x *= 1 - lr_t * wd
    m += (1 - BETAS[0]) * (g - m)
    v *= BETAS[1]
    v += (1 - BETAS[1]) * g * g
    x -= (lr_t / (1 - BETAS[0] ** step)) * m / (np.sqrt(v) / math.sqrt(1 - BETAS[1] ** step) + EPS)


def mlp_numpy(problem: dict, rng: np.random.Generator, train: np.ndarray, y: np.ndarray, grid: set,
              deadline: float, onset: Onset) -> int:
    """logits = act(U[a] + V[b]) W trained full batch with AdamW, forward and backward written out;
    returns the last step trained (``onset`` holds what was seen)."""
    p, width, alpha = int(problem["p"]), int(problem["width"]), float(problem["init_scale"])
    dt = np.float64 if str(problem["dtype"]) == "float64" else np.float32
    U = (rng.standard_normal((p, width)) * (alpha / math.sqrt(2))).astype(dt)
    V = (rng.standard_normal((p, width)) * (alpha / math.sqrt(2))).astype(dt)
    W = (rng.standard_normal((width, p)) * (alpha / math.sqrt(width))).astype(dt)
    moments = [(np.zeros_like(x), np.zeros_like(x)) for x in (U, V, W)]
    quad = str(problem["act"]) == "quad"
    lr, wd, budget = float(problem["lr"]), float(problem["wd"]), int(problem["budget"])
    target = np.zeros((p * p, p), dtype=dt)
    target[np.arange(p * p), y] = 1
    weight = (train / train.sum()).astype(dt)[:, None]
    t = 0
    for t in range(budget + 1):
        h = (U[:, None, :] + V[None, :, :]).reshape(p * p, width)
        act = h * h if quad else np.maximum(h, 0)
        logits = act @ W
        if t in grid:
            correct = logits.argmax(-1) == y
            if onset.log(t, float(correct[train].mean()), float(correct[~train].mean())) is not None:
                return t
        if t == budget or time.monotonic() > deadline:
            break
        z = np.exp(logits - logits.max(-1, keepdims=True))
        g = (z / z.sum(-1, keepdims=True) - target) * weight          # d(mean train cross-entropy)/d logits
        dW = act.T @ g
        dh = (g @ W.T) * (2 * h if quad else (h > 0))
        dh3 = dh.reshape(p, p, width)
        for x, grad, (m, v) in zip((U, V, W), (dh3.sum(1), dh3.sum(0), dW), moments):
            _adamw(x, grad.astype(dt, copy=False), m, v, lr, wd, t + 1)
    return t


def transformer_torch(problem: dict, seed: int, train: np.ndarray, y: np.ndarray, grid: set, deadline: float,
                      onset: Onset) -> int:
    """Nanda et al.'s one layer (no LayerNorm, causal attention, ReLU MLP, read at '='), in torch."""
    import torch

    torch.set_num_threads(1)
    p, d, H, m = int(problem["p"]), int(problem["width"]), int(problem["n_heads"]), int(problem["d_mlp"])
    dh, alpha = d // H, float(problem["init_scale"])
    dtype = torch.float64 if str(problem["dtype"]) == "float64" else torch.float32
    gen = torch.Generator().manual_seed(seed)
    shapes = {"W_E": (p + 1, d), "W_pos": (3, d), "W_Q": (H, d, dh), "W_K": (H, d, dh), "W_V": (H, d, dh),
              "W_O": (H, dh, d), "W_in": (d, m), "b_in": (m,), "W_out": (m, d), "b_out": (d,), "W_U": (d, p)}
    P = {}
    for name, shape in shapes.items():
        if name.startswith("b_"):
            x = torch.zeros(shape, dtype=torch.float64)
        else:
            x = torch.randn(shape, generator=gen, dtype=torch.float64) * (alpha / math.sqrt(p if name == "W_U" else d))
        P[name] = x.to(dtype).requires_grad_(True)

    def logits_fn() -> torch.Tensor:
        x_eq = P["W_E"][p] + P["W_pos"][2]
        q = torch.einsum("d,hde->he", x_eq, P["W_Q"])
        tok = (P["W_E"][:p] + P["W_pos"][0], P["W_E"][:p] + P["W_pos"][1], x_eq.unsqueeze(0))
        s = [(torch.einsum("td,hde->the", x, P["W_K"]) * q).sum(-1) / math.sqrt(dh) for x in tok]
        v = [torch.einsum("td,hde->the", x, P["W_V"]) for x in tok]
        pat = torch.softmax(torch.stack(torch.broadcast_tensors(s[0][:, None], s[1][None], s[2][None]), -1), -1)
        z = pat[..., 0:1] * v[0][:, None] + pat[..., 1:2] * v[1][None] + pat[..., 2:3] * v[2][None]
        resid = x_eq + z.reshape(p * p, H * dh) @ P["W_O"].reshape(H * dh, d)
        resid = resid + torch.relu(resid @ P["W_in"] + P["b_in"]) @ P["W_out"] + P["b_out"]
        return resid @ P["W_U"]

    labels_t, train_t = torch.from_numpy(y), torch.from_numpy(train)
    opt = torch.optim.AdamW(list(P.values()), lr=float(problem["lr"]), betas=BETAS, eps=EPS,
                            weight_decay=float(problem["wd"]))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / WARMUP))
    budget, t = int(problem["budget"]), 0
    for t in range(budget + 1):
        logits = logits_fn()
        if t in grid:
            with torch.no_grad():
                correct = (logits.argmax(-1) == labels_t).numpy()
            if onset.log(t, float(correct[train].mean()), float(correct[~train].mean())) is not None:
                return t
        if t == budget or time.monotonic() > deadline:
            break
        loss = torch.nn.functional.cross_entropy(logits[train_t], labels_t[train_t])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return t


def resimulate(problem: dict, deadline: float) -> tuple[Onset, int]:
    """The onset seen in a fresh run of the configuration (its own seed and training pairs), trained
    until it groks or ``deadline``, and the last step trained (-1: not started, too little time)."""
    budget, p, seed = int(problem["budget"]), int(problem["p"]), int(problem["seed"])
    rng = np.random.default_rng(seed)
    train = np.zeros(p * p, dtype=bool)
    train[rng.permutation(p * p)[: int(round(float(problem["train_frac"]) * p * p))]] = True
    y = labels(str(problem["op"]), p)
    grid = set(logged_grid(problem["steps"], budget).tolist())
    onset = Onset()
    if str(problem["architecture"]) != "transformer":
        return onset, mlp_numpy(problem, rng, train, y, grid, deadline, onset)
    deadline -= TORCH_EXIT_S
    if deadline - time.monotonic() < TORCH_IMPORT_S:
        return onset, -1
    return onset, transformer_torch(problem, seed, train, y, grid, deadline, onset)


def predict(problem):
    limit = LIMIT_S.get(str(problem["architecture"]), DEFAULT_LIMIT_S)
    deadline = time.monotonic() + max(0.0, SHARE * limit - _started_s_ago() - RESERVE_S)
    budget = int(problem["budget"])
    # one BLAS thread: the matrices are small, and the worker's threads share a CPU quota, under which
    # OpenBLAS's spinning threads train over ten times slower (measured in the bwrap sandbox)
    with threadpool_limits(limits=1):
        onset, _ = resimulate(problem, deadline)
    # a grok seen (training stops once its hold is over), or one under way when the time ran out; else
    # never (the budget)
    step = onset.candidate if onset.candidate is not None else budget
    # the run did not grok inside what was observed: its step is past t_obs
    return {"t_grok": float(max(step, int(problem["t_obs"]) + 1))}
