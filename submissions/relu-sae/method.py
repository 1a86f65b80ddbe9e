"""L1-penalised ReLU sparse autoencoder (Sharkey et al. 2022; Bricken et al. 2023).

z = ReLU(W_enc x + b_enc), x_hat = W_dec^T z, loss = mean ||x - x_hat||^2 + L1 * mean ||z||_1,
with n latents (dictionary size n), untied weights and decoder rows renormalised to unit norm
after every Adam step (so the L1 penalty cannot be dodged by shrinking codes and growing atoms).
The samples are rescaled to unit mean squared norm (makes L1 and the learning rate scale-free;
directions are unaffected) and not centred (the data is a non-negative combination of features
with no offset). Decoder initialised with random unit directions, encoder with its transpose;
latents that did not fire during the last 250 steps are re-initialised to the direction of a
high-residual sample. The n decoder rows are returned.
"""
from __future__ import annotations

import numpy as np
import torch

L1 = 0.25                 # L1 weight (data at unit mean squared norm)
BATCH = 256
LR = 2e-3
TRAIN_SAMPLES = 768_000   # samples seen in training (3000 steps), independent of N
RESAMPLE_EVERY = 250


def _train(x, m, steps, gen, device):
    n_samp, d = x.shape
    w = torch.randn(m, d, generator=gen).to(device)
    w = w / w.norm(dim=1, keepdim=True)
    w_dec = w.clone().requires_grad_(True)
    w_enc = w.clone().requires_grad_(True)
    b_enc = torch.zeros(m, device=device, requires_grad=True)
    params = (w_dec, w_enc, b_enc)
    opt = torch.optim.Adam(params, lr=LR)
    bs = min(BATCH, n_samp)
    fires = torch.zeros(m, device=device)
    perm = torch.randperm(n_samp, generator=gen).to(device)
    pos = 0
    for step in range(steps):
        if pos + bs > n_samp:
            perm = torch.randperm(n_samp, generator=gen).to(device)
            pos = 0
        xb = x[perm[pos:pos + bs]]
        pos += bs
        z = torch.relu(xb @ w_enc.T + b_enc)
        x_hat = z @ w_dec
        loss = ((x_hat - xb) ** 2).sum(1).mean() + L1 * z.sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            w_dec.div_(w_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))
            fires += (z > 0).sum(0)
            if (step + 1) % RESAMPLE_EVERY == 0:
                dead = (fires == 0).nonzero().flatten()
                if dead.numel() and step < 0.8 * steps:
                    res = (xb - x_hat.detach())
                    weight = (res ** 2).sum(1).cpu().double() + 1e-12
                    pick = torch.multinomial(weight, dead.numel(), replacement=dead.numel() > bs,
                                             generator=gen).to(device)
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
                fires.zero_()
    return w_dec.detach()


def recover_features(problem: dict) -> np.ndarray:
    device = torch.device(problem.get("device", "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    seed = int(problem.get("seed", 0))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n = int(problem["n_features"])
    x = torch.as_tensor(np.ascontiguousarray(problem["samples"], dtype=np.float32)).to(device)
    x = x / max(float(x.pow(2).sum(1).mean().sqrt()), 1e-30)
    w_dec = _train(x, n, max(200, TRAIN_SAMPLES // BATCH), gen, device)
    return w_dec.cpu().numpy().astype(np.float32)
