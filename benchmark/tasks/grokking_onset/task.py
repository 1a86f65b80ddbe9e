"""Tasks grokking-onset and grokking-onset-with-test: predict from the start of training when a run groks."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...answers import scalar
from ...dataset import InstanceRecord, SplitWriter
from ...metadata import (AnswerField, Breakdown, DatasetRef, FieldKind, FieldSpec, Metric, PlotSpec, ResourceLimits,
                         TaskMetadata, WallTimeBy)
from ...task import GeneratedInstance, InstanceSpec, Task, register_task
from ...split_secret import SplitSecret
from .answer import onset
from .design import DESIGNS, SCALES
from .scorer import clipped, log_step_error, never_score

if TYPE_CHECKING:
    from .generator import RunSeeds, TrainedRun

# The generator (and the trainer under it) is imported where a split is drawn or trained, never at
# import: it imports torch, and listing the tasks (the leaderboard, `phasebench tasks`) must not.

__all__ = ["GrokkingOnset", "GrokkingOnsetWithTest", "metadata_for", "GROUPS"]

GROUPS = ["add", "sub", "mul", "sq", "held-out-p"]
#: The base seed of the committed version-2 dev split's old derivation (see ``run_seeds``).
LEGACY_DEV_SEED = 20240805
_LOG10_T = math.log10(max(d.max_budget for d in DESIGNS.values()))


_CONFIG_IS_PUBLIC = ("the run's configuration: what a practitioner knows before training (each value is a draw of "
                     "this task's own stream, shared with no other task)")
_PREFIX_IS_PUBLIC = "the start of training, up to t_obs, that the prediction is made from"


def _scalar(kind: FieldKind, desc: str, why: str = _CONFIG_IS_PUBLIC) -> FieldSpec:
    return FieldSpec(kind=kind, description=desc, public_because=why)


def _curve(desc: str, dtype: str = "float32") -> FieldSpec:
    return FieldSpec(kind="array", dtype=dtype, shape=["n_logged"], description=desc + " at each logged step <= t_obs",
                     public_because=_PREFIX_IS_PUBLIC)


def _input_schema(with_test: bool) -> dict[str, FieldSpec]:
    schema = {
        "architecture": _scalar("str", "mlp (logits = W act(U[a] + V[b])) or transformer (one layer, Nanda et al. "
                                       "2023: tokens a b =, d_model 128, 4 heads, d_mlp 512, no LayerNorm)"),
        "op": _scalar("str", "the operation mod p: add (a+b), sub (a-b), mul (a*b) or sq (a^2+b^2)"),
        "p": _scalar("int", "the modulus; the table has p^2 pairs"),
        "width": _scalar("int", "width of the embeddings (columns of ckpt_U): the MLP's hidden width, the "
                                "transformer's d_model"),
        "act": _scalar("str", "hidden activation: relu or quad (x^2) for the MLP; relu for the transformer's MLP"),
        "n_heads": _scalar("int", "attention heads (transformer; 0 for the MLP)"),
        "d_mlp": _scalar("int", "hidden width of the transformer's MLP block (0 for the MLP)"),
        "lr": _scalar("float", "AdamW learning rate (betas 0.9, 0.98; 10 warmup steps; full batch)"),
        "wd": _scalar("float", "AdamW weight decay (decoupled)"),
        "train_frac": _scalar("float", "share of the p^2 pairs in the training set"),
        "init_scale": _scalar("float", "initialisation scale alpha: MLP U, V ~ N(0, alpha^2/2), W ~ N(0, alpha^2/width); "
                                       "transformer: alpha times Nanda et al.'s N(0, 1/d_model), W_U N(0, 1/p)"),
        "dtype": _scalar("str", "training precision: float32 or float64"),
        "budget": _scalar("int", "T, the training budget in steps (each architecture has its own): a prediction "
                                 ">= T means never"),
        "t_obs": _scalar("int", "the last step observed (min(max(3 t_mem, 0.004 T), T/4) on the logged grid)",
                         "where the observed prefix ends: set by memorisation, which the prefix shows anyway"),
        "n_train": _scalar("int", "number of training pairs"),
        "n_logged": _scalar("int", "number of logged steps <= t_obs", "the length of the curves"),
        "n_ckpt": _scalar("int", "number of embedding checkpoints given (the last ones <= t_obs)",
                          "the number of checkpoints given"),
        "steps": _curve("the logged steps (log-spaced grid)", "int64"),
        "train_loss": _curve("full-batch training cross-entropy"),
        "train_acc": _curve("training accuracy"),
        "norm_embed": _curve("Frobenius norm of the input embeddings (MLP: U and V; transformer: W_E and W_pos)"),
        "norm_hidden": _curve("Frobenius norm of the layers between embeddings and output (MLP: 0, it has none; "
                              "transformer: attention W_Q, W_K, W_V, W_O and MLP W_in, b_in, W_out, b_out)"),
        "norm_unembed": _curve("Frobenius norm of the output layer (MLP: W; transformer: W_U); the squares of the "
                               "three norms sum to the squared norm of all parameters"),
        "grad_norm": _curve("norm of the full-batch training-loss gradient"),
        "ckpt_steps": FieldSpec(kind="array", dtype="int64", shape=["n_ckpt"], description="checkpoint steps",
                                public_because=_PREFIX_IS_PUBLIC),
        "ckpt_U": FieldSpec(kind="array", dtype="float16", shape=["n_ckpt", "p", "width"],
                            description="the input of a (rows: a = 0..p-1) at each checkpoint: MLP embedding U; "
                                        "transformer residual stream W_E[a] + W_pos[0]",
                            public_because=_PREFIX_IS_PUBLIC),
        "ckpt_V": FieldSpec(kind="array", dtype="float16", shape=["n_ckpt", "p", "width"],
                            description="the input of b (rows: b = 0..p-1) at each checkpoint: MLP embedding V; "
                                        "transformer residual stream W_E[b] + W_pos[1]",
                            public_because=_PREFIX_IS_PUBLIC),
    }
    if with_test:
        schema["test_loss"] = _curve("cross-entropy on the held-out pairs")
        schema["test_acc"] = _curve("accuracy on the held-out pairs")
    return schema


#: What training one run to its budget costs, in CPU seconds on one thread of the reference machine
#: (perf/grokking_run_cost.py: the task's own eager trainer, one run alone), for the cheapest and the
#: dearest shape of each architecture in the embedded designs. The public configuration is enough to
#: train the run again (with another seed), so a method given that much time could re-simulate the
#: run instead of predicting it (submissions/grok-floor-resimulate). Each architecture's limit is
#: RESIMULATION_SHARE of its cheapest run's cost, so no instance's limit exceeds a tenth of its own.
TRAINING_COST_S = {"mlp": (26.1, 135.4), "transformer": (49.2, 61.7)}
RESIMULATION_SHARE = 0.1
LIMITS = ResourceLimits(
    wall_time_s=2.5, memory_mb=4096, output_mb=1,   # wall_time_s: an architecture not listed (none is)
    wall_time_by=WallTimeBy(field="architecture", seconds={"mlp": 2.5, "transformer": 4.5}))


def metadata_for(with_test: bool, revision: str) -> TaskMetadata:
    name = "grokking-onset-with-test" if with_test else "grokking-onset"
    track = ("with the test loss and accuracy curves as well (the optimistic track)" if with_test else
             "from train-side signals only (the realistic track: no held-out data)")
    return TaskMetadata(
        name=name,
        # 3: the test split's runs drawn from the operator's 128+-bit key, opaque test ids; 4: the wall-time
        # limit per architecture, a tenth of what training the cheapest run of it costs (was 120 s for all)
        version=4,
        description=(
            "Predict when a small network trained on modular arithmetic will grok (test accuracy >= 0.9 "
            "for good, after memorising) from its configuration and the start of its training, " + track +
            ". Runs are two-layer MLPs on learned embeddings and, for a subset, one-layer transformers "
            "(Nanda et al. 2023), trained full batch with AdamW; a run that does not grok within its "
            "budget T is censored at T, and 'never' is any prediction >= T."),
        reference=[
            "Power, Burda, Edwards, Babuschkin & Misra 2022, Grokking: Generalization Beyond Overfitting on Small "
            "Algorithmic Datasets",
            "Liu, Michaud & Tegmark 2023, Omnigrok: Grokking Beyond Algorithmic Data",
            "Nanda, Chan, Lieberum, Smith & Steinhardt 2023, Progress measures for grokking via mechanistic "
            "interpretability",
            "Notsawo, Zhou, Ahmad, Rish & Dumas 2023, Predicting Grokking Long Before it Happens",
            "Varma, Shah, Kenton, Kramar & Kumar 2023, Explaining grokking through circuit efficiency",
            "Prieto, Barsbey, Mediano & Birdal 2025, Grokking at the Edge of Numerical Stability",
        ],
        input_schema=_input_schema(with_test),
        answer_schema={"t_grok": AnswerField(kind="scalar", gt=0.0, finite=False,
                                             description="predicted grok step, > 0; any value >= T (inf included) "
                                                         "means never within the budget")},
        metrics=[
            Metric(name="log_step_error", higher_is_better=False, best=0.0, worst=_LOG10_T,
                   description="|log10 y_hat - log10 y| with both clipped to [1, T] (y = T for a run that never "
                               "groks, which costs max(0, log10 T - log10 y_hat)); a failed instance costs log10 T"),
            Metric(name="auroc_never", higher_is_better=True, best=1.0, worst=0.0, aggregation="auroc",
                   label="censored",
                   description="AUROC of the prediction on the budget's log scale, log10 y_hat / log10 T (y_hat "
                               "clipped to [1, T]: 1 is 'never' whatever the run's budget), for separating runs "
                               "that never grok within T from those that do (0 for a failed instance)"),
        ],
        headline="log_step_error",
        groups=GROUPS,
        group_public=True,
        group_because="the operation, or held-out-p for a modulus the dev split never shows: both public fields",
        limits=LIMITS,
        dataset=DatasetRef(repo_id="phasebench/phasebench-tasks", config=name, revision=revision),
        plots=[
            PlotSpec(name="predicted-vs-true-step", title="Predicted against true grok step",
                     x="true_step", y="predicted_step", x_log=True, y_log=True, diagonal=True,
                     x_label="true grok step (T when the run never groks)", y_label="predicted step (clipped to T)",
                     caption="One point per run; runs that never grok sit at x = T (their architecture's budget), "
                             "and predicting 'never' puts them on the diagonal's top-right end."),
        ],
        breakdowns=[
            Breakdown(name="architecture", key="architecture", title="By architecture",
                      caption="MLP runs and one-layer transformer runs (each on its own budget T)."),
        ],
    )


class _GrokkingOnsetBase(Task):
    build_scales = tuple(SCALES)
    build_devices = ("cpu", "cuda")
    with_test: bool = False
    # 1.24 M model-steps to rebuild (about an hour on a shared 2-core machine): the dev files are
    # committed, and tests/benchmark/tasks/grokking_onset/test_committed_data.py retrains a prefix
    dev_split_committed = True

    # --- data ---------------------------------------------------------------------------
    def run_seeds(self, split: str, secret: SplitSecret | None = None) -> RunSeeds:
        """The committed dev split keeps the old derivation it was trained with (an hour to retrain;
        its draws are public anyway); every other split's runs come from its key."""
        from .generator import KeyedRunSeeds

        if split == "dev":
            return LEGACY_DEV_SEED
        return KeyedRunSeeds(self.secret_for(split, secret), split)

    def instance_id(self, split: str, index: int, op: str, secret: SplitSecret | None = None) -> str:
        if split == "dev":
            return f"{split}-{index:03d}-{op}"  # the committed files' names (no hidden parameter is in them)
        return self.secret_for(split, secret).token(self.name, split, "id", index)

    def instance_specs(self, split: str, secret: SplitSecret | None = None) -> list[InstanceSpec]:
        """One spec per run drawn, sorted by id; the split keeps the runs that do not grok inside their prefix."""
        from .generator import config_params, run_configs

        specs = [InstanceSpec(id=self.instance_id(split, i, c.op, secret), group=_group(split, c.p, c.op),
                              params=config_params(c), seed=c.seed, split=split, index=i)
                 for i, c in enumerate(run_configs(split, self.run_seeds(split, secret)))]
        return sorted(specs, key=lambda s: s.id)

    def generate(self, spec: InstanceSpec) -> GeneratedInstance:
        """One run trained alone (a batch of one): equal to the batched build to float tolerance,
        not bytes. Raises ValueError for a run that groks inside its prefix (not an instance)."""
        from .generator import TrainedRun, config_from_params, schedule_of, train_chunk

        design = DESIGNS[spec.split]
        cfg = config_from_params(spec.params, spec.seed)
        schedule = schedule_of(design, cfg)
        curves = train_chunk([cfg], schedule)[0]
        o = onset(curves.steps, curves.metrics["train_acc"], curves.metrics["test_acc"], schedule.budget)
        run = TrainedRun(spec.index, cfg, curves, o, spec.group == "held-out-p")
        if o.in_prefix:
            raise ValueError(f"{spec.id}: groks at step {o.t_grok}, inside its observed prefix (t_obs {o.t_obs})")
        return self._instance(run)

    def _instance(self, run: TrainedRun) -> GeneratedInstance:
        from .generator import observed

        public, arrays = observed(run, self.with_test)
        o = run.onset
        answer = {"t_grok": np.array(float(o.target)), "censored": np.array(int(o.censored)),
                  "t_mem": np.array(-1 if o.t_mem is None else o.t_mem)}
        full = {k: [float(f"{x:.6g}") for x in run.curves.metrics[k]] for k in ("train_acc", "test_acc")}
        return GeneratedInstance(public_fields=public, inputs=arrays, answer=answer,
                                 answer_info={"seed": run.config.seed, "t_grok": o.t_grok, "t_mem": o.t_mem,
                                              "steps": run.curves.steps.tolist(), **full})

    def build(self, split: str, secret: SplitSecret | None, data_dir: Path, answers_dir: Path, progress: Any = None,
              *, device: str = "cpu", scale: str = "embedded", workers: int = 1) -> str:
        """Train the split's runs in batches (memoised across the two tracks) and write the kept ones.
        ``workers`` is not used: the runs train as one vectorised batch in this process.

        Beyond the embedded scale (the GPU-sized set) the train-only track also writes each kept run
        whole, every logged step and checkpoint, as ``runs/<id>.safetensors`` beside the answers (the
        hub layout: public for dev, private for test). The embedded set leaves them out: it is
        committed to the repository, and the answers already hold its full accuracy curves."""
        from .generator import config_params, run_arrays, trained_split

        self.check_build_options(device, scale)
        runs = [r for r in trained_split(split, self.run_seeds(split, secret), device, scale) if not r.onset.in_prefix]
        writer = SplitWriter(data_dir, self.name, split, answers_dir)
        for run in (progress(runs) if progress else runs):
            inst = self._instance(run)
            instance_id = self.instance_id(split, run.index, run.config.op, secret)
            writer.add(instance_id, run.group, inst.public_fields, inst.inputs,
                       inst.answer, {"params": config_params(run.config), **inst.answer_info})
            if scale != "embedded" and not self.with_test:
                writer.add_hidden(f"runs/{instance_id}.safetensors", run_arrays(run),
                                  {"params": config_params(run.config), "seed": run.config.seed})
        return writer.close()

    # --- answers ------------------------------------------------------------------------
    def score(self, answer: dict[str, np.ndarray], truth: dict[str, np.ndarray],
              record: InstanceRecord) -> dict[str, float]:
        budget = int(record.public["budget"])
        predicted = scalar(answer["t_grok"])
        return {"log_step_error": log_step_error(predicted, _truth_step(truth), budget),
                "auroc_never": never_score(predicted, budget)}

    def failure_metrics(self, record: InstanceRecord) -> dict[str, float]:
        """A failed instance counts as predicting step 1: the largest error any answer can have
        (the truth is >= t_obs >= 1, and <= T), and the lowest 'never' score."""
        return {"log_step_error": math.log10(int(record.public["budget"])), "auroc_never": 0.0}

    def instance_details(self, answer: dict[str, np.ndarray] | None, truth: dict[str, np.ndarray],
                         record: InstanceRecord) -> dict[str, Any]:
        budget = int(record.public["budget"])
        predicted = None if answer is None else clipped(scalar(answer["t_grok"]), budget)
        return {"true_step": _truth_step(truth), "predicted_step": predicted,
                "censored": int(scalar(truth["censored"])), "T": budget,
                # records of version 1 have no architecture field: every run of it was an MLP
                "architecture": str(record.public.get("architecture", "mlp"))}


def _truth_step(truth: dict[str, np.ndarray]) -> float:
    return scalar(truth["t_grok"])


def _group(split: str, p: int, op: str) -> str:
    return "held-out-p" if p in DESIGNS[split].held_out_moduli else op


@register_task
class GrokkingOnset(_GrokkingOnsetBase):
    with_test = False
    metadata = metadata_for(False, "sha256:23a0c8759e52132c070d56db4035077ba240c33b47c7e58f38640d2d3a2d8912")


@register_task
class GrokkingOnsetWithTest(_GrokkingOnsetBase):
    with_test = True
    metadata = metadata_for(True, "sha256:28b7a7c6d5d9e2644ebd6dd316191e4460a054a30233218f1f1b5591d50277c0")
