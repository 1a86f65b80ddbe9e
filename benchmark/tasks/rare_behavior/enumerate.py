"""Fast exact enumeration for rare-behavior F3: the argmax of the last position's logits for every
token sequence, computed from tables of the first block and from states shared by prefixes.

The model (``models.transformer_forward``) is causal and its output is read at the last position
only, which makes most of the reference's per-sequence work redundant:

* First block: the embedding at position j depends only on (j, token_j), so its queries, keys and
  values do too. The attention scores are a table lookup ``S[j, i, token_j, token_i, head]``, and the
  attention output times ``wo`` is a weighted sum of rows of ``VO[i, token_i, head]``; only the MLP
  runs per row. The tables are built in float64 from the float32 weights and rounded once.
* Later blocks: the state after block l at position j depends only on tokens 0..j. Sequences are
  enumerated in chunks of ``vocab**free`` consecutive (lexicographic) sequences that share their first
  ``length - free`` tokens, and every block's state at position j is computed once per distinct prefix
  of length j + 1 in the chunk (``vocab`` times fewer rows per position further left, so all earlier
  positions together cost about 1 / (vocab - 1) of the last one). The last block runs at the last
  position only, its keys and values for earlier positions coming from those prefix states.
* Last block's MLP and unembedding are folded: ``logits = x U + relu(x W_in + b_in) (W_out U) + b_out U``.

Exactness: the truth is the float64 argmax (the reference forward), first index on ties. Like the
reference (``generator.enumerate_argmax_reference``), this computes float32 logits, takes their argmax
where the top-two gap is at least ``tie_gap`` and recomputes every other sequence with the float64
reference forward. Both paths equal the float64 argmax as long as their float32 logits are within
``tie_gap / 2`` of the float64 ones; for these models both float32 errors are 1e-6 to 1e-5 (vocabulary
8-16, length 8-10, width 64-128, 1-2 layers; the reference's are the same size) against a gap of
1e-3, and the first chunk is checked against the float64 forward (an error above ``tie_gap / 8`` raises)
so that a systematic loss of precision (TF32 matmuls, say) cannot pass silently. The number of near-ties
recomputed can differ from the reference's only for a sequence whose float32 gap lies within about
1e-6 of ``tie_gap``; its argmax is the same either way.

The same code runs on CPU and CUDA; memory is bounded by the chunk size (``batch``).
"""
from __future__ import annotations

import math
import threading

import numpy as np

from .models import transformer_forward

__all__ = ["PrefixTableTransformer", "enumerate_argmax_by_prefix", "chunk_free_positions", "default_chunk_size"]

#: The first chunk's float32 logits must lie this close (as a fraction of the tie gap) to the float64
#: forward's; exactness needs under one half.
_PRECISION_CHECK_FRACTION = 1.0 / 8.0
_PRECISION_CHECK_ROWS = 512
_TIE_BATCH = 1 << 14


def chunk_free_positions(vocab: int, length: int, batch: int) -> int:
    """How many trailing positions a chunk enumerates: the most with vocab**free <= batch (at least one)."""
    free = 1
    while free < length and vocab ** (free + 1) <= batch:
        free += 1
    return free


def _sequences(numbers: np.ndarray, vocab: int, length: int) -> np.ndarray:
    """The sequences of the given numbers in lexicographic order (position 0 most significant)."""
    powers = vocab ** np.arange(length - 1, -1, -1, dtype=np.int64)
    return (np.asarray(numbers, dtype=np.int64)[:, None] // powers[None, :]) % vocab


def _lexicographic(vocab: int, length: int) -> np.ndarray:
    """All vocab**length sequences in lexicographic order."""
    return _sequences(np.arange(vocab ** length, dtype=np.int64), vocab, length)


class PrefixTableTransformer:
    """A transformer of ``models.transformer_arrays`` prepared for chunked enumeration: first-block
    tables and float32 weights on ``device``. ``chunk_logits(prefix)`` gives the last position's logits
    of the ``vocab**free`` sequences that start with ``prefix`` (the first length - free tokens), in
    lexicographic order.

    Layouts put the axis a softmax runs over ahead of the rows, so that it is vectorised over rows."""

    def __init__(self, model: dict[str, np.ndarray], vocab: int, length: int, free: int, device: str = "cpu"):
        import torch

        self.torch = torch
        self.device = device
        self.vocab, self.length, self.free = vocab, length, free
        self.prefix_len = length - free
        a = {k: np.asarray(v, dtype=np.float64) for k, v in model.items()}
        self.n_layers = int(a["n_layers"].reshape(-1)[0])
        self.n_heads = int(a["n_heads"].reshape(-1)[0])
        if a["embed"].shape[0] != vocab or a["pos"].shape[0] < length:
            raise ValueError(f"model has vocabulary {a['embed'].shape[0]} and {a['pos'].shape[0]} positions; "
                             f"enumerating vocabulary {vocab}, length {length}")
        self.width = a["embed"].shape[1]
        self.head_dim = self.width // self.n_heads
        self._first_block_tables(a)
        self._workspace = threading.local()
        scale = 1.0 / math.sqrt(self.head_dim)
        self.blocks = []
        for layer in range(self.n_layers):
            p = f"l{layer}."
            blk = {"wo": self._dev(a[p + "wo"]), "b_in": self._dev(a[p + "b_in"]),
                   # the score scale goes into the query weights: rounded once, in float64
                   "wqkv": self._dev(np.concatenate([a[p + "wq"] * scale, a[p + "wk"], a[p + "wv"]], axis=1)),
                   "wkv": self._dev(np.concatenate([a[p + "wk"], a[p + "wv"]], axis=1))}
            if layer == self.n_layers - 1:
                blk["w_in_unembed"] = self._dev(np.concatenate([a[p + "w_in"], a["unembed"]], axis=1))
                blk["w_out_unembed"] = self._dev(a[p + "w_out"] @ a["unembed"])
                blk["b_out_unembed"] = self._dev(a[p + "b_out"] @ a["unembed"])
            else:
                blk.update(w_in=self._dev(a[p + "w_in"]), w_out=self._dev(a[p + "w_out"]),
                           b_out=self._dev(a[p + "b_out"]))
            self.blocks.append(blk)
        # First-block gather indices of the free positions, the same in every chunk up to the prefix's
        # tokens, which enter additively (added per chunk; here they are 0).
        self._free_indices = {}
        for j in range(self.prefix_len, length):
            free_tokens = _lexicographic(vocab, j + 1 - self.prefix_len).T
            tokens = np.concatenate([np.zeros((self.prefix_len, free_tokens.shape[1]), np.int64), free_tokens])
            self._free_indices[j] = self._first_block_indices(j, torch.as_tensor(tokens, device=device))

    def _dev(self, x: np.ndarray):
        return self.torch.as_tensor(np.ascontiguousarray(x), device=self.device).to(self.torch.float32)

    # --- the first block --------------------------------------------------------------------------
    def _first_block_tables(self, a: dict[str, np.ndarray]) -> None:
        """Per-(position, token) tables of the first block, float64 then rounded to float32.

        first_scores[j]: (heads, length * vocab * vocab), the scaled score of a query at position j with
        token_j against a key at position i with token_i at column (i * vocab + token_j) * vocab + token_i.
        first_mix[j]: rows ``VO[head, i, token_i]`` (value times the head's rows of wo) at
        (head * (j + 1) + i) * vocab + token_i for i <= j, then embedding plus position j for each token,
        so that a matrix of attention weights (and a one for the token) times it is the residual stream
        after the first block's attention."""
        vocab, length, heads, dh = self.vocab, self.length, self.n_heads, self.head_dim
        x0 = a["embed"][None, :, :] + a["pos"][:length, None, :]               # (L, V, w)
        q = (x0 @ a["l0.wq"]).reshape(length, vocab, heads, dh)
        k = (x0 @ a["l0.wk"]).reshape(length, vocab, heads, dh)
        v = (x0 @ a["l0.wv"]).reshape(length, vocab, heads, dh)
        scores = np.einsum("jahd,ibhd->jhiab", q, k) / math.sqrt(dh)          # (L, H, L, V, V)
        vo = np.einsum("ivhd,hdw->hivw", v, a["l0.wo"].reshape(heads, dh, self.width))  # (H, L, V, w)
        self.first_scores = [self._dev(scores[j].reshape(heads, length * vocab * vocab)) for j in range(length)]
        self.first_mix = [self._dev(np.concatenate([vo[:, :j + 1].reshape(-1, self.width), x0[j]]))
                          for j in range(length)]

    def _first_block_indices(self, j: int, tokens):
        """Gather and scatter indices of the first block at position j for tokens (j + 1, rows): score
        columns (j + 1, rows), attention-weight rows of the one-hot matrix (heads * (j + 1), rows) and
        the token's row (1, rows)."""
        torch = self.torch
        vocab, heads = self.vocab, self.n_heads
        positions = torch.arange(j + 1, device=self.device)[:, None]
        score_index = (positions * vocab + tokens[j:j + 1]) * vocab + tokens
        head_positions = torch.arange(heads, device=self.device)[:, None, None] * (j + 1) + positions
        mix_index = (head_positions * vocab + tokens).reshape(heads * (j + 1), -1)
        token_index = heads * (j + 1) * vocab + tokens[j:j + 1]
        return score_index, mix_index, token_index

    def _chunk_indices(self, j: int, prefix):
        """_first_block_indices of position j for the chunk that starts with prefix (int64, on device)."""
        if j < self.prefix_len:
            return self._first_block_indices(j, prefix[:j + 1].view(j + 1, 1))
        score_index, mix_index, token_index = self._free_indices[j]
        if self.prefix_len == 0:
            return score_index, mix_index, token_index
        offset = self.torch.zeros(j + 1, 1, dtype=prefix.dtype, device=self.device)
        offset[:self.prefix_len, 0] = prefix
        return score_index + offset, mix_index + offset.repeat(self.n_heads, 1), token_index

    def _first_attention(self, j: int, indices):
        """Residual stream at position j after the first block's attention, (rows, width)."""
        torch = self.torch
        score_index, mix_index, token_index = indices
        rows = score_index.shape[1]
        scores = torch.index_select(self.first_scores[j], 1, score_index.reshape(-1),
                                    out=self._buffer(("scores", j), self.n_heads, score_index.numel()))
        weights = torch.softmax(scores.view(self.n_heads, j + 1, rows), dim=1)
        onehot = self._buffer(("onehot", j), self.first_mix[j].shape[0], rows).zero_()
        onehot.scatter_(0, mix_index, weights.view(-1, rows))
        onehot.scatter_(0, token_index, 1.0)
        return torch.mm(onehot.t(), self.first_mix[j], out=self._buffer(("x", j), rows, self.width))

    # --- later blocks -------------------------------------------------------------------------------
    def _buffer(self, name, *shape):
        """A reusable output tensor of this thread: a fresh chunk-sized tensor costs a page fault per
        4 KiB on every chunk (glibc returns large freed blocks to the system), a quarter of the CPU
        time. The name says where it is used (with the position and block), so live ones never alias."""
        buffers = self._workspace.__dict__.setdefault("buffers", {})
        buf = buffers.get(name)
        if buf is None or tuple(buf.shape) != shape:
            buf = buffers[name] = self.torch.empty(shape, device=self.device)
        return buf

    def _mlp(self, layer: int, j: int, x):
        blk = self.blocks[layer]
        rows = x.shape[0]
        hidden = self.torch.addmm(blk["b_in"], x, blk["w_in"],
                                  out=self._buffer(("mlp", layer, j), rows, blk["b_in"].shape[0])).relu_()
        out = self._buffer(("residual", layer, j), rows, self.width)
        return self.torch.addmm(x, hidden, blk["w_out"], out=out).add_(blk["b_out"])

    def _logits(self, x):
        """The last block's MLP and the unembedding, folded (see the module docstring)."""
        blk = self.blocks[-1]
        hidden_width = blk["b_in"].shape[0]
        pre = self.torch.mm(x, blk["w_in_unembed"], out=self._buffer("logits_in", x.shape[0],
                                                                     blk["w_in_unembed"].shape[1]))
        hidden = pre[:, :hidden_width].add_(blk["b_in"]).relu_()
        return self.torch.addmm(pre[:, hidden_width:], hidden, blk["w_out_unembed"]).add_(blk["b_out_unembed"])

    def _attend(self, query, keys: list, values: list):
        """Attention output (before wo) of the rows at position j = len(keys) - 1 over positions 0..j.
        query, keys[j], values[j]: (rows, H, dh), query scaled; keys[i], values[i] for i < j:
        (rows_i, H, dh), one per distinct prefix of length i + 1. The rows that share their first j
        tokens (a group) share keys and values 0..j-1: one small matmul per group and head."""
        torch = self.torch
        j = len(keys) - 1
        rows, heads, dh = query.shape
        if j == 0:  # a single key: weight 1
            return values[0].reshape(rows, heads * dh)
        groups = keys[j - 1].shape[0]
        per_group = rows // groups
        past_k = self._buffer(("past_k", j), groups, heads, j, dh)
        past_v = self._buffer(("past_v", j), groups, heads, j, dh)
        for i in range(j):
            ancestors = keys[i].shape[0]  # each has groups // ancestors groups below it
            past_k.view(ancestors, groups // ancestors, heads, j, dh)[:, :, :, i].copy_(keys[i][:, None])
            past_v.view(ancestors, groups // ancestors, heads, j, dh)[:, :, :, i].copy_(values[i][:, None])
        grouped_q = self._buffer(("query", j), groups, heads, dh, per_group)
        grouped_q.copy_(query.view(groups, per_group, heads, dh).permute(0, 2, 3, 1))
        own = torch.mul(query, keys[j], out=self._buffer(("own", j), rows, heads, dh)).sum(-1)
        scores = torch.cat([past_k @ grouped_q,                                          # (G, H, j + 1, m)
                            own.view(groups, per_group, heads).transpose(1, 2)[:, :, None]], dim=2)
        weights = torch.softmax(scores, dim=2)
        out = torch.matmul(weights[:, :, :j].transpose(-1, -2), past_v,                  # (G, H, m, dh)
                           out=self._buffer(("attention", j), groups, heads, per_group, dh))
        out.addcmul_(weights[:, :, j, :, None], values[j].view(groups, per_group, heads, dh).transpose(1, 2))
        merged = self._buffer(("merged", j), rows, heads * dh)
        merged.view(groups, per_group, heads, dh).copy_(out.transpose(1, 2))
        return merged

    def _split_heads(self, x):
        return x.view(x.shape[0], self.n_heads, self.head_dim)

    # --- one chunk --------------------------------------------------------------------------------
    def chunk_logits(self, prefix):
        """Float32 logits (vocab**free, vocab) of the chunk's sequences, lexicographic. prefix: int64
        tensor on the device with the first length - free tokens (empty when free == length)."""
        torch, length, last, w = self.torch, self.length, self.length - 1, self.width
        if self.n_layers == 1:
            return self._logits(self._first_attention(last, self._chunk_indices(last, prefix)))
        hidden = [self._mlp(0, j, self._first_attention(j, self._chunk_indices(j, prefix))) for j in range(length)]
        for layer in range(1, self.n_layers):
            blk = self.blocks[layer]
            final = layer == self.n_layers - 1
            # the last block needs queries at the last position only
            weights = [blk["wqkv"] if not final or j == last else blk["wkv"] for j in range(length)]
            qkv = [torch.mm(h, wj, out=self._buffer(("qkv", layer, j), h.shape[0], wj.shape[1]))
                   for j, (h, wj) in enumerate(zip(hidden, weights))]
            keys = [self._split_heads(t[:, -2 * w:-w]) for t in qkv]
            values = [self._split_heads(t[:, -w:]) for t in qkv]
            attend_at = [last] if final else range(length)
            out = {j: torch.addmm(hidden[j], self._attend(self._split_heads(qkv[j][:, :w]), keys[:j + 1],
                                                          values[:j + 1]), blk["wo"],
                                  out=self._buffer(("attended", layer, j), hidden[j].shape[0], w))
                   for j in attend_at}
            if final:
                return self._logits(out[last])
            hidden = [self._mlp(layer, j, out[j]) for j in range(length)]
        raise AssertionError("unreachable: the last block returns")


def default_chunk_size(device: str) -> int:
    """Most sequences per chunk (the chunk is the largest power of vocab up to it): on CPU a few
    thousand, where a chunk's activations stay near the core's cache yet per-op overhead is small
    (vocab 8: 4096 beat 512 by 20-50% and 32768 by 0-25% per CPU-second); on a GPU large, so that
    kernel launches do not dominate."""
    return 1 << 13 if _on_cpu(device) else 1 << 20


def _on_cpu(device) -> bool:
    return str(device).startswith("cpu")


def enumerate_argmax_by_prefix(model: dict[str, np.ndarray], vocab: int, length: int, tie_gap: float,
                               device: str = "cpu", batch: int | None = None,
                               progress=None) -> tuple[np.ndarray, int]:
    """The argmax of the last position's logits for every sequence (uint8, lexicographic order) and how
    many near-ties (float32 top-two gap < tie_gap) were recomputed with the float64 reference forward.

    ``batch`` bounds the sequences per chunk (a power of vocab; default ``default_chunk_size``);
    ``progress`` wraps the iterable of chunk start indices, as in ``generator.enumerate_argmax_reference``,
    and advances as chunks finish.

    On CPU, chunks run in parallel on torch's thread count of Python threads, each op single-threaded
    (torch's intra-op thread count is 1 meanwhile, restored after): on a shared machine, per-op
    threads spin at a barrier after every small op and lose several times over to chunk-level threads."""
    import torch

    free = chunk_free_positions(vocab, length, batch or default_chunk_size(device))
    net = PrefixTableTransformer(model, vocab, length, free, device=device)
    chunk = vocab ** free
    total = vocab ** length
    prefixes_on_device = torch.as_tensor(_lexicographic(vocab, length - free), device=device)

    def run_chunk(number: int) -> tuple[np.ndarray, np.ndarray]:
        """The chunk's float32 argmax and the rows of its near-ties."""
        with torch.inference_mode():  # thread-local: entered in the thread that runs the chunk
            logits = net.chunk_logits(prefixes_on_device[number])
            top = torch.topk(logits, 2, dim=1).values
            close = ((top[:, 0] - top[:, 1]) < tie_gap).cpu().numpy()
            arg = logits.argmax(dim=1).to(torch.uint8).cpu().numpy()
            if number == 0:  # row r of the first chunk is sequence number r
                _check_precision(model, lambda rows: _sequences(rows, vocab, length), logits.cpu().numpy(),
                                 tie_gap)
        return arg, np.flatnonzero(close)

    out = np.empty(total, dtype=np.uint8)
    n_ties = 0
    pending_ties: list[np.ndarray] = []  # sequence numbers, recomputed in batches: a float64 forward per
    n_pending = 0                        # chunk would cost more than the chunk for small models

    def recompute_ties() -> None:
        numbers = np.concatenate(pending_ties)
        out[numbers] = transformer_forward(model, _sequences(numbers, vocab, length)).argmax(axis=1)
        pending_ties.clear()

    starts = range(0, total, chunk)
    torch_threads = torch.get_num_threads()
    workers = torch_threads if _on_cpu(device) else 1
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # no TF32: the float32 error must stay far below tie_gap
    try:
        if workers > 1:
            torch.set_num_threads(1)
        for start, (arg, close_rows) in zip(progress(starts) if progress else starts,
                                            _in_order(run_chunk, len(starts), workers)):
            out[start:start + chunk] = arg
            if close_rows.size:
                pending_ties.append(start + close_rows)
                n_pending += close_rows.size
                n_ties += close_rows.size
            if n_pending >= _TIE_BATCH:
                recompute_ties()
                n_pending = 0
        if pending_ties:
            recompute_ties()
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.set_num_threads(torch_threads)
    return out, n_ties


def _in_order(task, n: int, workers: int):
    """task(0), ..., task(n - 1), computed on `workers` threads with a bounded number in flight."""
    if workers <= 1:
        yield from (task(i) for i in range(n))
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        pending = deque()
        for i in range(n):
            pending.append(pool.submit(task, i))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _check_precision(model: dict[str, np.ndarray], sequences, logits: np.ndarray, tie_gap: float) -> None:
    """Some of a chunk's float32 logits against the float64 forward (see the module docstring);
    sequences(rows) gives the chunk's sequences of those rows."""
    rows = np.unique(np.linspace(0, len(logits) - 1, min(_PRECISION_CHECK_ROWS, len(logits))).astype(np.int64))
    exact = transformer_forward(model, sequences(rows))
    error = float(np.abs(logits[rows].astype(np.float64) - exact).max())
    if error > tie_gap * _PRECISION_CHECK_FRACTION:
        raise RuntimeError(f"float32 logits differ from the float64 forward by {error:.3g}, above "
                           f"{_PRECISION_CHECK_FRACTION:g} of the tie gap {tie_gap:g}: the enumeration would not "
                           "be exact")
