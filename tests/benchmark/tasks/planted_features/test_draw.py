"""The published distribution's guarantees: every tier noisy, T2 dense but below the density where
recovery is hopeless, and both kinds of a two-kind tier in any split that has two of its instances."""
import pytest

from benchmark.split_secret import SplitSecret, new_secret_text
from benchmark.task import get_task
from benchmark.tasks.planted_features.task import (
    BASE_SNR_DB,
    T2_MAX_L0_PER_DIM,
)

from .builders import variant

TASK = get_task("planted-features")


@pytest.fixture(scope="module", params=["dev", "test"])
def specs(request):
    return TASK.instance_specs(request.param, SplitSecret.parse(new_secret_text(), request.param))


def test_every_tier_is_noisy(specs):
    """Noise in every tier keeps a lone sample from being an exact feature; T5 stays the noisy one."""
    for spec in specs:
        snr = spec.params.get("snr_db")
        assert snr is not None, spec
        assert (0.0 <= snr <= 20.0) if spec.group == "T5" else (BASE_SNR_DB[0] <= snr <= BASE_SNR_DB[1]), spec


def test_dense_tier_stays_below_the_hopeless_density(specs):
    for spec in specs:
        if spec.group == "T2":
            assert 8.0 <= spec.params["l0"] <= T2_MAX_L0_PER_DIM * spec.params["d"] + 1e-9, spec.params


@pytest.mark.parametrize("tier, kinds", [("T4", {"copula", "hierarchy"}), ("T6", {"clusters", "toy_model"})])
def test_two_kind_tiers_hold_both_kinds(specs, tier, kinds):
    drawn = [variant(s.params) for s in specs if s.group == tier]
    assert len(drawn) >= 2 and set(drawn) == kinds
    assert abs(drawn.count(min(kinds)) - drawn.count(max(kinds))) <= 1  # alternated, not tossed


def test_the_built_dev_split_holds_every_kind(dev_split):
    """The dev split is the one every method is tried on: it must show the toy model, the copula and the
    hierarchy (clustered geometry is recorded as independent codes)."""
    structures = [r.hidden["structure"] for r in dev_split.instances]
    assert {"toy_model", "copula", "hierarchy"} <= set(structures)
    assert structures.count("independent") == len(structures) - 3
