"""topk-sae picks each row's k largest codes with numpy's partition where torch's CPU topk is slow:
the codes and every gradient must be topk's bit for bit, and a tie at the k-th value must go to topk."""
import importlib.util

import pytest
import torch

from tests.builders import REPO


def _method():
    spec = importlib.util.spec_from_file_location("topk_sae_method", REPO / "submissions" / "topk-sae" / "method.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference_codes(x, w_enc, b_enc, k):
    """The codes as topk-sae computed them before: torch.topk, scattered."""
    pre = x @ w_enc.T + b_enc
    vals, inds = pre.topk(k, dim=1)
    return torch.zeros_like(pre).scatter(1, inds, torch.relu(vals))


def _codes_and_grads(codes, x, w_dec, w_enc, b_enc, k):
    params = [t.clone().requires_grad_(True) for t in (w_dec, w_enc, b_enc)]
    z = codes(x, params[1], params[2], k)
    ((z @ params[0] - x) ** 2).sum(1).mean().backward()
    return [z.detach()] + [p.grad for p in params]


@pytest.mark.parametrize(("m", "k"), [(232, 4), (436, 8), (522, 16), (436, 2)])
def test_codes_and_gradients_are_topks_bit_for_bit(m, k):
    method = _method()
    gen = torch.Generator().manual_seed(m + k)
    x = torch.randn(256, 48, generator=gen)
    w_dec, w_enc = torch.randn(m, 48, generator=gen), torch.randn(m, 48, generator=gen)
    b_enc = 0.1 * torch.randn(m, generator=gen)
    if k * 64 > m:  # the partition path is the one taken
        assert method._top_indices(x @ w_enc.T + b_enc, k) is not None
    got = _codes_and_grads(method._topk_codes, x, w_dec, w_enc, b_enc, k)
    want = _codes_and_grads(_reference_codes, x, w_dec, w_enc, b_enc, k)
    for g, w in zip(got, want):
        assert g is not None and w is not None
        assert g.dtype == w.dtype and torch.equal(g, w)


def test_a_tie_at_the_kth_value_is_left_to_topk():
    method = _method()
    pre = torch.randn(8, 300, generator=torch.Generator().manual_seed(1))
    top = pre[3].topk(9).values
    pre[3, pre[3] == top[8]] = top[7]  # the 8th and 9th largest of row 3 now equal
    assert method._top_indices(pre, 8) is None
    assert method._top_indices(pre[[0, 1, 2, 4]], 8) is not None
    assert torch.equal(method._topk_codes(pre, torch.eye(300), torch.zeros(300), 8),
                       _reference_codes(pre, torch.eye(300), torch.zeros(300), 8))


def test_a_nan_is_left_to_topk():
    method = _method()
    pre = torch.randn(4, 300, generator=torch.Generator().manual_seed(2))
    pre[2, 5] = float("nan")
    assert method._top_indices(pre, 8) is None
    got = method._topk_codes(pre, torch.eye(300), torch.zeros(300), 8)
    want = _reference_codes(pre, torch.eye(300), torch.zeros(300), 8)
    assert torch.allclose(got, want, rtol=0, atol=0, equal_nan=True)
