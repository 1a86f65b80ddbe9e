"""A submission's extra requirements: installed into its own image at build time, in a layer of
its own, and importable by its worker in a container that has no network."""
import io
import subprocess
import sys
import tarfile
from textwrap import dedent

import pytest
from click.testing import CliRunner

from evaluator.cli import main
from evaluator.sandbox import DockerSandbox, SandboxError
from evaluator.sandbox.submission_image import REQUIREMENTS_FILE, build_context, image_key
from evaluator.store import ResultsStore, make_engine
from evaluator.submission import load_submission
from tests.builders import build_tiny_split, requires_docker, write_submission

USES_DEP = """
import numpy as np
import phasebench_tinydep

def run(problem):
    return phasebench_tinydep.atoms(problem["n_features"], problem["dim"], problem["seed"])
"""


def build_wheel(dest, version="0.1"):
    """A one-module pure-Python wheel, built offline (no index, no build isolation)."""
    src = dest.parent / f"tinydep-src-{version}"
    (src / "phasebench_tinydep").mkdir(parents=True)
    (src / "phasebench_tinydep" / "__init__.py").write_text(dedent(f"""
        import numpy as np
        VERSION = {version!r}
        def atoms(n, d, seed):
            return np.random.default_rng(seed).standard_normal((n, d))
    """))
    (src / "pyproject.toml").write_text(dedent(f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "phasebench-tinydep"
        version = "{version}"
        [tool.setuptools]
        packages = ["phasebench_tinydep"]
    """))
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(dest), str(src)], check=True)
    [wheel] = dest.glob(f"phasebench_tinydep-{version}-*.whl")
    return wheel


def submission_with_dep(root, name="uses-dep"):
    folder = write_submission(root, name=name, code=USES_DEP)
    wheel = build_wheel(folder / "wheels")
    folder = write_submission(root, name=name, code=USES_DEP, requirements=[f"wheels/{wheel.name}"])
    return folder, wheel


def test_build_context_holds_the_requirements_and_their_wheels_but_no_code(tmp_path):
    folder, wheel = submission_with_dep(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(build_context(folder, [f"wheels/{wheel.name}"]))) as tar:
        names = sorted(tar.getnames())
        req = tar.extractfile(REQUIREMENTS_FILE).read().decode()
    assert names == ["Dockerfile", "files", f"files/wheels/{wheel.name}", REQUIREMENTS_FILE]
    assert req == f"wheels/{wheel.name}\n"


def test_image_key_follows_the_base_the_lines_and_the_wheel_bytes(tmp_path):
    folder, wheel = submission_with_dep(tmp_path)
    reqs = [f"wheels/{wheel.name}"]
    key = image_key("sha256:base", folder, reqs)
    assert key == image_key("sha256:base", folder, reqs)
    assert key != image_key("sha256:other", folder, reqs)
    assert key != image_key("sha256:base", folder, reqs + ["sympy==1.13"])
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    assert key != image_key("sha256:base", folder, reqs)


def test_a_requirement_pointing_outside_the_submission_is_refused(tmp_path):
    folder = write_submission(tmp_path, name="escapes")
    (tmp_path / "secret.txt").write_text("x")
    with pytest.raises(SandboxError, match="points outside the submission"):
        image_key("sha256:base", folder, ["../secret.txt"])


@requires_docker
def test_the_worker_imports_its_requirement_from_its_own_image(tmp_path):
    data = tmp_path / "data"
    build_tiny_split(data, n_instances=1)
    folder, wheel = submission_with_dep(tmp_path / "subs")
    db = f"sqlite:///{tmp_path}/r.sqlite"
    out = CliRunner().invoke(main, ["evaluate", str(folder), "--sandbox", "docker", "--data-dir", str(data),
                                    "--db", db], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    [row] = ResultsStore(make_engine(db)).evaluations_of("uses-dep")
    ev = ResultsStore(make_engine(db)).evaluation(row.evaluation.id, with_instances=True)
    assert [i.status for i in ev.instances] == ["ok"], [i.error for i in ev.instances]

    sandbox = DockerSandbox()
    base = sandbox.client.images.get(sandbox.image)
    info = ev.sandbox_info
    assert info["image"].startswith("localhost/phasebench-submission-uses-dep:")
    assert info["base_image_id"] == base.id and wheel.name in info["requirements"]
    image = sandbox.client.images.get(info["image"])
    # Its own layers on top of the evaluator image's (history is newest first), the pip install
    # of the requirements among them.
    own = image.history()[:len(image.history()) - len(base.history())]
    assert any("pip install" in (h.get("CreatedBy") or "") and "requirements" in h["CreatedBy"] for h in own)
    # Built once: the same submission maps to the same image without a build.
    again = sandbox.for_submission(load_submission(folder))
    assert again.image == info["image"]


@requires_docker
def test_a_submission_without_requirements_runs_on_the_evaluator_image(tmp_path):
    sandbox = DockerSandbox()
    assert sandbox.for_submission(load_submission(write_submission(tmp_path))) is sandbox


@requires_docker
def test_a_requirement_that_does_not_install_names_the_submission(tmp_path):
    folder = write_submission(tmp_path, name="bad-dep", requirements=["wheels/broken-0.1-py3-none-any.whl"])
    (folder / "wheels").mkdir()
    (folder / "wheels" / "broken-0.1-py3-none-any.whl").write_bytes(b"not a zip file")
    with pytest.raises(SandboxError, match=r"bad-dep/submission.yaml: requirements could not be installed"):
        DockerSandbox().for_submission(load_submission(folder))
