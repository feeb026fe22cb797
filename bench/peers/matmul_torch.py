#!/usr/bin/env python3
"""Peer for bench/kernels.ts: the three linear-layer products in PyTorch (OpenBLAS) on the CPU.

Runs as a server so that the benchmark can interleave our measurement and this one shape by shape:
reads one JSON request per line, {"BT", "C", "OC", "op", "reps"}, and answers one JSON line with the best
time in seconds of `reps` calls. op is "forward" (out = inp @ W^T), "dinp" (dinp += dout @ W) or
"dweight" (dW += dout^T @ inp), the same products, with the same accumulate semantics, as ours.
Threads come from the environment (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS); torch's own intra-op pool
is pinned to 1 thread so that the BLAS is what is measured.
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
_cache = {}


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


def main():
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        t = tensors(req["BT"], req["C"], req["OC"])
        fn = {
            "forward": lambda: torch.mm(t["inp"], t["w"].t(), out=t["out"]),
            "dinp": lambda: t["dinp"].addmm_(t["dout"], t["w"]),
            "dweight": lambda: t["dw"].addmm_(t["dout"].t(), t["inp"]),
        }[req["op"]]
        fn()
        best = float("inf")
        for _ in range(req["reps"]):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        print(json.dumps({"seconds": best}), flush=True)


if __name__ == "__main__":
    main()
