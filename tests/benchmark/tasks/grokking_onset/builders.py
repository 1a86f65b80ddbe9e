"""A tiny grokking design: runs that train in a fraction of a second, for tests of the machinery."""
from __future__ import annotations

from benchmark.tasks.grokking_onset.design import (
    Schedule,
    SplitDesign,
    TransformerDesign,
)


def tiny_design(**over) -> SplitDesign:
    """Four MLP runs and one transformer at p = 7 for a few hundred steps; weak weight decay, so most
    runs do not grok inside their prefix and stay instances."""
    tf = TransformerDesign(n_runs=1, schedule=Schedule(budget=120, n_log=20, n_ckpt=5), moduli=(7,),
                           lr=(3e-3, 3e-3), wd=(0.01, 0.01), wd_zero_share=0.0, train_frac=(0.6, 0.6),
                           init_scale=(1.0, 1.0), float64_share=0.0, d_model=8, n_heads=2, d_mlp=16)
    base = dict(n_runs=4, budget=400, n_log=30, n_ckpt=6, moduli=(7,), held_out_moduli=(), widths=(16,),
                acts=("quad", "relu"), ops=("add", "sub"), lr=(1e-3, 3e-3), wd=(0.01, 0.02), wd_zero_share=0.0,
                train_frac=(0.6, 0.8), init_scale=(1.0, 1.0), float64_share=0.5, transformers=tf)
    return SplitDesign(**{**base, **over})
