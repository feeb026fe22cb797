#!/usr/bin/env python3
"""Peer for bench/fit.ts and test/fit: the same log-space Huber objective, minimised by scipy's L-BFGS-B
from the same grid of starts (Chinchilla approach 3 / Besiroglu et al. 2024 replication code style).

Input (JSON on stdin): {"form": "data"|"model"|"joint", "N": [...], "D": [...], "loss": [...],
                        "grid": [[...], ...], "delta": 1e-3}
Output (JSON on stdout): {"theta": [...], "objective": f, "seconds": s, "starts": n}
"""
import json
import sys
import time

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp


def main():
    inp = json.load(sys.stdin)
    form = inp["form"]
    log_n = np.log(np.asarray(inp["N"], dtype=float))
    log_d = np.log(np.asarray(inp["D"], dtype=float))
    log_l = np.log(np.asarray(inp["loss"], dtype=float))
    delta = float(inp.get("delta", 1e-3))

    def terms(t):
        if form == "joint":
            a, alpha, b, beta, e = t
            return np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_d, e)])
        if form == "data":
            b, beta, e = t
            return np.stack([b - beta * log_d, np.full_like(log_d, e)])
        a, alpha, e = t
        return np.stack([a - alpha * log_n, np.full_like(log_n, e)])

    def obj(t):
        tm = terms(t)
        pred = logsumexp(tm, axis=0)
        r = pred - log_l
        ar = np.abs(r)
        f = np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta)).sum()
        dr = np.where(ar <= delta, r, delta * np.sign(r))
        w = np.exp(tm - pred)  # softmax weights
        if form == "joint":
            g = [w[0], -w[0] * log_n, w[1], -w[1] * log_d, w[2]]
        elif form == "data":
            g = [w[0], -w[0] * log_d, w[1]]
        else:
            g = [w[0], -w[0] * log_n, w[1]]
        return f, np.array([(dr * gi).sum() for gi in g])

    t0 = time.perf_counter()
    best = None
    for start in inp["grid"]:
        res = minimize(obj, np.asarray(start, dtype=float), jac=True, method="L-BFGS-B",
                       options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 2000})
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    secs = time.perf_counter() - t0
    json.dump({"theta": best.x.tolist(), "objective": float(best.fun), "seconds": secs,
               "starts": len(inp["grid"])}, sys.stdout)


if __name__ == "__main__":
    main()
