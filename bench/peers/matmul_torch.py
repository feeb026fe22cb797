#!/usr/bin/env python3
"""Peer for bench/kernels.ts: GFLOP/s of the three linear-layer products in PyTorch (OpenBLAS) on the CPU.

Reads a JSON list of [BT, C, OC] shapes from argv[1]; prints one JSON object per shape and product.
Threads come from the environment (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS); torch's own intra-op pool
is pinned to 1 thread so that the BLAS is what is measured, as it would be for a single matmul call.
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)


def best_seconds(fn, reps):
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    shapes = json.loads(sys.argv[1])
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    for bt, c, oc in shapes:
        inp = torch.randn(bt, c)
        w = torch.randn(oc, c)
        out = torch.empty(bt, oc)
        dout = torch.randn(bt, oc)
        dinp = torch.zeros(bt, c)
        dw = torch.zeros(oc, c)
        flops = 2.0 * bt * c * oc
        ops = {
            "forward": lambda: torch.mm(inp, w.t(), out=out),
            "dinp": lambda: dinp.addmm_(dout, w),
            "dweight": lambda: dw.addmm_(dout.t(), inp),
        }
        for name, fn in ops.items():
            s = best_seconds(fn, reps)
            print(json.dumps({"BT": bt, "C": c, "OC": oc, "op": name, "gflops": flops / s / 1e9}), flush=True)


if __name__ == "__main__":
    main()
