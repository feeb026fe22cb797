"""Peer for bench/mix.ts: the usual numpy way to build a token mixture from pre-tokenized sources
(as in nanoGPT/Megatron prepare scripts): per source, a seeded permutation of documents taken until the
target token count, last document truncated, documents shuffled, concatenated with eot, written to disk.

usage: python3 mix_numpy.py <out_dir> <total> <eot> <name>:<share>:<tokens.bin>:<lens.bin> ...
Prints the seconds per mixture build (best of the repeats given in env REPEATS, default 3).
With MMAP=1 the sources are memory-mapped (np.memmap, the nanoGPT/datatrove way to read big token files)
instead of read whole; with RSS=1 the peak RSS in MB (getrusage) is printed on stderr.
"""
import sys, time, os, resource
import numpy as np

out_dir, total, eot = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sources = []
for spec in sys.argv[4:]:
    name, share, tok_path, lens_path = spec.split(":")
    load = (lambda p, t: np.memmap(p, dtype=t, mode="r")) if os.environ.get("MMAP") == "1" else (lambda p, t: np.fromfile(p, dtype=t))
    sources.append((name, float(share), load(tok_path, np.uint16), np.fromfile(lens_path, dtype=np.uint32)))

def build(seed):
    rng = np.random.default_rng(seed)
    raw = [s[1] * total for s in sources]
    targets = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: -(raw[i] - targets[i]))
    for k in range(total - sum(targets)):
        targets[order[k % len(order)]] += 1
    pieces = []
    for (name, share, toks, lens), target in zip(sources, targets):
        offs = np.concatenate([[0], np.cumsum(lens, dtype=np.int64)])
        perm = rng.permutation(len(lens))
        units = lens[perm].astype(np.int64) + 1
        cum = np.cumsum(units)
        n = int(np.searchsorted(cum, target)) + 1
        if cum[-1] < target:
            raise SystemExit(f"source {name} too small")
        for j, d in enumerate(perm[:n]):
            take = units[j] if j < n - 1 else target - (cum[n - 2] if n > 1 else 0)
            body = toks[offs[d]: offs[d] + min(take - 1, lens[d])]
            pieces.append(np.concatenate([body, np.array([eot], dtype=np.uint16)]))
    idx = rng.permutation(len(pieces))
    out = np.concatenate([pieces[i] for i in idx])
    assert len(out) == total, (len(out), total)
    out.tofile(os.path.join(out_dir, f"mix-{seed}.bin"))

best = float("inf")
for r in range(int(os.environ.get("REPEATS", "3"))):
    t0 = time.perf_counter()
    build(r)
    best = min(best, time.perf_counter() - t0)
print(f"{best:.4f}")
if os.environ.get("RSS") == "1":
    print(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}", file=sys.stderr)
