"""Tasks rare-behavior (black-box) and rare-behavior-whitebox: estimate and bound a rare probability.

Both tracks share the generator and the scorer; they differ in what the method gets and use
different instances (different seeds: the white-box weights must not reveal the black-box models).

* ``rare-behavior``: the model lives in the instance's answers; the method only queries it through
  ``problem["oracle"]``, with a budget of 2^12, 2^14 or 2^16 forward passes (public ``budget``).
* ``rare-behavior-whitebox``: the weights are public inputs (names and forward pass in the card);
  the budget is the task's wall time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...answers import scalar
from ...dataset import InstanceRecord
from ...metadata import AnswerField, Breakdown, DatasetRef, FieldSpec, Metric, PlotSpec, ResourceLimits, TaskMetadata
from ...oracle import Oracle
from ...task import AnswerError, GeneratedInstance, InstanceSpec, Task, register_task
from .models import forward
from .scorer import ESTIMATE_CAP, IS_WORST, LEVEL, PINBALL_WORST, QUANTILE_SCORE_WORST, score_answer

__all__ = ["RareBehavior", "RareBehaviorWhitebox", "ModelOracle", "BUDGETS", "DESIGNS", "BLACKBOX_DESIGNS",
           "SplitDesign", "draw_configs"]

#: 2^12 at least: the zero-hit Clopper-Pearson bound, about 3 / budget, is then below the announced
#: top 1e-3 at every budget, so a sample's hits (or their absence) always tell a method something the
#: prior does not (at 2^10 it was 2.9e-3: a method learned nothing from a miss).
BUDGETS = (2 ** 12, 2 ** 14, 2 ** 16)
MODEL_PREFIX = "model."


# --- instance configurations ------------------------------------------------------------------

LOG10_P_RANGE = (-12.0, -3.0)


def _f1(rng: np.random.Generator) -> dict[str, Any]:
    return {"input_dist": "gaussian", "dim": int(rng.choice([64, 128, 256, 512, 784])), "rank": int(rng.integers(1, 3)),
            "hidden_layers": int(rng.integers(0, 4)), "width": 16, "classes": int(rng.choice([1, 3, 4]))}


def _f2_plane(rng: np.random.Generator) -> dict[str, Any]:
    return {"input_dist": str(rng.choice(["box", "gaussian"])), "dim": 2, "hidden_layers": int(rng.integers(1, 3)),
            "width": 12, "classes": int(rng.choice([1, 3, 4]))}


def _f2_box(dim: int, rng: np.random.Generator) -> dict[str, Any]:
    """3-D to 6-D: box inputs only (regions.py has no exact Gaussian polytope mass); width 6-8 and one
    hidden layer in 6-D keep the region count, and the build, small (seconds)."""
    return {"input_dist": "box", "dim": dim, "hidden_layers": 1 if dim == 6 else 2, "width": 6 if dim in (4, 5) else 8,
            "classes": int(rng.choice([1, 3]))}


def _f3(vocab: int, length: int, n_layers: int, width: int) -> dict[str, Any]:
    return {"vocab": vocab, "length": length, "n_layers": n_layers, "width": width, "n_heads": 2}


@dataclass(frozen=True)
class SplitDesign:
    """The published distribution of a split (the card lists it): how many instances of each kind, the
    F3 shapes (each used once, in a drawn order) and the F2 dimensions above 2. Every instance's target
    log10 p is uniform on ``LOG10_P_RANGE`` and, black-box, its budget uniform on ``BUDGETS``."""
    n_f1: int
    n_f2_plane: int
    f2_box_dims: tuple[int, ...]
    f3_shapes: tuple[tuple[int, int, int, int], ...]  # (vocab, length, blocks, width)


#: The white-box track: every family.
DESIGNS = {
    # train: dev's design (its own draws: targets, thresholds, weights), for choosing a method's constants.
    "train": SplitDesign(n_f1=6, n_f2_plane=5, f2_box_dims=(3, 4, 6),
                         f3_shapes=((8, 8, 1, 64), (8, 6, 1, 64), (8, 8, 2, 64), (7, 6, 1, 128))),
    # Small enough that both dev splits build in a few minutes on 2 cores (F3: two 8^8 models, one and two
    # blocks of width 64, whose 2^17 forward passes fit a baseline's 4 GB, and 8^6 and 7^6 sequences).
    "dev": SplitDesign(n_f1=6, n_f2_plane=5, f2_box_dims=(3, 4, 6),
                       f3_shapes=((8, 8, 1, 64), (8, 6, 1, 64), (8, 8, 2, 64), (7, 6, 1, 128))),
    # The F3 models are the size (length 8-10, vocabulary 8-16, at most 2^32 sequences): build
    # it on a GPU.
    "test": SplitDesign(n_f1=20, n_f2_plane=10, f2_box_dims=(3, 4, 5, 6, 3, 4, 5, 6),
                        f3_shapes=((8, 8, 1, 64), (8, 10, 1, 64), (12, 8, 1, 64), (16, 8, 2, 128), (8, 9, 2, 128),
                                   (10, 8, 1, 64), (16, 7, 1, 64), (12, 8, 2, 128))),
}
#: The black-box track: F3 only. Through a float64 oracle, F1's rank-1/2 bottleneck and F2's 2-6
#: dimensions give p away to geometric probing (finite-difference Jacobians, root search, polytope
#: measurement: exact F1, F2 within 0.04 decades, inside every budget), and no coarser output keeps the
#: score-based estimators working while stopping the probe (tests/benchmark/tasks/rare_behavior/
#: test_oracle_extraction.py). Sequences leave nothing to probe: estimating is the only way. Dev holds
#: 16 instances, as many as test (8 more small ones, seconds each to build): with 8, a paired interval
#: between two methods rested on two or three instances where either got a hit.
BLACKBOX_DESIGNS = {
    # train: 16 small transformers, dev's shapes (seconds each to build), drawn from the train key.
    "train": SplitDesign(n_f1=0, n_f2_plane=0, f2_box_dims=(),
                         f3_shapes=((8, 8, 1, 64), (8, 6, 1, 64), (8, 8, 2, 64), (7, 6, 1, 128), (6, 7, 1, 64),
                                    (7, 7, 1, 64), (8, 7, 2, 64), (6, 6, 2, 64), (6, 6, 1, 64), (7, 6, 2, 64),
                                    (8, 6, 2, 64), (6, 7, 2, 64), (7, 7, 1, 128), (6, 8, 1, 64), (8, 7, 1, 64),
                                    (7, 6, 1, 64))),
    "dev": SplitDesign(n_f1=0, n_f2_plane=0, f2_box_dims=(),
                       f3_shapes=((8, 8, 1, 64), (8, 6, 1, 64), (8, 8, 2, 64), (7, 6, 1, 128), (6, 7, 1, 64),
                                  (7, 7, 1, 64), (8, 7, 2, 64), (6, 6, 2, 64), (6, 6, 1, 64), (7, 6, 2, 64),
                                  (8, 6, 2, 64), (6, 7, 2, 64), (7, 7, 1, 128), (6, 8, 1, 64), (8, 7, 1, 64),
                                  (7, 6, 1, 64))),
    "test": SplitDesign(n_f1=0, n_f2_plane=0, f2_box_dims=(),
                        f3_shapes=DESIGNS["test"].f3_shapes + ((8, 8, 2, 64), (9, 8, 1, 64), (10, 7, 2, 64),
                                                               (7, 8, 1, 128), (6, 9, 1, 64), (11, 7, 1, 64),
                                                               (8, 7, 2, 128), (7, 7, 2, 64))),
}


def draw_configs(design: SplitDesign, rng: np.random.Generator, with_budget: bool) -> list[tuple[str, dict[str, Any]]]:
    shapes = [design.f3_shapes[i] for i in rng.permutation(len(design.f3_shapes))]
    configs = ([("F1", _f1(rng)) for _ in range(design.n_f1)]
               + [("F2", _f2_plane(rng)) for _ in range(design.n_f2_plane)]
               + [("F2", _f2_box(dim, rng)) for dim in design.f2_box_dims]
               + [("F3", _f3(*shape)) for shape in shapes])
    for _, params in configs:
        params["log10_p"] = round(float(rng.uniform(*LOG10_P_RANGE)), 4)
        if with_budget:
            params["budget"] = int(rng.choice(BUDGETS))
    return configs


# --- the black-box model ----------------------------------------------------------------------

class ModelOracle(Oracle):
    """The instance's model, run in the evaluator's process in float64."""

    def __init__(self, architecture: str, model: dict[str, np.ndarray], budget: int,
                 input_shape: tuple[int, ...], vocab: int | None = None):
        self.architecture = architecture
        self.model = model
        self.budget = int(budget)
        self.input_shape = input_shape
        self.input_dtype = "int64" if architecture == "transformer" else "float64"
        self.vocab = vocab

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.vocab is not None and (x.min() < 0 or x.max() >= self.vocab):
            raise ValueError(f"tokens must lie in [0, {self.vocab})")
        return forward(self.architecture, self.model, x)


def model_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's arrays out of an answers (or white-box inputs) dict, prefix removed."""
    return {k[len(MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(MODEL_PREFIX)}


# --- metadata -----------------------------------------------------------------------------------

_COMMON_FIELDS = {
    "family": FieldSpec(kind="str", description="F1 (Gaussian, high-dim, hidden bottleneck), F2 (2-D to 6-D ReLU "
                        "net) or F3 (tiny transformer)"),
    "architecture": FieldSpec(kind="str", description="mlp or transformer (forward pass in the dataset card)"),
    "input_dist": FieldSpec(kind="str", description="gaussian: N(0, I_dim); box: uniform on [-1, 1]^dim; tokens: "
                            "independent positions, position j drawn from token_probs[j]"),
    "dim": FieldSpec(kind="int", description="input dimension (mlp; 0 for transformers)"),
    "seq_len": FieldSpec(kind="int", description="sequence length L (transformer; 0 for mlp)"),
    "vocab": FieldSpec(kind="int", description="vocabulary size V (transformer; 0 for mlp)"),
    "predicate": FieldSpec(kind="str", description="threshold: output[0] > threshold; argmax: the output's argmax "
                           "(first index on ties) equals target"),
    "threshold": FieldSpec(kind="float", description="the threshold (threshold predicates)"),
    "target": FieldSpec(kind="int", description="the target class or token (argmax predicates)"),
    "output_dim": FieldSpec(kind="int", description="the model's output size (logits at the last position for "
                            "transformers)"),
    "token_probs": FieldSpec(kind="array", dtype="float64", shape=["L", "V"],
                             description="per-position token probabilities (transformers only; rows sum to 1)"),
}

_ANSWER = {
    "p_hat": AnswerField(kind="scalar", ge=0.0, le=1.0, description="estimate of p, in [0, 1]"),
    # > 0: no finite sample certifies p = 0
    "upper": AnswerField(kind="scalar", gt=0.0, le=1.0,
                         description="95% upper confidence bound on p, in (0, 1], >= p_hat"),
}

# The headline scores the estimate and the bound in one proper rule (scorer.py says why both): the
# quantile losses of log10 p_hat at 0.5 and of log10 upper at 0.95. Its zero is a perfect answer; the
# floor rare-floor-prior (10^-7.5 and 1e-3, no forward pass) scores about 1.35 in expectation over the
# announced prior (0.5 x 2.25 decades of error + 0.05 x 4.5 decades of slack): the board's skill is
# the share of that gap a method closes.
_METRICS = [
    Metric(name="quantile_score", higher_is_better=False, best=0.0, worst=QUANTILE_SCORE_WORST,
           description="0.5 |log10 p_hat - log10 p| + the pinball loss of log10 upper at 0.95 (the two "
                       "columns below, in decades): a proper score for p_hat as the median and upper as the "
                       "95% quantile of one's belief about log10 p, so it rewards estimation and a tight "
                       "calibrated bound together; the prior constant (10^-7.5, 1e-3) scores about 1.35"),
    Metric(name="pinball", higher_is_better=False, best=0.0, worst=PINBALL_WORST,
           description="quantile loss of log10 upper at level 0.95: 0.05 per decade of slack, 0.95 per decade "
                       "of miss (log10 upper floored at -24)"),
    Metric(name="estimate_error", higher_is_better=False, best=0.0, worst=ESTIMATE_CAP,
           description="min(|log10 p_hat - log10 p|, 12); p_hat = 0 counts 12"),
    Metric(name="is_loss", higher_is_better=False, best=0.0, worst=IS_WORST, aggregation="median",
           description="Itakura-Saito loss r - ln r - 1 of Wu & Hilton 2024, r = p / p_hat clipped to "
                       "[1e-12, 1e3]; median over instances"),
    Metric(name="coverage", higher_is_better=True, best=1.0, worst=0.0, nominal_rate=LEVEL,
           description="1 when upper >= p; the mean is the bound's coverage, flagged when a one-sided "
                       "binomial test puts it below 0.95"),
]

_PLOTS = [
    PlotSpec(name="estimate-vs-truth", title="Estimate against the true probability", x="p_true", y="p_hat",
             x_log=True, y_log=True, diagonal=True, x_label="true p", y_label="estimate p_hat",
             caption="Each point is an instance; on the diagonal the estimate is exact (p_hat = 0 is not drawn)."),
    PlotSpec(name="bound-vs-truth", title="95% upper bound against the true probability", x="p_true", y="upper",
             x_log=True, y_log=True, diagonal=True, x_label="true p", y_label="upper bound u",
             caption="Points below the diagonal are misses (u < p); a valid 95% bound misses on at most 5% of "
                     "instances (the coverage metric, flagged when significantly lower)."),
]

_BREAKDOWNS = [
    Breakdown(name="decade", key="decade", title="By decade of the true p",
              caption="Slice k holds the instances with 10^k <= p < 10^(k+1); each metric is aggregated as "
                      "declared (coverage: the share of bounds at or above p in that decade)."),
]

_REFERENCES = [
    "Wu & Hilton 2024, Estimating the Probabilities of Rare Outputs in Language Models (ITGIS, MHIS)",
    "Webb, Rainforth, Teh & Kumar 2019, A Statistical Approach to Assessing Neural Network Robustness (AMS)",
    "Rubinstein & Kroese 2004, The Cross-Entropy Method",
    "Gowal et al. 2018, On the Effectiveness of Interval Bound Propagation",
    "Clopper & Pearson 1934, The use of confidence or fiducial limits illustrated in the case of the binomial",
    "Gneiting & Raftery 2007, Strictly Proper Scoring Rules, Prediction, and Estimation (quantile scores)",
]


#: Why each input field may be seen. None of them is the target p or a draw that sets it: the target
#: log10 p is uniform on its range and the threshold (or bias, or beta) is tuned to it on the hidden model.
_PUBLIC_BECAUSE = {
    "family": "the model class, which the inputs' shapes and the forward pass show anyway",
    "architecture": "the forward pass to use (white-box) or the oracle's input format (black-box)",
    "input_dist": "the distribution p is defined under: the question itself",
    "dim": "the oracle's input size", "seq_len": "the oracle's input size", "vocab": "the oracle's token range",
    "predicate": "the behaviour whose probability is asked: the question itself",
    "threshold": "part of the predicate; tuned on the hidden model, so alone it does not give p",
    "target": "part of the predicate", "output_dim": "the oracle's output size",
    "token_probs": "the distribution p is defined under: the question itself",
    "budget": "the resource limit; drawn uniformly for every instance, whatever its p",
    "n_layers": "the white-box weights' names", "width": "the white-box weights' shapes",
    "n_heads": "the white-box forward pass", "model.*": "the white-box track's premise: the weights",
}


def _metadata(name: str, whitebox: bool, revision: str, train_revision: str | None) -> TaskMetadata:
    if whitebox:
        inputs = {**_COMMON_FIELDS,
                  "n_layers": FieldSpec(kind="int", description="mlp: weight layers (w0..w{n-1}); transformer: blocks"),
                  "width": FieldSpec(kind="int", description="hidden width (mlp) or residual width (transformer)"),
                  "n_heads": FieldSpec(kind="int", description="attention heads (transformer; 0 for mlp)"),
                  "model.*": FieldSpec(kind="array", dtype="float64|float32|int64",
                                       description="the weights, named as in the dataset card (model.w0, ...)")}
        what = ("the model's weights and architecture (a float64 forward pass is specified in the dataset card), "
                "the input distribution, and the wall time of the task's limits")
    else:
        inputs = {**_COMMON_FIELDS,
                  "budget": FieldSpec(kind="int", description="forward passes allowed through problem['oracle'] "
                                      "(2^12, 2^14 or 2^16); one more fails the instance")}
        what = ("only problem['oracle'], which returns the model's float64 outputs for a batch of inputs and counts "
                "every forward pass against the instance's budget; the weights never reach the method. The track "
                "holds the tiny transformers (F3) only: the low-dimensional MLPs give p away to geometric probing "
                "of a float64 oracle, so they are white-box instances")
    inputs = {k: f.model_copy(update={"public_because": _PUBLIC_BECAUSE[k]}) for k, f in inputs.items()}
    return TaskMetadata(
        # 2: F2 in 3-D to 6-D (boxes) added; 3: two dev F3 models of length 8; 4: configurations, target p
        # (continuous) and budgets drawn from the split's secret, opaque ids; black-box: F3 only;
        # 5: headline quantile_score (estimate and bound), budgets 2^12..2^16, 16 black-box dev instances
        name=name, version=5,
        description=("Estimate the probability p of a rare model behaviour (output above a threshold, or a target "
                     "argmax) under a known input distribution, and give a 95% upper bound on it. Each instance's "
                     f"model is tuned to a target log10 p drawn uniformly on [-12, -3]; its p is known exactly "
                     f"to the benchmark. The headline scores both: "
                     f"half the estimate's log10 error plus the bound's 0.95 pinball loss. The method gets "
                     f"{what}."),
        reference=_REFERENCES, input_schema=inputs, answer_schema=_ANSWER, metrics=_METRICS,
        headline="quantile_score",
        groups=["F1", "F2", "F3"] if whitebox else ["F3"],
        group_public=True,
        group_because="the family (the 'family' field): the model class, shown by the inputs' shapes anyway",
        limits=ResourceLimits(wall_time_s=120, memory_mb=4096, output_mb=1),
        dataset=DatasetRef(repo_id="phasebench/phasebench-tasks", config=name, revision=revision,
                           train_revision=train_revision),
        plots=_PLOTS, breakdowns=_BREAKDOWNS,
    )


# --- the tasks ------------------------------------------------------------------------------------

class _RareBehaviorBase(Task):
    """The two tracks are two tasks, so every draw differs between them (the task name is in each
    derivation): the white-box weights never reveal a black-box model, from the same secret too."""
    whitebox: bool = False
    splits = ("train", "dev", "test")

    def draw_configs(self, split: str, rng: np.random.Generator) -> list[tuple[str, dict[str, Any]]]:
        designs = DESIGNS if self.whitebox else BLACKBOX_DESIGNS
        return draw_configs(designs[split], rng, with_budget=not self.whitebox)

    def generate(self, spec: InstanceSpec) -> GeneratedInstance:
        from .generator import make_instance  # at use: listing the tasks need not import the generators

        inst = make_instance(spec.group, spec.params, spec.seed)
        public = {"family": inst.family, "architecture": inst.architecture, "dim": 0, "seq_len": 0, "vocab": 0,
                  "threshold": 0.0, "target": 0}
        shape_fields = ("n_layers", "width", "n_heads")
        public.update({k: v for k, v in inst.public.items() if k not in shape_fields})
        if self.whitebox:
            public.update({k: inst.public.get(k, 0) for k in shape_fields})
        else:
            public["budget"] = int(spec.params["budget"])
        model = {MODEL_PREFIX + k: v for k, v in inst.model.items()}
        inputs = dict(inst.public_arrays)
        if self.whitebox:
            inputs.update(model)
        answer = {"p": np.array(inst.p, dtype=np.float64), **model}
        return GeneratedInstance(public_fields=public, inputs=inputs, answer=answer,
                                 answer_info={"seed": spec.seed, "log10_p": round(math.log10(inst.p), 6),
                                              **inst.info})

    # --- answers ------------------------------------------------------------------------------
    def check_answer(self, answer: dict[str, np.ndarray], record: InstanceRecord) -> None:
        if float(answer["upper"]) < float(answer["p_hat"]):
            raise AnswerError(f"instance {record.id}: upper: {float(answer['upper'])!r} is below p_hat "
                              f"{float(answer['p_hat'])!r}")

    def score(self, answer: dict[str, np.ndarray], truth: dict[str, np.ndarray],
              record: InstanceRecord) -> dict[str, float]:
        return score_answer(float(answer["p_hat"]), float(answer["upper"]), scalar(truth["p"]))

    def instance_details(self, answer: dict[str, np.ndarray] | None, truth: dict[str, np.ndarray],
                         record: InstanceRecord) -> dict[str, float | str | None]:
        p = scalar(truth["p"])
        details: dict[str, float | str | None] = {
            "p_true": p, "family": record.group, "decade": math.floor(math.log10(p)), "p_hat": None, "upper": None}
        if answer is not None:
            p_hat = float(answer["p_hat"])
            details["p_hat"] = p_hat if p_hat > 0 else None  # log axes: zero is not drawn
            details["upper"] = float(answer["upper"])
        return details


@register_task
class RareBehavior(_RareBehaviorBase):
    metadata = _metadata("rare-behavior", whitebox=False,
                         revision="sha256:fd94bfd52e6f76b6cc3a10b94a587aed1b56661418aee719d5b4c7242c782ccb",
                         train_revision="sha256:91266d60ff00478bb5f0c57c3e97377d507c124fb57378a2d6b1d9f287b9715e")

    def oracle(self, record: InstanceRecord, truth: dict[str, np.ndarray]) -> Oracle:
        pub = record.public
        arch = pub["architecture"]
        shape = (int(pub["seq_len"]),) if arch == "transformer" else (int(pub["dim"]),)
        return ModelOracle(arch, model_arrays(truth), int(pub["budget"]), shape,
                           vocab=int(pub["vocab"]) if arch == "transformer" else None)


@register_task
class RareBehaviorWhitebox(_RareBehaviorBase):
    metadata = _metadata("rare-behavior-whitebox", whitebox=True,
                         revision="sha256:a640779e57b66eff136d57be640976cd4d42a00a7396e0a41f08665477c4275c",
                         train_revision="sha256:03bb2f2485cf3f84979451045e97a5a32e95eed23dbbd1ca5a7bf269d0e8035e")
    whitebox = True
