"""Write the dev table the regressor is fitted on: python submissions/grok-config-gbr/fit.py"""
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from config_features import COLUMNS, features  # noqa: E402
from grok_common import dev_problems  # noqa: E402


def table() -> str:
    problems, truth = dev_problems()
    rows = [",".join(COLUMNS + ["log10_step"])]
    rows += [",".join(f"{v:.6g}" for v in [*features(p), np.log10(y)]) for p, y in zip(problems, truth)]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    (HERE / "dev_table.csv").write_text(table())
    print(f"wrote {HERE / 'dev_table.csv'}")
