"""The prefix-table enumerator of F3's truth against the reference enumeration and the stored dev split."""
import math

import numpy as np
import pytest
import torch

from benchmark.dataset import open_split
from benchmark.tasks.rare_behavior.enumerate import chunk_free_positions, enumerate_argmax_by_prefix
from benchmark.tasks.rare_behavior import generator
from benchmark.tasks.rare_behavior.generator import (TIE_GAP, TokenMasses, enumerate_argmax, enumerate_argmax_reference,
                                                     round_sig, sequence_probabilities)
from benchmark.tasks.rare_behavior.models import transformer_arrays, transformer_forward
from benchmark.tasks.rare_behavior.task import model_arrays

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _all_sequences(vocab, length):
    return (np.arange(vocab ** length)[:, None] // vocab ** np.arange(length - 1, -1, -1)) % vocab


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("vocab, length, width, n_layers, n_heads, batch", [
    (4, 5, 16, 1, 2, None),      # one chunk holds every sequence
    (5, 4, 32, 1, 1, 5),         # one free position per chunk
    (4, 6, 16, 2, 2, None),
    (4, 6, 16, 2, 2, 64),        # chunks share a two-token prefix
    (3, 7, 24, 2, 4, 9),
    (6, 4, 32, 2, 2, 1),         # batch below vocab: still one free position
    (3, 5, 16, 3, 2, 27),        # a middle block: prefix states through two blocks
])
def test_same_argmax_and_ties_as_the_reference(device, vocab, length, width, n_layers, n_heads, batch):
    model = transformer_arrays(np.random.default_rng(vocab * 100 + length * 10 + n_layers), vocab, length,
                               width, n_layers, n_heads)
    ref, ref_ties = enumerate_argmax_reference(model, vocab, length)
    fast, fast_ties = enumerate_argmax_by_prefix(model, vocab, length, TIE_GAP, device=device, batch=batch)
    assert fast.dtype == np.uint8 and fast.shape == (vocab ** length,)
    assert np.array_equal(fast, ref)
    assert fast_ties == ref_ties
    assert np.array_equal(fast, transformer_forward(model, _all_sequences(vocab, length)).argmax(axis=1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_layers", [1, 2])
def test_exact_ties_go_to_the_first_index(device, n_layers):
    """Tokens 0 and 1 have zero unembedding columns: their logits are exactly 0 in any precision, so
    wherever the others are negative the top two tie exactly and the argmax is token 0."""
    vocab, length = 4, 5
    model = transformer_arrays(np.random.default_rng(7), vocab, length, 16, n_layers, 2)
    model["unembed"][:, :2] = 0.0
    logits = transformer_forward(model, _all_sequences(vocab, length))
    exact_ties = (logits[:, 2:] < 0).all(axis=1)
    assert 0.05 < exact_ties.mean() < 0.95  # the construction ties a good share of the sequences, not all
    ref, ref_ties = enumerate_argmax_reference(model, vocab, length)
    fast, fast_ties = enumerate_argmax_by_prefix(model, vocab, length, TIE_GAP, device=device, batch=16)
    assert np.array_equal(fast, ref) and fast_ties == ref_ties
    assert fast_ties >= exact_ties.sum()
    assert (fast[exact_ties] == 0).all() and not (fast == 1).any()


def test_a_loss_of_precision_is_refused_not_silently_enumerated():
    """With a tie gap far below the float32 error the float32 argmax could differ from the float64 one:
    the first chunk's check against the float64 forward raises."""
    model = transformer_arrays(np.random.default_rng(1), 4, 4, 16, 1, 2)
    with pytest.raises(RuntimeError, match="float64 forward"):
        enumerate_argmax_by_prefix(model, 4, 4, tie_gap=1e-12)


def test_progress_sees_every_chunk_and_torch_threads_are_restored():
    model = transformer_arrays(np.random.default_rng(2), 3, 6, 16, 2, 2)
    seen = []

    def progress(starts):
        for start in starts:
            seen.append(start)
            yield start
    threads = torch.get_num_threads()
    enumerate_argmax_by_prefix(model, 3, 6, TIE_GAP, batch=27, progress=progress)
    assert seen == list(range(0, 3 ** 6, 27))
    assert torch.get_num_threads() == threads


def test_chunk_free_positions():
    assert chunk_free_positions(8, 8, 1 << 12) == 4
    assert chunk_free_positions(8, 3, 1 << 20) == 3
    assert chunk_free_positions(16, 8, 1) == 1


@pytest.mark.parametrize("beta", [0.5, 8.0, 120.0])
def test_token_masses_are_fsum_of_the_members_bit_for_bit(monkeypatch, beta):
    """Every token's p as the beta tuning computes it, against math.fsum over its members: many chunks
    (a small chunk size), a token with no member, and at the largest beta products that underflow to
    subnormals and to zero."""
    monkeypatch.setattr(generator, "_MASS_CHUNK", 125)
    vocab, length = 5, 7
    rng = np.random.default_rng(3)
    argmax = rng.integers(0, vocab - 1, vocab ** length).astype(np.uint8)  # token vocab - 1: no member
    token_probs = generator._token_probs(rng.standard_normal((length, vocab)) * 4, beta)
    probs = sequence_probabilities(token_probs, np.arange(vocab ** length))
    masses = TokenMasses(argmax, vocab, length)
    assert masses.table_positions == 3
    chunked = np.concatenate([p for _, p in masses._probabilities(token_probs)])
    assert np.array_equal(chunked.view(np.uint64), probs.view(np.uint64))
    expected = [math.fsum(sequence_probabilities(token_probs, np.flatnonzero(argmax == t))) for t in range(vocab)]
    assert [m.hex() for m in masses(token_probs)] == [e.hex() for e in expected]
    assert expected[-1] == 0.0
    if beta > 100:
        assert (probs == 0).any() and ((probs > 0) & (probs < np.finfo(np.float64).tiny)).any()


def test_token_masses_round_half_to_even_like_fsum():
    """Sums that fall exactly halfway between floats, and just above: 1 + 2^-53 rounds to 1, and
    1 + 2^-53 + 2^-106 up to 1 + 2^-52."""
    token_probs = np.array([[1.0, 2.0 ** -53], [1.0, 2.0 ** -53]])  # sequences 1, 2^-53, 2^-53, 2^-106
    for argmax, sums in (([0, 0, 1, 1], [1.0, 2.0 ** -53 + 2.0 ** -106]),
                         ([0, 0, 1, 0], [1.0 + 2.0 ** -52, 2.0 ** -53])):
        masses = TokenMasses(np.array(argmax, dtype=np.uint8), 2, 2)(token_probs)
        assert masses == sums
        assert masses == [math.fsum(sequence_probabilities(token_probs, np.flatnonzero(np.array(argmax) == t)))
                          for t in range(2)]


def _stored_f3_instances():
    for task in ("rare-behavior", "rare-behavior-whitebox"):
        split = open_split(task, "dev")
        for record in split.instances:
            if record.group == "F3":
                yield pytest.param(split, record, id=f"{task}/{record.id}")


@pytest.mark.slow  # each stored F3 truth is re-enumerated: 25-50 s apiece on 2 cores
@pytest.mark.parametrize("split, record", list(_stored_f3_instances()))
def test_stored_dev_truth_is_reproduced(split, record):
    """Every F3 instance of the embedded dev split: the enumerator gives the pinned p. (The near-tie
    count is not pinned: it may differ with the float32 kernels, the argmax does not.)"""
    answer = split.load_answer(record.id)
    info = split.load_answer_info(record.id)
    vocab, length = record.public["vocab"], record.public["seq_len"]
    argmax, _ = enumerate_argmax(model_arrays(answer), vocab, length)
    token_probs = split.load_inputs(record.id)["token_probs"]
    members = np.flatnonzero(argmax == record.public["target"])
    assert round_sig(math.fsum(sequence_probabilities(token_probs, members)), 12) == float(answer["p"].reshape(-1)[0])
    assert info["n_sequences"] == vocab ** length and "near_ties_recomputed" not in info
