"""PyTorch peer for bench/train.ts: the same GPT-2 (examples/external-trainer/gpt.py: pre-LN, GELU-tanh,
tied embeddings, float32, synthmix's initialisation), the same batch shapes, AdamW + global-norm
clipping, timed over a fixed number of optimizer steps.

Run with /usr/bin/python3 (python3-torch), OPENBLAS_NUM_THREADS=2 (OPENBLAS_CORETYPE: bench/peers/env.ts);
torch intra-op threads are set to 1 (the BLAS threads do the work).
Usage: train_torch.py --vocab 1024 --ctx 64 --d 64 --layers 2 --heads 2 --batch 32 --steps 20
Prints one JSON line: {"tokens_per_sec": ..., "sec_per_step": ..., "loss_first": ..., "loss_last": ...}
"""
import argparse
import json
import os
import sys
import time

import torch

# The one PyTorch GPT-2 of the repository (also the example external trainer's model).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "external-trainer"))
from gpt import GPT  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(vocab=1024, ctx=64, d=64, layers=2, heads=2, batch=32, steps=20, warmup=2).items():
        ap.add_argument(f"--{k}", type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = GPT({"vocabSize": a.vocab, "contextLength": a.ctx, "dModel": a.d, "nLayer": a.layers, "nHead": a.heads})
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.95), eps=1e-8,
    )
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, a.vocab, (a.batch, a.ctx + 1), generator=g)
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        loss_sum, n = model(x, y)
        loss = loss_sum / n  # mean over the batch's tokens, as synthmix's trainer
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print(json.dumps({
        "tokens_per_sec": a.steps * a.batch * a.ctx / dt,
        "sec_per_step": dt / a.steps,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
