"""The GPT-2 that synthmix trains (src/train/model.ts), in PyTorch: pre-LN blocks, GELU-tanh MLP, tied
embeddings, float32; weights N(0, 0.02), the two residual projections N(0, 0.02 / sqrt(2 L)), biases 0.

One module for every PyTorch user in the repository: the example external trainer (train.py, next to
this file) and the benchmark peer bench/peers/train_torch.py, which imports it through sys.path. The
attribute names map one to one onto Hugging Face GPT-2 names (see save_safetensors in train.py).
"""
import math

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
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.h)
        att = att.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=x.device).tril(), float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    """`m` is a synthmix RunConfig `model`: vocabSize, contextLength, dModel, nLayer, nHead."""

    def __init__(self, m):
        super().__init__()
        d, L = m["dModel"], m["nLayer"]
        self.wte = nn.Embedding(m["vocabSize"], d)
        self.wpe = nn.Embedding(m["contextLength"], d)
        self.h = nn.ModuleList([Block(d, m["nHead"]) for _ in range(L)])
        self.ln_f = nn.LayerNorm(d)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * L) if name.endswith("c_proj.weight") or "mlp_proj" in name else 0.02
                nn.init.normal_(p, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        """Summed cross-entropy over the targets that are >= 0 (-1 = padding), and their count."""
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for b in self.h:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1, reduction="sum")
        return loss, int((targets >= 0).sum())
