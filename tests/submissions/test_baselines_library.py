"""The baselines' shared library (evaluator/baselines_library, import name phasebench_baselines):
one installed copy that every sandbox provides, instead of a copy in each submission folder.
Importable inside the sandbox, free of the answers, pinned in every evaluation's provenance, and part
of the key under which a stored result is reused."""
import ast
import hashlib
import importlib
import shutil
import sys
from collections import defaultdict

import numpy as np
import pytest

from benchmark.task import get_task
from evaluator import provenance
from evaluator.provenance import BASELINES_SHA256, StaleLibraryError, baselines_library_sha256
from evaluator.runner import evaluate_submission
from evaluator.sandbox import NoSandbox, get_sandbox
from evaluator.submission import _IGNORED_PARTS, code_sha256, load_submission
from tests.builders import REPO, requires_bwrap, write_submission

SUBS = REPO / "submissions"
SOURCE = REPO / "evaluator" / "baselines_library" / "phasebench_baselines"
TASK = get_task("planted-features")

# A method that needs the library: its answer's rows come from the library's code.
USES_LIBRARY = """
import numpy as np
from phasebench_baselines.rare import posterior_median

def run(problem):
    rng = np.random.default_rng(problem["seed"])
    scale = posterior_median(0, 1000) * 0 + 1.0   # the library's code runs, and changes nothing
    return scale * rng.standard_normal((problem["n_features"], problem["dim"]))
"""


@requires_bwrap
def test_a_submission_imports_the_library_inside_bwrap_and_its_hash_is_stored(tmp_path, tiny_split, sqlite_store):
    sub = load_submission(write_submission(tmp_path, name="uses-library", code=USES_LIBRARY))
    assert {p.name for p in sub.folder.iterdir()} == {"submission.yaml", "method.py"}  # nothing copied in
    out = evaluate_submission(sub, TASK, tiny_split, get_sandbox("bwrap"), sqlite_store)
    assert out.status == "complete" and out.n_failed == 0, sqlite_store.evaluation(out.evaluation_id, True)
    versions = sqlite_store.evaluation(out.evaluation_id).library_versions
    assert versions["phasebench-baselines"] != "absent"
    assert versions[BASELINES_SHA256] == code_sha256(SOURCE) == baselines_library_sha256()


def _library_copy(root, monkeypatch):
    """An installed copy and its source under root, found by the evaluator instead of the real ones."""
    installed, source = root / "site" / "phasebench_baselines", root / "src" / "phasebench_baselines"
    for folder in (installed, source):
        shutil.copytree(SOURCE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.syspath_prepend(str(root / "site"))
    monkeypatch.delitem(sys.modules, "phasebench_baselines", raising=False)  # find_spec looks there first
    importlib.invalidate_caches()
    monkeypatch.setattr(provenance, "_BASELINES_SOURCE", source)
    return installed, source


def test_a_changed_library_is_evaluated_again_not_reused(tmp_path, tiny_split, sqlite_store, monkeypatch):
    installed, source = _library_copy(tmp_path / "lib", monkeypatch)
    sub = load_submission(write_submission(tmp_path))
    first = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    assert evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store).reused
    for folder in (installed, source):  # the library edited and installed again; the submission unchanged
        (folder / "rare.py").write_text((folder / "rare.py").read_text() + "\n# edited\n")
    second = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    assert not second.reused and second.evaluation_id != first.evaluation_id
    hashes = [sqlite_store.evaluation(o.evaluation_id).library_versions[BASELINES_SHA256] for o in (first, second)]
    assert hashes == [code_sha256(SOURCE), code_sha256(installed)] and hashes[0] != hashes[1]
    # and the result computed with the edited library is the one reused from now on
    third = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    assert third.reused and third.evaluation_id == second.evaluation_id


def test_a_library_edited_but_not_installed_is_refused(tmp_path, tiny_split, sqlite_store, monkeypatch):
    _, source = _library_copy(tmp_path / "lib", monkeypatch)
    (source / "grok.py").write_text((source / "grok.py").read_text() + "\n# edited, not installed\n")
    with pytest.raises(StaleLibraryError, match="make install"):
        evaluate_submission(load_submission(write_submission(tmp_path)), TASK, tiny_split, NoSandbox(), sqlite_store)


def test_the_installed_library_is_the_source():
    """`make install` copied the current source (the sandbox imports the copy, never the checkout)."""
    spec = importlib.util.find_spec("phasebench_baselines")
    assert spec is not None and spec.origin is not None, "phasebench-baselines is not installed: run make install"
    assert SOURCE not in [p.resolve() for p in map(type(SOURCE), spec.submodule_search_locations or [])], \
        "installed editable: the sandbox cannot import the repository"
    assert baselines_library_sha256() == code_sha256(SOURCE)


def test_the_library_never_imports_the_benchmark_or_the_evaluator():
    """They hold the answers (and the evaluator is not in the sandbox): numpy and scipy only, and
    what every sandbox provides besides (torch for sae, threadpoolctl with scikit-learn)."""
    allowed = {"__future__", "math", "sys", "json", "collections", "contextlib", "dataclasses", "typing",
               "pathlib", "importlib", "numpy", "scipy", "torch", "threadpoolctl"}
    for path in sorted(SOURCE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.relative_to(REPO)} imports {name}"


def test_no_two_submission_folders_hold_the_same_file():
    """Shared code lives in the library, not in copies (which drift, and whose edit re-runs every
    baseline that holds one)."""
    where = defaultdict(list)
    for path in sorted(SUBS.glob("*/**/*")):
        rel = path.relative_to(SUBS)
        if path.is_file() and not _IGNORED_PARTS.intersection(rel.parts) and path.suffix != ".pyc":
            where[hashlib.sha256(path.read_bytes()).hexdigest()].append(rel)
    copies = [sorted(str(p) for p in paths) for paths in where.values() if len({p.parts[0] for p in paths}) > 1]
    assert not copies, f"the same file in several submission folders (move it to phasebench_baselines): {copies}"


def test_the_libraries_white_box_forward_pass_is_the_benchmarks_reference_bit_for_bit():
    """phasebench_baselines.rare holds a copy of the forward passes of benchmark/tasks/rare_behavior/
    models.py, on purpose: the sandbox cannot import the benchmark (it holds the generators and the
    answers), and the benchmark's truth must not depend on a library the baselines' maintainers edit.
    The copy must not drift: on the weights as the dataset stores them (float32, int64 shapes), the
    white-box Model's outputs equal the reference forward's exactly."""
    from benchmark.tasks.rare_behavior.models import forward, transformer_arrays
    from phasebench_baselines.rare import TRANSFORMER_BLOCK, Model

    rng = np.random.default_rng(0)
    dims = (6, 32, 32, 3)
    mlp = {}
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        mlp[f"w{i}"] = rng.standard_normal((fan_out, fan_in)).astype(np.float32)
        mlp[f"b{i}"] = rng.standard_normal(fan_out).astype(np.float32)
    x = rng.uniform(-1, 1, (500, dims[0]))
    tf = transformer_arrays(rng, vocab=7, length=5, width=16, n_layers=2, n_heads=2)
    tokens = rng.integers(0, 7, (2 * TRANSFORMER_BLOCK + 37, 5))  # whole blocks of sequences and a partial one
    for architecture, family, arrays, inputs in (("mlp", "F1", mlp, x), ("transformer", "F3", tf, tokens)):
        problem = {"architecture": architecture, "family": family, **{f"model.{k}": v for k, v in arrays.items()}}
        got = Model(problem).outputs(inputs)
        assert np.array_equal(got, forward(architecture, arrays, inputs)), architecture


def test_the_libraries_buffered_draws_and_blocked_squares_are_the_plain_ones_bit_for_bit():
    """Inputs.sample(out=...) draws what Inputs.sample draws (and leaves the generator where it would),
    and row_sum_of_squares is np.sum(d * d, axis=1) exactly, over several blocks and a partial one."""
    from phasebench_baselines.rare import SQUARES_BLOCK, Inputs, row_sum_of_squares

    inputs = Inputs({"input_dist": "gaussian", "dim": 37})
    n = 2 * SQUARES_BLOCK + 5
    plain_rng, buffered_rng = np.random.default_rng(3), np.random.default_rng(3)
    plain = inputs.sample(n, plain_rng)
    buf = np.full((n + 10, 37), np.nan)
    buffered = inputs.sample(n, buffered_rng, out=buf)
    assert np.shares_memory(buffered, buf) and np.array_equal(buffered, plain)
    assert plain_rng.random() == buffered_rng.random()
    x = 3.0 * plain
    shift = np.linspace(-1.0, 1.0, 37)
    assert np.array_equal(row_sum_of_squares(x), np.sum(x * x, axis=1))
    d = x - shift
    assert np.array_equal(row_sum_of_squares(x, shift), np.sum(d * d, axis=1))
    assert np.array_equal(inputs.log_density(x), -0.5 * np.sum(x * x, axis=1) - 0.5 * 37 * np.log(2 * np.pi))
    assert row_sum_of_squares(np.zeros((0, 4))).shape == (0,)


def test_the_clopper_pearson_bound_is_scipy_stats_beta_ppf_without_importing_scipy_stats():
    """rare.clopper_pearson_upper takes the Beta quantile from scipy.special (scipy.stats costs every
    sandboxed instance half a second to import): the same value as scipy.stats.beta.ppf, bit for bit."""
    import subprocess
    import sys

    from scipy.stats import beta

    from phasebench_baselines.rare import clopper_pearson_upper

    for confidence in (0.9, 0.95, 0.99, 1 - 1e-6):
        for n in (1, 2, 7, 100, 4096, 10**6, 2**31):
            for hits in {0, 1, n // 3, n // 2, n - 1} - {n}:
                assert clopper_pearson_upper(hits, n, confidence) == float(beta.ppf(confidence, hits + 1, n - hits))
    assert clopper_pearson_upper(5, 5) == 1.0
    loaded = subprocess.run([sys.executable, "-I", "-c", "import sys, phasebench_baselines.rare; "
                             "print('scipy.stats' in sys.modules)"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
