"""TopK sparse autoencoder (Gao et al. 2024) with k estimated from the data.

Pipeline
--------
1. Rescale the samples to unit mean squared norm (directions are unaffected; it makes the
   learning rate scale-free). No centring: the data is a non-negative combination of features
   with no offset, so subtracting the mean would mix every feature into every sample.
2. Estimate k. On 90% of the samples, train a TopK SAE (2n latents) at k = 2 for 1000 steps,
   then continue it for 150 steps at each further k of the grid (3, 4, 6, 8, 12, 16, capped at
   d/4), recording after each stage the fraction of variance unexplained (FVU) on the held-out
   10%. FVU falls steeply while k is below the typical number of active features and flattens
   after it. The elbow is the grid point furthest below the chord joining the two ends of the
   curve FVU(log k) (the "kneedle" rule).
3. Train the final TopK SAE from scratch with that k (2000 steps) and 2n latents (an
   over-complete dictionary escapes the local minima where one latent holds a mixture of
   features; with exactly n latents a few percent of features stay mixed), then keep n atoms: latents ranked by total activation mass
   on the data, skipping any whose decoder direction has |cos| > 0.95 with one already kept.

Architecture: z = TopK(ReLU(W_enc x + b_enc)), x_hat = W_dec^T z, decoder rows renormalised to
unit norm after every Adam step, encoder initialised as the (random) decoder, latents that did not
fire during the last 250 steps re-initialised to the direction of a high-residual sample. The
rescaling, the initialisation and the training loop (Adam, the renormalisation and the resampling)
are phasebench_baselines.sae's, shared with relu-sae; this baseline is its TopK encoder, the choice
of k, the selection of atoms and its constants below.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from phasebench_baselines import sae

K_GRID = (2, 3, 4, 6, 8, 12, 16)
BATCH = 256
LR = 2e-3
FIRST_STAGE = 256_000        # samples seen at the first k of the sweep (1000 steps)
STAGE = 38_400               # samples seen at each further k of the sweep (150 steps)
FINAL_STAGE = 512_000        # samples seen by the final run at the chosen k (2000 steps)
OVERCOMPLETE = 2.0           # final dictionary size / n
DEDUP_COS = 0.95
RESAMPLE_EVERY = 250


def _topk_codes(x, w_enc, b_enc, k):
    pre = x @ w_enc.T + b_enc
    inds = _top_indices(pre, k)
    if inds is None:
        vals, inds = pre.topk(k, dim=1)
    else:
        vals = pre.gather(1, inds)
    return torch.zeros_like(pre).scatter(1, inds, torch.relu(vals))


def _top_indices(pre, k):
    """The column indices of each row's k largest entries as numpy's partition finds them, or None
    where torch.topk is the cheaper (on CPU it switches to a slower algorithm once k * 64 > columns:
    0.4-0.9 ms for 256 rows, most of a training step, against 0.25-0.6 ms here) or might choose
    differently: the set is topk's whenever no entry outside it equals the k-th largest (checked;
    a tie goes to topk). The indices come in ascending order, topk's by value; scattering relu of the
    gathered values gives the same codes and the same gradients either way."""
    n_rows, m = pre.shape
    if pre.device.type != "cpu" or k * 64 <= m:
        return None
    with torch.no_grad():
        a = pre.detach().numpy()
        part = np.partition(a, m - k, axis=1)
        kth = part[:, m - k:m - k + 1]
        if not (part[:, :m - k].max(axis=1) < kth[:, 0]).all():  # a tie at the k-th value
            return None
        cols = np.nonzero(a >= kth)[1]
        if len(cols) != n_rows * k:  # a NaN, which topk ranks above every number and >= never selects
            return None
        return torch.from_numpy(cols.reshape(n_rows, k))


def _train(x, k, steps, gen, init):
    """Train a TopK SAE on x (N, d) from init = (w_dec, w_enc, b_enc); returns the new triple."""
    return sae.train(x, init, lambda xb, w_enc, b_enc: _topk_codes(xb, w_enc, b_enc, k), steps, gen,
                     lr=LR, batch=BATCH, resample_every=RESAMPLE_EVERY)


def _fvu(x, w_dec, w_enc, b_enc, k, chunk=65536):
    num, den = 0.0, 0.0
    with torch.no_grad():
        for s in range(0, x.shape[0], chunk):
            xb = x[s:s + chunk]
            x_hat = _topk_codes(xb, w_enc, b_enc, k) @ w_dec
            num += float(((x_hat - xb) ** 2).sum())
            den += float((xb ** 2).sum())
    return num / max(den, 1e-30)


def _knee(ks, fvus):
    """Grid point furthest below the chord of FVU against log k."""
    lk = np.log(np.asarray(ks, dtype=float))
    f = np.asarray(fvus, dtype=float)
    if len(ks) < 3:
        return ks[-1]
    chord = f[0] + (f[-1] - f[0]) * (lk - lk[0]) / (lk[-1] - lk[0])
    return ks[int(np.argmax(chord - f))]


def sweep_k(x, m, gen, device):
    """Ascending chain over the k grid on 90% of x: train at the first k, then continue training
    at each larger k in turn (warm start), recording the held-out FVU after each stage."""
    n_samp, d = x.shape
    grid = [k for k in K_GRID if k <= max(3, d // 4) and k < m]
    n_val = max(1, min(n_samp // 10, 20_000))
    idx = torch.randperm(n_samp, generator=gen).to(device)
    x_val, x_tr = x[idx[:n_val]], x[idx[n_val:]]
    state = sae.init(m, d, gen, device)
    fvus = []
    for i, k in enumerate(grid):
        steps = (FIRST_STAGE if i == 0 else STAGE) // BATCH
        state = _train(x_tr, k, steps, gen, state)
        fvus.append(_fvu(x_val, *state, k))
    return grid, fvus


def estimate_k(grid, fvus):
    return _knee(grid, fvus)


def recover_features(problem: dict) -> np.ndarray:
    x, gen, device = sae.prepare(problem)
    n = int(problem["n_features"])

    m = int(math.ceil(OVERCOMPLETE * n))
    grid, fvus = sweep_k(x, m, gen, device)
    k = estimate_k(grid, fvus)
    # Final model: trained from a fresh random initialisation at the chosen k.
    w_dec, w_enc, b_enc = _train(x, k, FINAL_STAGE // BATCH, gen, sae.init(m, x.shape[1], gen, device))

    # Keep n atoms: rank latents by activation mass, drop near-duplicates.
    mass = torch.zeros(m, device=device)
    with torch.no_grad():
        for s in range(0, x.shape[0], 65536):
            mass += _topk_codes(x[s:s + 65536], w_enc, b_enc, k).sum(0)
    atoms = w_dec.cpu().numpy().astype(np.float64)
    atoms /= np.maximum(np.linalg.norm(atoms, axis=1, keepdims=True), 1e-12)
    mass = mass.cpu().numpy()
    kept: list[int] = []
    for j in np.argsort(-mass, kind="stable"):
        if len(kept) == n or mass[j] <= 0:
            break
        if kept and np.abs(atoms[kept] @ atoms[j]).max() > DEDUP_COS:
            continue
        kept.append(int(j))
    return atoms[kept].astype(np.float32)
