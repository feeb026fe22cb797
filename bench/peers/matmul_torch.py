#!/usr/bin/env python3
"""Peer for bench/kernels.ts: the three linear-layer products in PyTorch (OpenBLAS) on the CPU.

Runs as a server so that the benchmark can interleave our measurement and this one shape by shape:
reads one JSON request per line, {"BT", "C", "OC", "op", "reps", "clock"}, and answers one JSON line with
the best time in seconds of `reps` calls, by the wall clock or (clock "cpu", for single-thread runs on a
loaded machine) by the process CPU-time clock. op is "forward" (out = inp @ W^T), "dinp" (dinp += dout @ W) or
"dweight" (dW += dout^T @ inp), the same products, with the same accumulate semantics, as ours.
Requests with "layer" instead of "op" time the other layer kernels on (B, T, C, NH, V) shapes:
attention forward / backward (autograd through q·kᵀ, causal mask, softmax, ·v), layernorm, GELU (tanh),
fused cross-entropy (forward + gradient) and an AdamW step (torch.optim.AdamW, foreach).
Threads come from the environment (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS); torch's own intra-op pool
is pinned to 1 thread so that the BLAS is what is measured.
"""
import json
import sys
import time
from contextlib import nullcontext

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
_cache = {}


def best_of(fn, req):
    fn()
    clock = time.process_time if req.get("clock") == "cpu" else time.perf_counter
    best = float("inf")
    for _ in range(req["reps"]):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def tensors(bt, c, oc):
    key = (bt, c, oc)
    if key not in _cache:
        _cache.clear()
        _cache[key] = {
            "inp": torch.randn(bt, c),
            "w": torch.randn(oc, c),
            "out": torch.empty(bt, oc),
            "dout": torch.randn(bt, oc),
            "dinp": torch.zeros(bt, c),
            "dw": torch.zeros(oc, c),
        }
    return _cache[key]


def layer_fn(req):
    import torch.nn.functional as F

    b, t, c, nh, v = req["B"], req["T"], req["C"], req["NH"], req["V"]
    name = req["layer"]
    if name in ("attentionForward", "attentionBackward"):
        qkv = torch.randn(b, t, 3 * c, requires_grad=True)
        hs = c // nh
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)

        def attn():
            q, k, vv = qkv.split(c, dim=2)
            q = q.view(b, t, nh, hs).transpose(1, 2)
            k = k.view(b, t, nh, hs).transpose(1, 2)
            vv = vv.view(b, t, nh, hs).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / hs**0.5)
            att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
            return (att @ vv).transpose(1, 2).reshape(b, t, c)

        if name == "attentionForward":
            return lambda: attn()
        out = attn()
        dout = torch.randn(b, t, c)
        return lambda: out.backward(dout, retain_graph=True)
    if name == "layernormForward":
        x = torch.randn(b * t, c)
        w = torch.randn(c)
        bias = torch.randn(c)
        return lambda: F.layer_norm(x, (c,), w, bias, 1e-5)
    if name == "geluForward":
        x = torch.randn(b * t, 4 * c)
        return lambda: F.gelu(x, approximate="tanh")
    if name == "crossEntropy":
        logits = torch.randn(b * t, v, requires_grad=True)
        targets = torch.randint(0, v, (b * t,))

        def ce():
            logits.grad = None
            F.cross_entropy(logits, targets).backward()

        return ce
    if name == "adamw":
        p = torch.nn.Parameter(torch.randn(req["N"]))
        p.grad = torch.randn(req["N"])
        opt = torch.optim.AdamW([p], lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, foreach=True)
        return lambda: opt.step()
    raise ValueError(name)


def main():
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if "layer" in req:
            with torch.no_grad() if req["layer"] in ("attentionForward", "layernormForward", "geluForward") else nullcontext():
                fn = layer_fn(req)
                print(json.dumps({"seconds": best_of(fn, req)}), flush=True)
            continue
        t = tensors(req["BT"], req["C"], req["OC"])
        fn = {
            "forward": lambda: torch.mm(t["inp"], t["w"].t(), out=t["out"]),
            "dinp": lambda: t["dinp"].addmm_(t["dout"], t["w"]),
            "dweight": lambda: t["dw"].addmm_(t["dout"].t(), t["inp"]),
        }[req["op"]]
        print(json.dumps({"seconds": best_of(fn, req)}), flush=True)


if __name__ == "__main__":
    main()
