"""phasebench-baselines: what the PhaseBench baselines share, provided read-only to every submission.

Each sandbox (bubblewrap: the evaluator's environment; docker: the evaluator image) has it installed
next to numpy and scipy, so a submission imports it like any library; it is not copied into
submission folders. Every evaluation records its version and the sha256 of its files, and a stored
result is reused only for the same sha256.

    phasebench_baselines.rare       rare-behavior: budgeted forward passes (oracle or public weights),
                                    the input distribution, the bounds and the prior-median estimate
    phasebench_baselines.scaling    scaling-exponents: parsing, the checked fallback chain of laws,
                                    the calibrated interval, the rate-prior floor
    phasebench_baselines.approach3  scaling-exponents: the Chinchilla approach-3 law (a fallback of
                                    several baselines)
    phasebench_baselines.grok       grokking-onset: run features, and the helpers fit.py scripts use
    phasebench_baselines.sae        planted-features: the sparse autoencoders' training loop (relu-sae,
                                    topk-sae)

numpy and scipy only (sae: torch, which every sandbox provides too); it never imports the benchmark
or the evaluator (which hold the answers).
"""


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs 30-40 ms, paid by every sandboxed worker
    # (one per instance) that imports a module of this package.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("phasebench-baselines")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown"
