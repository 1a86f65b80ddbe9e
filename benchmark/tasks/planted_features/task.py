"""Task planted-features: recover feature directions planted in superposition."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...dataset import InstanceRecord
from ...metadata import (
    AnswerField,
    DatasetRef,
    FieldSpec,
    Metric,
    PlotSpec,
    ResourceLimits,
    TaskMetadata,
)
from ...task import GeneratedInstance, InstanceSpec, Task, register_task
from .scorer import score_atoms

__all__ = ["METADATA", "PlantedFeatures"]

METADATA = TaskMetadata(
    name="planted-features",
    # 2: configurations drawn from the split's secret, opaque ids, tier kept private.
    # 3: noise in every tier (lone samples no longer read out features), T2's L0 capped at 0.3 d, T4 and T6
    # alternate their two kinds, the hierarchy's loose features counted in its L0.
    version=3,
    description=(
        "Recover the directions of n unit features planted in superposition in d < n dimensions "
        "from samples x = sum_i a_i f_i + noise with sparse non-negative coefficients. The method "
        "gets the samples and n, not the sparsity or the features, and returns at most n atoms."
    ),
    reference=[
        "Sharkey, Braun & Millidge 2022, Taking features out of superposition with sparse autoencoders",
        "Elhage et al. 2022, Toy Models of Superposition",
        "Gao et al. 2024, Scaling and evaluating sparse autoencoders (TopK SAE)",
        "Chanin et al. 2024, A is for Absorption",
    ],
    input_schema={
        "samples": FieldSpec(kind="array", dtype="float32", shape=["N", "d"], description="the observations",
                             public_because="the data the features are recovered from"),
        "n_features": FieldSpec(kind="int", description="n, the number of planted features",
                                public_because="the answer's size limit; drawn from one distribution for every tier"),
        "n_samples": FieldSpec(kind="int", description="N", public_because="the shape of samples; drawn from one "
                               "distribution for every tier"),
        "dim": FieldSpec(kind="int", description="d", public_because="the shape of samples; drawn from one "
                         "distribution for every tier"),
    },
    answer_schema={
        "atoms": AnswerField(kind="array", shape=["m<=n_features", "dim"],
                             description="recovered directions, at most n, any norm, any order"),
    },
    metrics=[
        Metric(name="recall@0.9", higher_is_better=True, best=1.0, worst=0.0,
               description="share of features whose Hungarian-matched atom has |cos| >= 0.9"),
        Metric(name="recall@0.99", higher_is_better=True, best=1.0, worst=0.0,
               description="share of features whose matched atom has |cos| >= 0.99"),
        Metric(name="matched_cos", higher_is_better=True, best=1.0, worst=0.0,
               description="matched |cos| summed over features, divided by n"),
        Metric(name="precision@0.9", higher_is_better=True, best=1.0, worst=0.0,
               description="share of returned atoms matched to a feature with |cos| >= 0.9"),
        Metric(name="mmcs", higher_is_better=True, best=1.0, worst=0.0,
               description="mean over features of the max |cos| to any atom (not one-to-one)"),
    ],
    headline="recall@0.9",
    groups=["T0", "T1", "T2", "T3", "T4", "T5", "T6"],
    group_label="tier (group)",
    group_public=False,
    group_because="the tier is the hidden difficulty (frequency law, density, correlation, noise, geometry): "
                  "a method told it could pick its algorithm per tier without inferring anything from the data",
    limits=ResourceLimits(wall_time_s=900, memory_mb=8192, output_mb=64),
    dataset=DatasetRef(
        repo_id="phasebench/phasebench-tasks",
        config="planted-features",
        revision="sha256:57f64ae14cd297f4b8f94bcd14e701bdc10fa9b7adc8300f016d39c3b2486658",
        train_revision="sha256:56707a5f2ee0497c250a1f7d10ebc0bb38e391c171ae5f6229e103c9be7aaa98",
    ),
    plots=[
        PlotSpec(name="recall-vs-superposition", title="Recall against superposition",
                 x="n_over_d", y="metric:recall@0.9", x_log=True,
                 x_label="features per dimension n/d", y_label="recall@0.9",
                 caption="More features per dimension means more interference between them."),
        PlotSpec(name="recall-vs-density", title="Recall against density",
                 x="l0", y="metric:recall@0.9",
                 x_label="mean active features per sample (L0)", y_label="recall@0.9",
                 caption="Denser codes are harder to unmix."),
    ],
)


#: The published distribution of a split (the card lists it): instances per tier, then each
#: instance's sizes and parameters drawn by :func:`draw_config`. Sizes come from one distribution for
#: every tier, so that n, d and N (the public fields) say nothing about the tier.
TIER_COUNTS = {
    # train: two of each tier (both kinds of T4 and T6), for choosing a method's hyperparameters; dev's sizes,
    # so that a sweep over it stays minutes on a CPU.
    "train": {tier: 2 for tier in ("T0", "T1", "T2", "T3", "T4", "T5", "T6")},
    "dev": {"T0": 1, "T1": 2, "T2": 1, "T3": 1, "T4": 2, "T5": 1, "T6": 2},
    "test": {tier: 6 for tier in ("T0", "T1", "T2", "T3", "T4", "T5", "T6")},
}
SIZES = {  # d from a set, n = d x (log-uniform ratio), N log-uniform
    "train": {"d": (32, 48, 64), "ratio": (3.0, 5.0), "n_samples": (15_000, 40_000)},
    "dev": {"d": (32, 48, 64), "ratio": (3.0, 5.0), "n_samples": (15_000, 40_000)},
    "test": {"d": (32, 48, 64), "ratio": (3.0, 5.0), "n_samples": (20_000, 80_000)},
}


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


#: Observation noise of every tier but T5 (whose noise, 0-20 dB, is its difficulty). Without it a sample
#: with one active feature (about L0 e^-L0 of them: 15% at L0 = 3) is that feature times a scalar, and
#: directions that two samples share give the features away with no learning (the floor
#: planted-floor-duplicates read off over half of the version-2 dev features so). At 25-30 dB a lone
#: sample with a large coefficient still points at its feature within a few degrees, so the tiers keep
#: their meaning, but two such samples differ by an angle of about sqrt(2) 10^(-SNR/20) / a (a <= 1
#: the coefficient; the mean squared norm L0/3 is >= 1): |cos| ~ 0.999 < 0.9999 even at a = 1, 30 dB.
BASE_SNR_DB = (25.0, 30.0)

#: T2's density as a share of d at most. Dense codes are hard, but past L0 ~ d/3 they are hopeless at
#: these sizes: even knowing the features, decoding a sample is beyond the l1 phase transition
#: (Donoho & Tanner 2005: rho = L0/d ~ 0.3-0.4 for d/n in [1/5, 1/3]), and the old draw's L0 up to 24
#: in d = 32 left every baseline at recall 0 (dictionary-learning measured 0.00 at L0 = 20.5, d = 32,
#: n = 158, against 0.13 at L0 = 9.6 and 0.29 at L0 = 8).
T2_MAX_L0_PER_DIM = 0.3


def draw_config(tier: str, sizes: dict[str, Any], rng: np.random.Generator, variant: int | None = None) -> dict[str, Any]:
    """One instance of a tier. Every tier's L0 is near 3-6 except T2's (dense, 8 to min(24, 0.3 d));
    every tier is noisy, T5 (0-20 dB) far more than the others (25-30 dB). T4 and T6 have two kinds
    each (copula or hierarchy codes; clustered features or a toy model): ``variant`` 0 or 1 names one,
    None tosses a coin."""
    config = _draw_structure(tier, sizes, rng, variant)
    if "snr_db" not in config:
        config["snr_db"] = round(float(rng.uniform(*BASE_SNR_DB)), 3)
    return config


def _draw_structure(tier: str, sizes: dict[str, Any], rng: np.random.Generator, variant: int | None) -> dict[str, Any]:
    first_kind = bool(rng.random() < 0.5) if variant is None else variant == 0
    d = int(rng.choice(sizes["d"]))
    n = round(d * _log_uniform(rng, *sizes["ratio"]))
    n_samples = int(round(_log_uniform(rng, *sizes["n_samples"]), -2))
    l0 = round(float(rng.uniform(3.0, 6.0)), 3)
    base = {"d": d, "n": n, "l0": l0, "law": "uniform", "structure": "independent", "n_samples": n_samples}
    if tier == "T0":  # Sharkey et al. 2022: firing probability 0.99^i
        return {**base, "law": "decay"}
    if tier == "T1":
        return base
    if tier == "T2":
        return {**base, "l0": round(float(rng.uniform(8.0, max(8.0, min(24.0, T2_MAX_L0_PER_DIM * d)))), 3)}
    if tier == "T3":
        return {**base, "law": "zipf", "exponent": round(float(rng.uniform(0.5, 1.5)), 3)}
    if tier == "T4":
        if first_kind:
            return {**base, "structure": "copula", "rank": int(rng.integers(2, 7)),
                    "rho": round(float(rng.uniform(0.3, 0.7)), 3)}
        n_children = int(rng.integers(3, 5))
        n_parents = n // (1 + n_children)
        p_child = round(float(rng.uniform(0.7, 0.95)), 3)
        n_loose = n - n_parents * (1 + n_children)  # they fire at the parents' rate too, so count them in L0
        p_parent = round(l0 / (n_parents * (1.0 + p_child) + n_loose), 6)
        return {**base, "structure": "hierarchy", "n_parents": n_parents, "n_children": n_children,
                "p_parent": p_parent, "p_child": p_child}
    if tier == "T5":
        return {**base, "snr_db": round(float(rng.uniform(0.0, 20.0)), 3)}
    if tier == "T6":
        if first_kind:
            lo = round(float(rng.uniform(0.4, 0.6)), 3)
            return {**base, "geometry": "clusters", "cluster_size": int(rng.integers(4, 11)),
                    "cluster_cos": [lo, round(lo + 0.2, 3)]}
        return {"d": d, "structure": "toy_model", "n_model": n, "density": round(l0 / n, 6),
                "train_steps": 3000, "n_samples": n_samples}
    raise ValueError(f"unknown tier {tier!r}")


def expected_l0(params: dict[str, Any]) -> float:
    """Mean number of features active in a sample under the generator's firing rule."""
    from .generator import firing_probabilities

    structure = params.get("structure", "independent")
    if structure == "toy_model":
        return params["density"] * params["n_model"]
    if structure == "hierarchy":  # a parent, and with probability p_child one of its children; loose features
        n_loose = params["n"] - params["n_parents"] * (1 + params["n_children"])
        return params["p_parent"] * (params["n_parents"] * (1.0 + params["p_child"]) + n_loose)
    return float(firing_probabilities(params["n"], params["l0"], params.get("law", "uniform"),
                                      params.get("exponent", 1.0)).sum())


@register_task
class PlantedFeatures(Task):
    metadata = METADATA
    splits = ("train", "dev", "test")

    def draw_configs(self, split: str, rng: np.random.Generator) -> list[tuple[str, dict[str, Any]]]:
        # A tier of two kinds alternates them from a random first one, so that a split with two or more
        # of its instances holds both (the dev split's two T6 instances once were both toy models,
        # and a later draw had none).
        configs = []
        for tier, count in TIER_COUNTS[split].items():
            first = int(rng.integers(2))
            configs += [(tier, draw_config(tier, SIZES[split], rng, (first + k) % 2)) for k in range(count)]
        return configs

    def generate(self, spec: InstanceSpec) -> GeneratedInstance:
        from .generator import plant  # at use: listing the tasks need not import the generators

        planted = plant(spec.params, spec.seed)
        n, d = planted.features.shape
        return GeneratedInstance(
            public_fields={"n_features": n, "n_samples": int(planted.samples.shape[0]), "dim": d},
            inputs={"samples": planted.samples},
            answer={"features": planted.features, "signed": np.array(planted.signed)},
            answer_info={"seed": spec.seed},
            hidden={"l0": round(expected_l0(spec.params), 6),
                    "structure": str(spec.params.get("structure", "independent"))},
        )

    def score(self, answer: dict[str, np.ndarray], truth: dict[str, np.ndarray], record: InstanceRecord) -> dict[str, float]:
        return score_atoms(truth["features"], answer["atoms"], signed=bool(truth["signed"]))

    def instance_details(self, answer: dict[str, np.ndarray] | None, truth: dict[str, np.ndarray],
                         record: InstanceRecord) -> dict[str, float | None]:
        """n/d from the public fields; the density from the private index (it is not public: methods
        must not be told it), None for a record without one."""
        n, d = record.public["n_features"], record.public["dim"]
        l0 = record.hidden.get("l0")
        return {"n_over_d": n / d, "l0": None if l0 is None else float(l0)}
