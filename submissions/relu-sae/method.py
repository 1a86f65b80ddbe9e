"""L1-penalised ReLU sparse autoencoder (Sharkey et al. 2022; Bricken et al. 2023).

z = ReLU(W_enc x + b_enc), x_hat = W_dec^T z, loss = mean ||x - x_hat||^2 + L1 * mean ||z||_1,
with n latents (dictionary size n), untied weights and decoder rows renormalised to unit norm
after every Adam step (so the L1 penalty cannot be dodged by shrinking codes and growing atoms).
The samples are rescaled to unit mean squared norm (makes L1 and the learning rate scale-free;
directions are unaffected) and not centred (the data is a non-negative combination of features
with no offset). Decoder initialised with random unit directions, encoder with its transpose;
latents that did not fire during the last 250 steps are re-initialised to the direction of a
high-residual sample. The n decoder rows are returned. The training loop (Adam, the
renormalisation and the resampling) is phasebench_baselines.sae's, shared with topk-sae; this
baseline is its ReLU encoder, its L1 penalty and its constants below.
"""
from __future__ import annotations

import numpy as np
import torch
from phasebench_baselines import sae

L1 = 0.25                 # L1 weight (data at unit mean squared norm)
BATCH = 256
LR = 2e-3
TRAIN_SAMPLES = 768_000   # samples seen in training (3000 steps), independent of N
RESAMPLE_EVERY = 250


def _codes(x, w_enc, b_enc):
    return torch.relu(x @ w_enc.T + b_enc)


def _l1(z):
    return L1 * z.sum(1).mean()


def recover_features(problem: dict) -> np.ndarray:
    x, gen, device = sae.prepare(problem)
    n = int(problem["n_features"])
    steps = max(200, TRAIN_SAMPLES // BATCH)
    w_dec, _, _ = sae.train(x, sae.init(n, x.shape[1], gen, device), _codes, steps, gen, penalty=_l1,
                            lr=LR, batch=BATCH, resample_every=RESAMPLE_EVERY)
    return w_dec.cpu().numpy().astype(np.float32)
