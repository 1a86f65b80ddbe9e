"""The configuration features of the regressor (shared by method.py and fit.py). The architecture is
a feature of its own (a transformer trains on its own budget and groks on its own clock); width is
the embedding width of either (the MLP's hidden width, the transformer's d_model)."""
import numpy as np

OPS = ("add", "sub", "mul", "sq")
COLUMNS = ["transformer", "log_lr", "log_wd", "train_frac", "log_init", "width", "p", "quad", "float64",
           *[f"op_{o}" for o in OPS]]


def features(problem) -> list[float]:
    arch = str(problem["architecture"])
    if arch not in ("mlp", "transformer"):
        raise ValueError(f"unknown architecture {arch!r}")
    wd = float(problem["wd"])
    return [float(arch == "transformer"), np.log10(float(problem["lr"])), np.log10(wd) if wd > 0 else -3.0,
            float(problem["train_frac"]), np.log10(float(problem["init_scale"])), float(problem["width"]),
            float(problem["p"]), float(problem["act"] == "quad"), float(problem["dtype"] == "float64"),
            *[float(problem["op"] == o) for o in OPS]]
