"""Numpy forward passes over the weights the learner publishes, described by a small spec.

A ``NetSpec`` names one entry of the published weights (``{module: {param: array}}``) and a
pipeline of ops over its parameters, in the order torch runs them:

    ("linear", "pi.0")          x @ W.T + b with W = "pi.0.weight", b = "pi.0.bias" (if any)
    ("conv2d", "net.0", 4)      a square-kernel convolution, no padding, stride 4 (NCHW in,
                                computed channels-last inside)
    ("relu",) ("tanh",)         activations
    ("flatten",)                [N, ...] -> [N, -1] (C, H, W order, as torch's Flatten)
    ("float32",)                a cast, where the torch module calls ``.float()``
    ("div", 255.0)              x / c in float32 (the Nature CNN's pixel scaling)

``rlcore.networks.export`` writes these specs from torch modules on the driver; an actor only
evaluates them, so it never needs torch. Arrays are bound by ``load`` and read, never written:
the weights may be read-only views into Ray's object store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlcore.errors import PluginError

OPS = {"linear": 1, "conv2d": 2, "relu": 0, "tanh": 0, "flatten": 0, "float32": 0, "div": 1}


@dataclass(frozen=True)
class NetSpec:
    """A pipeline of ops over the parameters of one published module."""

    module: str
    ops: tuple[tuple, ...]

    def __post_init__(self):
        for op in self.ops:
            if not op or op[0] not in OPS or len(op) != 1 + OPS[op[0]]:
                raise PluginError(f"numpy net over module '{self.module}': op {op!r} is not one "
                                  f"of {', '.join(OPS)} with its arguments (see "
                                  "rlcore/policies/numpy_nets.py)")


class NumpyNet:
    """Evaluates a ``NetSpec`` on a batch of observations (numpy in, numpy out)."""

    def __init__(self, spec: NetSpec):
        self.spec = spec
        self._steps: list | None = None

    def load(self, weights: dict) -> None:
        """Bind the parameters of ``weights[spec.module]`` (views; see ``_bind`` for copies)."""
        params = weights.get(self.spec.module)
        if params is None:
            raise PluginError(f"the published weights have no module '{self.spec.module}' "
                              f"(they have {', '.join(sorted(weights))}); the numpy policy's "
                              "spec must name a module the learner sends to actors")
        conv = any(op[0] == "conv2d" for op in self.spec.ops)
        self._steps = [_bind(op, params, self.spec.module, conv) for op in self.spec.ops]

    @property
    def loaded(self) -> bool:
        return self._steps is not None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        owned = False  # activations may work in place on arrays this pass made, never on obs
        nhwc = False  # convolutions run channels-last (see ``conv2d``)
        for kind, args in self._steps:
            if kind == "linear":
                w_t, b, blocks = args
                x = dense(x, w_t, blocks)
                if b is not None:
                    x = x + b
            elif kind == "conv2d":
                if not nhwc:
                    x, nhwc = channels_last(x, x.dtype), True
                x = conv2d_nhwc(x, *args)
            elif kind == "relu":
                x = np.maximum(x, 0.0, out=x) if owned else np.maximum(x, np.float32(0.0))
            elif kind == "tanh":
                x = np.tanh(x, out=x) if owned else np.tanh(x)
            elif kind == "flatten":  # in torch's (C, H, W) order
                x, nhwc = (x.transpose(0, 3, 1, 2) if nhwc else x).reshape(len(x), -1), False
            elif kind == "float32":
                if args and x.ndim == 4 and not nhwc:  # a conv follows: go channels-last in
                    x, nhwc = channels_last(x, np.float32), True
                x = np.asarray(x, np.float32)
            else:  # div
                x = np.asarray(x, np.float32) / args
            owned = kind not in ("flatten", "float32")
        return x.transpose(0, 3, 1, 2) if nhwc else x


def _bind(op: tuple, params: dict, module: str, conv_net: bool):
    kind = op[0]

    def get(name):
        if name not in params:
            raise PluginError(f"numpy net over module '{module}': the published weights have no "
                              f"'{name}' (op {op!r})")
        return np.asarray(params[name])

    bias = f"{op[1]}.bias" if len(op) > 1 else ""
    if kind == "linear":
        # A transposed view multiplies exactly as the earlier NumpyMLP did: the MLP policies
        # keep numpy's one product, torch's numbers bit for bit. A conv net's dense layers go
        # through ``dense``, whose products are built on first use for each weights version.
        w_t = get(f"{op[1]}.weight").T
        return kind, (w_t, get(bias) if bias in params else None, {} if conv_net else None)
    if kind == "conv2d":
        w = get(f"{op[1]}.weight")  # [out, in, k, k] -> rows (kh, kw, in) to fit NHWC patches
        b = get(bias) if bias in params else np.zeros(len(w), w.dtype)
        w_t = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(-1, len(w)))
        return kind, (w_t, b, w.shape[-1], int(op[2]))
    if kind == "div":
        return kind, np.float32(op[1])
    return kind, conv_net if kind == "float32" else None


# OpenBLAS (numpy's BLAS) multiplies small products without repacking the operands; the
# largest product M * N * K measured on that path (x [4, 3136] @ [3136, 64]: 0.13 ms; at
# 5 x 64 x 3136 it repacks again, 0.45 ms). 2 vCPU AMD EPYC, SKYLAKEX kernels.
SMALL_GEMM = 4 * 64 * 3136
COPY_AFTER = 32  # calls with one weights version before its blocks are copied (see dense)


def dense(x: np.ndarray, w_t: np.ndarray, cache: dict | None) -> np.ndarray:
    """x @ w_t for w_t the transposed view of a published weight [out, in].

    ``cache`` None (the MLP policies): one product of the view. Else (a conv net's dense
    layers), a few rows against a large weight (the Nature CNN's 3136 x 512 layer at 2-8
    frames) go in column blocks small enough for OpenBLAS's unpacked kernels: 4 frames
    0.13-0.22 ms against 0.44-0.57 ms for one product, which repacks the 6.4 MB weight on every
    call (warm / cache-flushed). The blocks are transposed views of row blocks of the weight
    (0.16 ms at 4 frames) for the first ``COPY_AFTER`` calls with one weights version, then
    contiguous copies (0.13 ms; the copy costs 0.65 ms): DQN's actors get a new version every
    fragment (8 calls), PPO's every rollout (256 calls). Other shapes use a contiguous copy
    of w_t made on first use (8 frames' one product: 0.85 against 1.5 ms for the view). Sums
    the same terms in another order than one product: ~1e-6 relative."""
    if cache is None:
        return x @ w_t
    n, k = x.shape
    width = w_t.shape[1]
    while width > 16 and n * width * k > SMALL_GEMM:
        width //= 2
    if n < 2 or width == w_t.shape[1] or n * width * k > SMALL_GEMM:
        if "full" not in cache:
            cache["full"] = np.ascontiguousarray(w_t)
        return x @ cache["full"]
    calls = cache["calls"] = cache.get("calls", 0) + 1
    key = (width, calls > COPY_AFTER)
    if key not in cache:
        cache[key] = [np.ascontiguousarray(w_t[:, j:j + width]) if key[1] else w_t[:, j:j + width]
                      for j in range(0, w_t.shape[1], width)]
    return np.concatenate([x @ block for block in cache[key]], axis=1)


def channels_last(x: np.ndarray, dtype) -> np.ndarray:
    """x [N, C, H, W] as a contiguous [N, H, W, C] array of ``dtype``. For the few channels of
    stacked frames, one strided copy per channel: 53 against 125 us for 4 Pong stacks
    (uint8 -> float32) as one transposing copy, whose inner loop runs over C alone."""
    n, c, h, w = x.shape
    if c > 16:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype)
    out = np.empty((n, h, w, c), dtype)
    for i in range(c):
        out[..., i] = x[:, i]
    return out


def conv2d_nhwc(x: np.ndarray, w_t: np.ndarray, b: np.ndarray, k: int, stride: int) -> np.ndarray:
    """A valid (unpadded) convolution of x [N, H, W, C] by im2col and one matrix product: the
    k x k patches at ``stride`` as rows [N * OH * OW, k * k * C] times ``w_t`` [k * k * C, out].
    Returns [N, OH, OW, out]. Channels-last makes the patch copy contiguous runs of C: 2.7x
    (first Nature CNN layer) to 5x (second) faster than gathering NCHW patches."""
    n = x.shape[0]
    patches = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))
    patches = patches[:, ::stride, ::stride]  # [N, OH, OW, C, k, k]
    oh, ow = patches.shape[1:3]
    out = patches.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, -1) @ w_t
    out += b
    return out.reshape(n, oh, ow, -1)


class NumpyParam:
    """One published parameter used as it is (a Gaussian policy's state-independent log std)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name
        self.value: np.ndarray | None = None

    def load(self, weights: dict) -> None:
        try:
            self.value = np.asarray(weights[self.module][self.name])
        except KeyError:
            raise PluginError(f"the published weights have no '{self.module}.{self.name}'; the "
                              "numpy policy's spec must name a parameter the learner sends to "
                              "actors") from None


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
