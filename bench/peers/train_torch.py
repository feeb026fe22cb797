"""PyTorch peer for bench/train.ts: the same GPT-2 (pre-LN, GELU-tanh, tied embeddings, float32), the
same batch shapes, AdamW + global-norm clipping, timed over a fixed number of optimizer steps.

Run with /usr/bin/python3 (python3-torch), OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=2;
torch intra-op threads are set to 1 (the BLAS threads do the work).
Usage: train_torch.py --vocab 1024 --ctx 64 --d 64 --layers 2 --heads 2 --batch 32 --steps 20
Prints one JSON line: {"tokens_per_sec": ..., "sec_per_step": ..., "loss_first": ..., "loss_last": ...}
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q = q.view(B, T, self.h, C // self.h).transpose(1, 2)
        k = k.view(B, T, self.h, C // self.h).transpose(1, 2)
        v = v.view(B, T, self.h, C // self.h).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, ctx, d, layers, heads):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx, targets):
        T = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied output projection
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(vocab=1024, ctx=64, d=64, layers=2, heads=2, batch=32, steps=20, warmup=2).items():
        ap.add_argument(f"--{k}", type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = GPT(a.vocab, a.ctx, a.d, a.layers, a.heads)
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
        loss = model(x, y)
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
