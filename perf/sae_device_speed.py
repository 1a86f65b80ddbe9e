"""Seconds per planted-features instance of the SAE baselines on CPU and on CUDA, same instances, same
process, and whether the recovered features agree across devices (recall@0.9 of each).

    python perf/sae_device_speed.py                          # topk-sae, 2 dev instances, cpu and cuda
    python perf/sae_device_speed.py --baselines topk-sae relu-sae --instances 3 --devices cpu

The instances are drawn with the task's own generator from the public dev key (the committed dev
split's first instances in drawn order), so no built split is needed: the script runs on a bare GPU
machine with the project's packages importable. The CPU figure uses the machine's cores as torch
chooses (the baselines cap themselves at 2 threads, as in the sandbox's one-per-worker share); issue
19's target is CUDA at least 5x faster per instance than the same method on the 2-core CPU. The first
CUDA instance carries the context start-up, so the table gives it apart from the mean of the rest.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmark.task import get_task  # noqa: E402
from evaluator.runner import instance_seed  # noqa: E402

ENTRY = {"topk-sae": "recover_features", "relu-sae": "recover_features"}


def load(name: str):
    folder = ROOT / "submissions" / name
    spec = importlib.util.spec_from_file_location(f"perf_{name.replace('-', '_')}", folder / "method.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return getattr(module, ENTRY[name])


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--baselines", nargs="+", default=["topk-sae"], choices=sorted(ENTRY))
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    args = ap.parse_args()
    task = get_task("planted-features")
    specs = sorted(task.instance_specs("dev"), key=lambda s: s.index)[:args.instances]
    made = [(spec, task.generate(spec)) for spec in specs]
    print(f"{len(made)} planted-features dev instances; torch {torch.__version__}; "
          f"{torch.get_num_threads()} CPU threads available"
          + (f"; {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
    print(f"{'baseline':<10} {'device':<6} {'first s':>8} {'rest mean s':>12} {'recall@0.9':>11}")
    for name in args.baselines:
        recover = load(name)
        per_device: dict[str, float] = {}
        for device in args.devices:
            times, recalls = [], []
            for spec, gen in made:
                problem = {**gen.public_fields, **gen.inputs, "instance_id": spec.id,
                           "seed": instance_seed(spec.id), "device": device}
                start = time.perf_counter()
                atoms = np.asarray(recover(problem))
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
                record = _record(spec, gen)
                answer = task.validate_answer({"atoms": atoms}, record)
                recalls.append(task.score(answer, gen.answer, record)["recall@0.9"])
            rest = float(np.mean(times[1:])) if len(times) > 1 else times[0]
            per_device[device] = rest
            print(f"{name:<10} {device:<6} {times[0]:>8.2f} {rest:>12.2f} {float(np.mean(recalls)):>11.3f}")
        if "cpu" in per_device and "cuda" in per_device:
            print(f"{name}: CUDA {per_device['cpu'] / per_device['cuda']:.2f}x the CPU per instance (target >= 5x)")
    return 0


def _record(spec, gen):
    """The scorer's view of an instance: its id, group and hidden scalars (as the split's index holds them)."""
    from benchmark.dataset import InstanceRecord
    return InstanceRecord(id=spec.id, group=spec.group, public=dict(gen.public_fields), hidden=dict(gen.hidden))


if __name__ == "__main__":
    sys.exit(main())
