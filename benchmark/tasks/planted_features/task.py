"""Task planted-features: recover feature directions planted in superposition."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...dataset import InstanceRecord
from ...metadata import DatasetRef, FieldSpec, Metric, PlotSpec, ResourceLimits, TaskMetadata
from ...task import AnswerError, GeneratedInstance, InstanceSpec, Task, register_task
from .generator import firing_probabilities, plant
from .scorer import score_atoms

__all__ = ["PlantedFeatures", "METADATA"]

METADATA = TaskMetadata(
    name="planted-features",
    version=1,
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
        "samples": FieldSpec(kind="array", dtype="float32", shape=["N", "d"], description="the observations"),
        "n_features": FieldSpec(kind="int", description="n, the number of planted features"),
        "n_samples": FieldSpec(kind="int", description="N"),
        "dim": FieldSpec(kind="int", description="d"),
    },
    answer_schema={
        "atoms": FieldSpec(kind="array", dtype="float", shape=["m<=n", "d"],
                           description="recovered directions, any norm, any order"),
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
    limits=ResourceLimits(wall_time_s=900, memory_mb=8192, output_mb=64),
    dataset=DatasetRef(
        repo_id="phasebench/phasebench-tasks",
        config="planted-features",
        revision="sha256:3a14e8fe2608e638502e848477205e5b866e0a7d95fcd491d0cdd0676448f132",
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


def _base(**kw: Any) -> dict[str, Any]:
    return {"d": 64, "n": 256, "l0": 4.0, "law": "uniform", "structure": "independent", **kw}


def _hierarchy(n_samples: int) -> dict[str, Any]:
    # 40 parents with 4 children each; p_parent gives a mean L0 near 4.
    return _base(n=200, structure="hierarchy", n_parents=40, n_children=4, p_parent=0.055, p_child=0.9,
                 n_samples=n_samples)


def _toy_model(n_samples: int) -> dict[str, Any]:
    return {"d": 16, "structure": "toy_model", "n_model": 64, "density": 0.04, "train_steps": 3000,
            "n_samples": n_samples}


def expected_l0(params: dict[str, Any]) -> float:
    """Mean number of features active in a sample under the generator's firing rule."""
    structure = params.get("structure", "independent")
    if structure == "toy_model":
        return params["density"] * params["n_model"]
    if structure == "hierarchy":  # a parent, and with probability p_child one of its children
        return params["n_parents"] * params["p_parent"] * (1.0 + params["p_child"])
    return float(firing_probabilities(params["n"], params["l0"], params.get("law", "uniform"),
                                      params.get("exponent", 1.0)).sum())


def _n_for_rarest(n: int, l0: float, law: str, exponent: float, occurrences: int, cap: int = 1_000_000) -> int:
    """Sample size at which the rarest feature fires about ``occurrences`` times."""
    p_min = firing_probabilities(n, l0, law, exponent).min()
    return int(min(cap, max(5_000, math.ceil(occurrences / p_min))))


def _dev_configs() -> list[tuple[str, dict[str, Any]]]:
    # Small enough that every baseline runs the whole split in a few minutes on 2 cores.
    return [
        ("T1", _base(n_samples=20_000)),
        ("T2", _base(l0=12.0, n_samples=20_000)),
        ("T3", _base(law="zipf", exponent=1.0, n_samples=_n_for_rarest(256, 4.0, "zipf", 1.0, 30))),
        ("T4", _base(structure="copula", rank=4, rho=0.5, n_samples=20_000)),
        ("T4", _hierarchy(20_000)),
        ("T5", _base(snr_db=10.0, n_samples=20_000)),
        ("T6", _base(geometry="clusters", cluster_size=8, cluster_cos=[0.5, 0.7], n_samples=20_000)),
        ("T6", _toy_model(20_000)),
    ]


def _test_configs() -> list[tuple[str, dict[str, Any]]]:
    cfgs: list[tuple[str, dict[str, Any]]] = []
    seeds = 2
    for _ in range(seeds):
        cfgs.append(("T0", {"d": 256, "n": 512, "l0": 5.0, "law": "decay", "structure": "independent",
                            "n_samples": 200_000}))
        cfgs += [("T1", _base(n=n, n_samples=max(50_000, 50 * n))) for n in (256, 512, 1024, 2048)]
        cfgs += [("T2", _base(l0=l0, n_samples=50_000)) for l0 in (4.0, 8.0, 12.0, 16.0, 24.0)]
        cfgs += [("T4", _base(structure="copula", rank=4, rho=0.5, n_samples=50_000)), ("T4", _hierarchy(50_000))]
        cfgs += [("T5", _base(snr_db=snr, n_samples=50_000)) for snr in (None, 20.0, 10.0, 0.0)]
        cfgs += [("T6", _base(geometry="clusters", cluster_size=8, cluster_cos=[0.5, 0.7], n_samples=50_000)),
                 ("T6", _toy_model(50_000))]
    for exponent in (0.5, 1.0, 1.5):
        for occ in (10, 100, 1000):
            cfgs.append(("T3", _base(law="zipf", exponent=exponent,
                                     n_samples=_n_for_rarest(256, 4.0, "zipf", exponent, occ))))
    return cfgs


@register_task
class PlantedFeatures(Task):
    metadata = METADATA
    dev_seed = 20240601

    def instance_specs(self, split: str, base_seed: int) -> list[InstanceSpec]:
        configs = _dev_configs() if split == "dev" else _test_configs()
        specs = []
        for i, (tier, params) in enumerate(configs):
            seed = int(np.random.SeedSequence([base_seed, i]).generate_state(1)[0])
            specs.append(InstanceSpec(id=f"{split}-{i:03d}-{tier}", group=tier, params=params, seed=seed))
        return specs

    def generate(self, spec: InstanceSpec) -> GeneratedInstance:
        planted = plant(spec.params, spec.seed)
        n, d = planted.features.shape
        return GeneratedInstance(
            public_fields={"n_features": n, "n_samples": int(planted.samples.shape[0]), "dim": d},
            inputs={"samples": planted.samples},
            answer={"features": planted.features, "signed": np.array(planted.signed)},
            answer_info={"seed": spec.seed},
        )

    def validate_answer(self, answer: dict[str, np.ndarray], record: InstanceRecord) -> dict[str, np.ndarray]:
        if set(answer) != {"atoms"}:
            raise AnswerError(f"expected exactly the field 'atoms', got {sorted(answer)}")
        atoms = answer["atoms"]
        n, d = record.public["n_features"], record.public["dim"]
        if atoms.dtype.kind not in "biuf":
            raise AnswerError(f"atoms: expected a real array, got dtype {atoms.dtype}")
        if atoms.ndim != 2 or atoms.shape[1] != d:
            raise AnswerError(f"atoms: expected shape (m, {d}), got {atoms.shape}")
        if atoms.shape[0] > n:
            raise AnswerError(f"atoms: at most n={n} atoms allowed, got {atoms.shape[0]}")
        if not np.all(np.isfinite(atoms)):
            raise AnswerError("atoms: contains NaN or inf")
        return {"atoms": atoms.astype(np.float64)}

    def score(self, answer: dict[str, np.ndarray], truth: dict[str, np.ndarray], record: InstanceRecord) -> dict[str, float]:
        return score_atoms(truth["features"], answer["atoms"], signed=bool(truth["signed"]))

    def instance_details(self, answer: dict[str, np.ndarray] | None, truth: dict[str, np.ndarray],
                         record: InstanceRecord) -> dict[str, float | None]:
        n, d = record.public["n_features"], record.public["dim"]
        params = _params_of(record)
        return {"n_over_d": n / d, "l0": None if params is None else round(expected_l0(params), 6)}


def _params_of(record: InstanceRecord) -> dict[str, Any] | None:
    """The generation parameters of a split instance, found from its id ("<split>-<index>-<tier>").

    The sparsity is not public (methods must not be told it), and the configurations are fixed
    per split (only the seeds are secret), so the id is enough. None for an id of another form.
    """
    parts = record.id.split("-")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    split, index, tier = parts[0], int(parts[1]), parts[2]
    configs = _dev_configs() if split == "dev" else _test_configs() if split == "test" else []
    if index >= len(configs) or configs[index][0] != tier:
        return None
    return configs[index][1]
