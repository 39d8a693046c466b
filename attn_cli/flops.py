"""How far a training run is from the machine's limit: its FLOP-carrying operations, counted and re-timed alone.

Issue 28 asks for "our training FLOP rate as a fraction of the machine's limit, measured with a matmul
microbenchmark on the same cores and threads (GEMM shapes of this model)". A census does exactly that:

1. :class:`Census` is a ``TorchDispatchMode`` that sees every aten operation a training step dispatches
   (forward, backward, optimizer) and keeps, for each operation that carries FLOPs — matrix products,
   convolutions, the fused CPU RNN layers — its FLOP count (PyTorch's own ``flop_counter`` formulas; the
   fused ``mkldnn_rnn_layer`` by the LSTM's gate products) and its argument shapes, keyed by shape.
2. :func:`replay` times each distinct call alone, on fresh random inputs of the same shapes, dtypes and
   strides, at the current thread count (best of ``repeats`` after a warm-up call), and multiplies by how
   often the step made it. Their sum is the **limit**: the time the run would take if it did nothing but its
   own matrix products, each at the speed this machine gives that shape in isolation.

The fraction ``limit / measured`` is the share of the run's wall clock the arithmetic needs; the rest is
everything else (element-wise ops, Python, the autograd graph, Lightning, the data). It depends on the
shapes, so it answers "how far are we from this machine's limit *for this model and these batches*",
which a peak-GFLOP figure for large square matrices would not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

_ATEN = torch.ops.aten


def _rnn_layer_flops(args: tuple[Any, ...], backward: bool) -> int:
    """FLOPs of one fused LSTM layer over a sequence (``aten.mkldnn_rnn_layer``): per step and row,
    the gate products W_ih x (in × 4H) and W_hh h (H × 4H), 2 FLOPs per multiply-add; its backward
    computes the input and weight gradients of both products (twice the forward's)."""
    x, w_ih = args[0], args[1]  # x: (T, B, in) (or batch-first), w_ih: (4H, in)
    gates, inputs = int(w_ih.shape[0]), int(w_ih.shape[1])
    hidden = gates // 4
    rows = int(x.numel()) // int(x.shape[-1])  # steps × batch
    forward = 2 * rows * gates * (inputs + hidden)
    return 2 * forward if backward else forward


def _flops(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    if func.overloadpacket in flop_registry:
        count: int = flop_registry[func.overloadpacket](*args, **kwargs, out_val=out)
        return int(count)
    if func is _ATEN.mkldnn_rnn_layer.default:
        return _rnn_layer_flops(args, backward=False)
    if func is _ATEN.mkldnn_rnn_layer_backward.default:
        return _rnn_layer_flops(args[:2], backward=True)
    return 0


def _signature(value: Any) -> Any:
    """A hashable description of one argument: tensors by (shape, stride, dtype), the rest as they are."""
    if isinstance(value, torch.Tensor):
        return ("T", tuple(value.shape), tuple(value.stride()), str(value.dtype))
    if isinstance(value, list | tuple):
        return tuple(_signature(v) for v in value)
    return value


def _rebuild(sig: Any) -> Any:
    """Fresh random inputs from :func:`_signature`'s description (uniform values: no denormals, no NaN)."""
    if isinstance(sig, tuple) and len(sig) == 4 and sig[0] == "T":
        _, shape, stride, dtype = sig
        dt = getattr(torch, dtype.removeprefix("torch."))
        size = 1 + sum((n - 1) * s for n, s in zip(shape, stride, strict=True)) if all(shape) else 0
        base = torch.rand(size, dtype=dt) if dt.is_floating_point else torch.zeros(size, dtype=dt)
        return base.as_strided(shape, stride)
    if isinstance(sig, tuple):
        return tuple(_rebuild(v) for v in sig)
    return sig


@dataclass
class Call:
    """One distinct FLOP-carrying call: the operation, its arguments' description, how often, FLOPs each."""

    func: Any
    args: Any
    kwargs: Any
    count: int = 0
    flops: int = 0


class Census(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Counts the FLOP-carrying aten calls made while active (use as a context manager)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.calls: dict[Any, Call] = {}

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        flops = _flops(func, args, kwargs, out)
        if flops:
            sig_args, sig_kwargs = _signature(args), _signature(tuple(sorted(kwargs.items())))
            key = (func, sig_args, sig_kwargs)
            call = self.calls.setdefault(key, Call(func, sig_args, sig_kwargs, flops=flops))
            call.count += 1
        return out

    @property
    def total_flops(self) -> int:
        return sum(c.count * c.flops for c in self.calls.values())


def _best_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: first-call allocation and kernel selection
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def replay(census: Census, repeats: int = 5) -> dict[str, Any]:
    """Time every distinct call of ``census`` alone (see the module docstring) and sum by count."""
    limit = 0.0
    by_op: dict[str, list[float]] = {}
    with torch.no_grad():
        for call in census.calls.values():
            args, kwargs = _rebuild(call.args), dict(_rebuild(call.kwargs))
            seconds = _best_time(lambda: call.func(*args, **kwargs), repeats)  # noqa: B023 (called at once)
            limit += call.count * seconds
            op = str(call.func.overloadpacket).removeprefix("aten.")
            flops_s = by_op.setdefault(op, [0.0, 0.0, 0.0])
            flops_s[0] += call.count * call.flops
            flops_s[1] += call.count * seconds
            flops_s[2] += call.count
    return {
        "flops": census.total_flops,
        "distinct_calls": len(census.calls),
        "limit_s": limit,
        "by_op": {
            op: {"calls": int(n), "gflop": round(f / 1e9, 3), "limit_s": round(s, 4), "gflop_s": round(f / s / 1e9, 2)}
            for op, (f, s, n) in sorted(by_op.items(), key=lambda kv: -kv[1][1])
        },
    }
