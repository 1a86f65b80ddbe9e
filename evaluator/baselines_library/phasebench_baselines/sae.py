"""planted-features: what its sparse-autoencoder baselines share (relu-sae, topk-sae; each folder
holds its own encoder, its penalty and how it turns the trained model into atoms).

    x_hat = z @ W_dec,  z = encode(x, W_enc, b_enc)   (the baseline's: ReLU, TopK, ...)
    loss  = mean ||x - x_hat||^2 (+ the baseline's penalty on z)

trained with Adam on mini-batches drawn without replacement (a fresh permutation once the current
one is used up), untied weights, decoder rows renormalised to unit norm after every step (so that a
penalty on the codes cannot be dodged by shrinking codes and growing atoms). Latents that did not
fire during the last ``resample_every`` steps (before 80% of the steps) are re-initialised to the
direction of a high-residual sample of the current batch, their Adam moments zeroed. The decoder
starts as random unit directions, the encoder as the same directions, the encoder bias at 0.

Needs torch (every sandbox provides it); the rest of the library needs numpy and scipy only.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

#: defaults of ``train``; a baseline passes its own (scripts/fit_constants.py sweeps a module constant)
BATCH = 256
LR = 2e-3
RESAMPLE_EVERY = 250

#: (w_dec, w_enc, b_enc): decoder (m, d), encoder (m, d), encoder bias (m,)
Weights = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def prepare(problem: dict) -> tuple[torch.Tensor, torch.Generator, torch.device]:
    """(x, gen, device): the samples as float32 on the problem's device, rescaled to unit mean
    squared norm (directions are unaffected; it makes the learning rate and a penalty scale-free)
    and not centred (the data is a non-negative combination of features with no offset); torch's
    global seed and the generator seeded with the problem's seed; at most 2 CPU threads."""
    device = torch.device(problem.get("device", "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    seed = int(problem.get("seed", 0))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(np.ascontiguousarray(problem["samples"], dtype=np.float32)).to(device)
    x = x / max(float(x.pow(2).sum(1).mean().sqrt()), 1e-30)
    return x, gen, device


def init(m: int, d: int, gen: torch.Generator, device: torch.device) -> Weights:
    """m random unit directions as the decoder and the encoder, the encoder bias at 0."""
    w = torch.randn(m, d, generator=gen).to(device)
    w = w / w.norm(dim=1, keepdim=True)
    return w.clone(), w.clone(), torch.zeros(m, device=device)


def train(x: torch.Tensor, start: Weights, encode: Callable[..., torch.Tensor], steps: int,
          gen: torch.Generator, *, penalty: Callable[[torch.Tensor], torch.Tensor] | None = None,
          lr: float = LR, batch: int = BATCH, resample_every: int = RESAMPLE_EVERY) -> Weights:
    """Train the autoencoder on x (N, d) for ``steps`` Adam steps (learning rate ``lr``, mini-batches
    of ``batch``) from ``start`` (not modified); ``encode(xb, w_enc, b_enc)`` gives the codes,
    ``penalty(z)`` is added to the loss, dead latents are resampled every ``resample_every`` steps.
    Returns the trained weights."""
    device = x.device
    n_samp = x.shape[0]
    w_dec, w_enc, b_enc = (t.clone().requires_grad_(True) for t in start)
    m = w_dec.shape[0]
    params = (w_dec, w_enc, b_enc)
    opt = torch.optim.Adam(params, lr=lr)
    bs = min(batch, n_samp)
    # per latent, the largest code since the last resampling check: > 0 exactly where the latent
    # fired (some code > 0); a max over the batch is a fifth of the cost of counting (z > 0)
    peak = torch.full((m,), -math.inf, device=device)
    perm = torch.randperm(n_samp, generator=gen).to(device)
    pos = 0
    for step in range(steps):
        if pos + bs > n_samp:
            perm = torch.randperm(n_samp, generator=gen).to(device)
            pos = 0
        xb = x[perm[pos:pos + bs]]
        pos += bs
        z = encode(xb, w_enc, b_enc)
        x_hat = z @ w_dec
        loss = ((x_hat - xb) ** 2).sum(1).mean()
        if penalty is not None:
            loss = loss + penalty(z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            w_dec.div_(w_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))
            torch.maximum(peak, z.amax(0), out=peak)
            if (step + 1) % resample_every == 0:
                dead = (~(peak > 0)).nonzero().flatten()
                if dead.numel() and step < 0.8 * steps:
                    _resample(dead, xb, x_hat, params, opt, gen, bs)
                peak.fill_(-math.inf)
    return w_dec.detach(), w_enc.detach(), b_enc.detach()


def _resample(dead, xb, x_hat, params, opt, gen, bs):
    """Dead latents re-initialised to the directions of batch samples drawn by squared residual."""
    w_dec, w_enc, b_enc = params
    device = xb.device
    res = (xb - x_hat.detach())
    weight = (res ** 2).sum(1).cpu().double() + 1e-12
    pick = torch.multinomial(weight, dead.numel(), replacement=dead.numel() > bs, generator=gen).to(device)
    new = res[pick]
    new = new / new.norm(dim=1, keepdim=True).clamp_min(1e-8)
    w_dec[dead] = new
    w_enc[dead] = 0.5 * new
    b_enc[dead] = 0.0
    for p in params:
        st = opt.state[p]
        if st:
            st["exp_avg"][dead] = 0.0
            st["exp_avg_sq"][dead] = 0.0
