"""PyTorch peer for bench/sweep.ts: trains a list of runs in ONE process (no per-run start-up), each
like synthmix's trainer: the same GPT-2 (bench/peers/train_torch.py), random windows of the run's
mixture, AdamW (decay on matrices only) + global-norm clipping 1.0, linear warmup then cosine decay to
minLrRatio*lr, and at the end the mean loss on the first evalTokens tokens of every test domain in
consecutive windows (batch-sized chunks, no gradient).

Usage: sweep_torch.py jobs.json   (written by bench/sweep.ts)
Prints one JSON line: {"wall_sec": ..., "runs": [{"id", "loss", "sec"}], "torch": version}
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from train_torch import GPT  # noqa: E402  (the one PyTorch GPT: examples/external-trainer/gpt.py)


def read_tokens(path, dtype):
    return torch.from_numpy(np.fromfile(path, dtype=np.uint16 if dtype == "uint16" else np.uint32).astype(np.int64))


def lr_at(step, total, o):
    warm = min(o["warmupSteps"], total)
    if step < warm:
        return o["lr"] * (step + 1) / warm
    min_lr = o["lr"] * o["minLrRatio"]
    decay = total - warm - 1
    if decay <= 0:
        return o["lr"]
    p = min(1.0, (step - warm) / decay)
    return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (o["lr"] - min_lr)


def evaluate(model, test, eval_tokens, T, B):
    losses = []
    with torch.no_grad():
        for d in test:
            toks = d[: eval_tokens + 1]
            n = (len(toks) - 1) // T * T
            x, y = toks[:n].view(-1, T), toks[1 : n + 1].view(-1, T)
            tot = 0.0
            for i in range(0, x.size(0), B):
                loss_sum, _count = model(x[i : i + B], y[i : i + B])
                tot += loss_sum.item()
            losses.append(tot / n)
    return sum(losses) / len(losses)


def train_one(job, test, eval_tokens, eval_every):
    m = job["model"]
    T, B = m["contextLength"], job["batch"]
    man = json.load(open(os.path.join(os.path.dirname(job["train"]), "manifest.json")))
    data = read_tokens(job["train"], man["dtype"])
    torch.manual_seed(job["seed"])
    model = GPT(m)
    o = job["optimizer"]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
    )
    steps = math.ceil(job["tokens"] / (B * T))
    g = torch.Generator().manual_seed(job["seed"])
    offs = torch.arange(T + 1)
    for step in range(steps):
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, steps, o)
        starts = torch.randint(0, len(data) - T - 1, (B, 1), generator=g)
        win = data[starts + offs]
        opt.zero_grad(set_to_none=True)
        loss_sum, n = model(win[:, :-1].contiguous(), win[:, 1:].contiguous())
        loss = loss_sum / n
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o["gradClip"])
        opt.step()
        # intermediate evaluations on the same schedule as the trainer (evalEvery steps, not the last)
        if eval_every > 0 and (step + 1) % eval_every == 0 and step + 1 < steps:
            evaluate(model, test, eval_tokens, T, B)
    return evaluate(model, test, eval_tokens, T, B)


def main():
    spec = json.load(open(sys.argv[1]))
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    man = json.load(open(os.path.join(spec["test"], "manifest.json")))
    test = [read_tokens(os.path.join(spec["test"], d["file"]), man["dtype"]) for d in man["domains"]]
    runs = []
    for job in spec["jobs"]:
        t1 = time.perf_counter()
        loss = train_one(job, test, spec["evalTokens"], spec.get("evalEvery", 0))
        runs.append({"id": job["id"], "loss": loss, "sec": time.perf_counter() - t1})
    print(json.dumps({"wall_sec": time.perf_counter() - t0, "runs": runs, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
