"""The answer definition on synthetic curves, one per case the dataset card names."""
import numpy as np
import pytest

from benchmark.tasks.grokking_onset.answer import grok_step, observation_step, onset
from benchmark.tasks.grokking_onset.trainer import log_grid

T = 2000
STEPS = log_grid(T, 120)


def _sigmoid(center: float, width: float = 0.05) -> np.ndarray:
    """A rise from 0 to 1 in log step around ``center``."""
    return 1 / (1 + np.exp(-(np.log10(np.maximum(STEPS, 1)) - np.log10(center)) / width))


def curves(mem_at: float | None, test_acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    train = np.zeros(STEPS.size) if mem_at is None else np.where(STEPS >= mem_at, 1.0, 0.5)
    return train, test_acc


def test_clean_grok():
    o = onset(STEPS, *curves(50, _sigmoid(600)), T)
    first_memorised = STEPS[STEPS >= 50][0]
    assert o.t_mem == first_memorised
    assert o.t_obs == STEPS[STEPS <= 3 * first_memorised][-1]
    grokked = STEPS[_sigmoid(600) >= 0.9][0]
    assert o.t_grok == grokked and not o.censored and not o.in_prefix and o.target == grokked


def test_never_memorises():
    o = onset(STEPS, *curves(None, np.zeros(STEPS.size)), T)
    assert o.t_mem is None and o.censored and o.target == T
    assert o.t_obs == STEPS[STEPS <= T / 4][-1]


def test_test_accuracy_before_memorisation_does_not_count():
    """Generalising without memorising (train accuracy stays below 0.99) is not grokking."""
    o = onset(STEPS, *curves(None, np.ones(STEPS.size)), T)
    assert o.t_grok is None


def test_memorise_never_generalise_is_censored():
    o = onset(STEPS, *curves(40, np.full(STEPS.size, 0.05)), T)
    assert o.t_mem is not None and o.censored and o.target == T


def test_semi_grokking_plateau_is_censored():
    """Test accuracy rises to a plateau at 0.85 (semi-grokking): never 0.9."""
    o = onset(STEPS, *curves(40, 0.85 * _sigmoid(300)), T)
    assert o.censored


def test_ungrokking_is_censored():
    """Above 0.9 from step ~300, then below 0.9 at the end of the run."""
    acc = _sigmoid(300) - 0.5 * _sigmoid(1800)
    assert acc[-1] < 0.9 and (acc >= 0.9).sum() > 20
    assert onset(STEPS, *curves(40, acc), T).censored


def test_a_dip_restarts_the_hold():
    """Above 0.9 briefly at ~200, a dip, then for good from ~700: the grok step is the later one."""
    acc = _sigmoid(700).copy()
    brief = (STEPS >= 200) & (STEPS <= 230)
    acc[brief] = 0.95
    o = onset(STEPS, *curves(40, acc), T)
    assert o.t_grok == STEPS[_sigmoid(700) >= 0.9][0]


def test_hold_must_fit_within_the_budget():
    """Reaching 0.9 at step ~1900 leaves no room for the 200-step hold: censored."""
    acc = _sigmoid(1900, width=0.005)
    assert acc[-1] >= 0.9
    assert grok_step(STEPS, acc, 10, T) is None


def test_hold_is_the_longer_of_200_steps_and_a_tenth():
    """The hold is max(200, 0.1 s) steps: at s ~ 1000 that is 200, so a drop 100-190 steps later fails it."""
    acc = _sigmoid(1000, width=0.005)
    s = int(STEPS[acc >= 0.9][0])
    dropped = acc.copy()
    window = (STEPS > s + 100) & (STEPS <= s + 190)
    assert window.any()
    dropped[window] = 0.5
    assert grok_step(STEPS, acc, 10, T) == s
    assert grok_step(STEPS, dropped, 10, T) != s


def test_grok_inside_the_prefix_is_flagged_for_exclusion():
    o = onset(STEPS, *curves(30, _sigmoid(60)), T)
    assert o.t_grok is not None and o.t_grok <= o.t_obs and o.in_prefix


def test_observation_step_bounds():
    assert observation_step(STEPS, 2, T) == STEPS[STEPS <= 0.004 * T][-1]   # at least 0.4% of T
    assert observation_step(STEPS, 400, T) == STEPS[STEPS <= T / 4][-1]    # at most T/4
    with pytest.raises(ValueError, match="budget"):
        onset(STEPS[:-1], np.zeros(STEPS.size - 1), np.zeros(STEPS.size - 1), T)
