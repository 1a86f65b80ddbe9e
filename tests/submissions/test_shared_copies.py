"""Baselines that share code keep a copy in each folder: the sandbox mounts one submission folder
and nothing else, so a submission cannot import from a sibling. The copies must not drift apart."""
import pytest

from tests.builders import REPO

SUBS = REPO / "submissions"

# The file every copy must equal, and its copies (name, possibly renamed, in each folder).
SHARED = {
    "rare_common.py": sorted(SUBS.glob("rare-*/rare_common.py")),
    "grok_common.py": sorted(SUBS.glob("grok-*/grok_common.py")),
    "approach-3 fit": [SUBS / "scaling-approach3" / "method.py", SUBS / "scaling-bnsl" / "bnsl_approach3.py",
                       SUBS / "scaling-m4" / "m4_approach3.py"],
}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_copies_are_identical(name):
    copies = SHARED[name]
    assert len(copies) >= 2, f"{name}: expected several copies, found {copies}"
    first = copies[0].read_bytes()
    differ = [str(p.relative_to(REPO)) for p in copies[1:] if p.read_bytes() != first]
    assert not differ, f"{name}: {differ} differ from {copies[0].relative_to(REPO)}; change every copy together"
