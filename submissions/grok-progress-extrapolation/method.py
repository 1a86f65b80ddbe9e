"""Progress-measure extrapolation (after Nanda et al. 2023): generalising circuits for modular
addition are sparse in the Fourier basis of the embeddings. The progress measure is the share of
the embeddings' power (U and V, over a = 0..p-1, summed over the hidden units) in their 4 strongest
non-constant frequencies; it is computed at each checkpoint given (the last up to 3 at or before
t_obs), fitted linearly in log10(step), and extrapolated to the level c* at which runs grok. Never
when it does not rise. c* is fitted on the dev split (params.json, fit.py). Train-side only.
The same measure serves both architectures: for a transformer the checkpoints are the residual-
stream inputs W_E[a] + W_pos[0] and W_E[b] + W_pos[1], whose positional part is constant over the
residues and so sits in the excluded zero frequency (Nanda et al. measure the same embedding).
(For mul and sq the relevant basis is not the additive Fourier one: the measure is weak there.)"""
from pathlib import Path

import numpy as np

from phasebench_baselines.grok import NEVER, after_prefix, load_params

_PARAMS = load_params(Path(__file__).resolve().parent)
TOP_K = 4


def fourier_concentration(embedding: np.ndarray) -> float:
    """Share of the non-constant power in the TOP_K strongest frequencies (rows: residues)."""
    power = (np.abs(np.fft.rfft(embedding.astype(np.float64), axis=0)) ** 2).sum(axis=1)[1:]
    total = power.sum()
    return float(np.sort(power)[::-1][:TOP_K].sum() / total) if total > 0 else 0.0


def progress(problem) -> tuple[np.ndarray, np.ndarray]:
    steps = np.asarray(problem["ckpt_steps"], dtype=float)
    conc = np.array([(fourier_concentration(u) + fourier_concentration(v)) / 2
                     for u, v in zip(problem["ckpt_U"], problem["ckpt_V"])])
    keep = steps >= 1
    return steps[keep], conc[keep]


def predict_with(problem, level: float) -> float:
    steps, conc = progress(problem)
    if steps.size == 0:
        return NEVER
    if conc[-1] >= level:
        return after_prefix(steps[-1], problem)
    if steps.size < 2:
        return NEVER
    slope, intercept = np.polyfit(np.log10(steps), conc, 1)
    if slope <= 0:
        return NEVER
    return after_prefix(10 ** min((level - intercept) / slope, 12.0), problem)


def predict(problem):
    return {"t_grok": predict_with(problem, _PARAMS["level"])}
