#!/usr/bin/env python3
"""A minimal external trainer for synthmix (PyTorch), implementing the contract in docs/train.md:

    python3 examples/external-trainer/train.py --config {config} --run-dir {run_dir}

It reads runs/<id>/config.json (a synthmix RunConfig), the mixture's tokens.bin (dtype from its
manifest.json) and the optional test sets, trains the same GPT-2 as synthmix (gpt.py next to this
file: pre-LN, GELU-tanh, tied embeddings; AdamW without decay on biases/LayerNorm, global-norm clipping, warmup + cosine), and writes
<run_dir>/metrics.jsonl in the MetricRecord schema ("train" per step, "eval" per domain, one "final"),
plus <run_dir>/model.safetensors with Hugging Face GPT-2 names. Swap the model/loop for torchrun/FSDP on
a cluster: only the files in and out matter.
"""
import argparse
import json
import math
import os
import random
import struct
import time

import numpy as np
import torch
import torch.nn as nn

# The model lives next to this script (python puts the script's folder on sys.path).
from gpt import GPT


def load_tokens(path, dtype):
    return np.fromfile(path, dtype="<u2" if dtype == "uint16" else "<u4").astype(np.int64)


def count_params(m):
    C, L = m["dModel"], m["nLayer"]
    non_emb = L * (12 * C * C + 13 * C) + 2 * C
    return non_emb, non_emb + m["vocabSize"] * C + m["contextLength"] * C


def lr_at(step, total, o):
    warmup = min(o["warmupSteps"], total)
    if step < warmup:
        return o["lr"] * (step + 1) / warmup
    min_lr, decay = o["lr"] * o["minLrRatio"], total - warmup - 1
    if decay <= 0:
        return o["lr"]
    p = min(1.0, (step - warmup) / decay)
    return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (o["lr"] - min_lr)


@torch.no_grad()
def eval_loss(model, toks, T, n, device):
    """Fixed windows: the first min(n, len-1) targets cut into consecutive windows of T (as synthmix)."""
    count = min(n, len(toks) - 1)
    rows = -(-count // T)
    x = np.zeros(rows * T, dtype=np.int64)
    y = np.full(rows * T, -1, dtype=np.int64)
    x[:count], y[:count] = toks[:count], toks[1 : count + 1]
    loss, _ = model(torch.from_numpy(x).view(rows, T).to(device), torch.from_numpy(y).view(rows, T).to(device))
    return loss.item() / count, count


def save_safetensors(path, model, cfg):
    """Hugging Face GPT-2 names; Linear weights transposed to Conv1D (in, out) layout."""
    tensors = {"wte.weight": model.wte.weight, "wpe.weight": model.wpe.weight,
               "ln_f.weight": model.ln_f.weight, "ln_f.bias": model.ln_f.bias}
    names = {"ln_1": "ln_1", "ln_2": "ln_2", "c_attn": "attn.c_attn", "c_proj": "attn.c_proj",
             "c_fc": "mlp.c_fc", "mlp_proj": "mlp.c_proj"}
    for i, b in enumerate(model.h):
        for ours, hf in names.items():
            mod = getattr(b, ours)
            conv1d = isinstance(mod, nn.Linear)
            tensors[f"h.{i}.{hf}.weight"] = mod.weight.t() if conv1d else mod.weight
            tensors[f"h.{i}.{hf}.bias"] = mod.bias
    header, blobs, off = {"__metadata__": {"format": "pt", "synthmix_config": json.dumps(cfg["model"])}}, [], 0
    for name, t in tensors.items():
        data = t.detach().float().contiguous().cpu().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(path + ".tmp", path)


def window_starts(n, T, sampling, rng):
    """Start positions of the training windows, one per call, with synthmix's two modes (train/data.ts):
    "epoch" cuts the data into non-overlapping windows (a random offset per epoch) and visits each once per
    epoch in a shuffled order; "random" draws uniformly with replacement. The order is this script's own
    (Python's random, not synthmix's Rng): the same semantics, not the same bytes."""
    if sampling == "random":
        return lambda: rng.randrange(n - T)
    if sampling != "epoch":
        raise SystemExit(f"config.sampling: unknown mode {sampling!r} (epoch | random)")
    max_off = min(T - 1, n - 1 - T)
    windows = (n - 1 - max_off - T) // T + 1
    state = {"order": [], "offset": 0}

    def draw():
        if not state["order"]:
            state["offset"] = rng.randrange(max_off + 1)
            state["order"] = list(range(windows))
            rng.shuffle(state["order"])
        return state["offset"] + state["order"].pop() * T

    return draw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--run-dir", required=True)
    a = ap.parse_args()
    cfg = json.load(open(a.config))
    base = os.path.dirname(os.path.abspath(a.config))
    rel = lambda p: p if os.path.isabs(p) else os.path.join(base, p)  # noqa: E731
    m, o = cfg["model"], cfg["optimizer"]
    T, B, accum, D = m["contextLength"], cfg["batchSize"], cfg.get("gradAccum", 1), cfg["tokens"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(cfg["seed"])
    rng = random.Random(cfg["seed"])

    train_dir = rel(cfg["data"]["train"])
    man = json.load(open(os.path.join(train_dir, "manifest.json")))
    data = load_tokens(os.path.join(train_dir, man.get("file", "tokens.bin")), man["dtype"])
    tests = []
    if cfg["data"].get("test"):
        tdir = rel(cfg["data"]["test"])
        tman = json.load(open(os.path.join(tdir, "manifest.json")))
        tests = [(d["name"], load_tokens(os.path.join(tdir, d["file"]), tman["dtype"])) for d in tman["domains"]]
    else:
        tests = [("train", data)]

    model = GPT(m).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])
    per_step = B * accum * T
    total = -(-D // per_step)
    out = open(os.path.join(a.run_dir, "metrics.jsonl"), "w")
    emit = lambda r: (out.write(json.dumps(r) + "\n"), out.flush())  # noqa: E731
    t0, seen = time.time(), 0

    def run_eval(step):
        losses = {}
        model.eval()
        for name, toks in tests:
            loss, count = eval_loss(model, toks, T, cfg.get("evalTokens", 32768), device)
            losses[name] = loss
            emit({"type": "eval", "step": step, "tokens": seen, "domain": name, "loss": loss, "evalTokens": count})
        model.train()
        return losses

    draw = window_starts(len(data), T, cfg.get("sampling", "epoch"), rng)
    for step in range(total):
        lr = lr_at(step, total, o)
        for g in opt.param_groups:
            g["lr"] = lr
        step_tokens = min(per_step, D - step * per_step)
        opt.zero_grad(set_to_none=True)
        loss_sum, left = 0.0, step_tokens
        while left > 0:
            n = min(B * T, left)
            rows = -(-n // T)
            starts = [draw() for _ in range(rows)]
            x = np.stack([data[s : s + T] for s in starts])
            y = np.stack([data[s + 1 : s + T + 1] for s in starts]).reshape(-1)
            y[n:] = -1
            loss, _ = model(torch.from_numpy(x).to(device), torch.from_numpy(y).view(rows, T).to(device))
            (loss / step_tokens).backward()
            loss_sum += loss.item()
            left -= n
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), o["gradClip"]).item()
        opt.step()
        seen += step_tokens
        el = time.time() - t0
        emit({"type": "train", "step": step + 1, "tokens": seen, "loss": loss_sum / step_tokens, "lr": lr,
              "gradNorm": gn, "tokensPerSec": seen / max(el, 1e-9), "elapsedSec": el})
        if cfg.get("evalEvery", 0) and (step + 1) % cfg["evalEvery"] == 0 and step + 1 < total:
            run_eval(step + 1)

    losses = run_eval(total)
    non_emb, tot = count_params(m)
    el = time.time() - t0
    emit({"type": "final", "step": total, "tokens": seen, "loss": sum(losses.values()) / len(losses), "losses": losses,
          "nonEmbeddingParams": non_emb, "totalParams": tot,
          "flops": 6 * non_emb * seen + 6 * m["nLayer"] * T * m["dModel"] * seen,
          "tokensPerSec": seen / max(el, 1e-9), "elapsedSec": el})
    out.close()
    save_safetensors(os.path.join(a.run_dir, "model.safetensors"), model, cfg)


if __name__ == "__main__":
    main()
