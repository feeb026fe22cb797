"""Peer for bench/corpus.ts: datasketch's MinHash.update_batch algorithm, re-implemented with numpy
because datasketch itself cannot be installed here (no PyPI; Debian has no package). Same steps as
datasketch 1.x: sha1 -> 32-bit shingle hash, then ((a*h + b) mod (2^61-1)) & (2^32-1), min over shingles.

stdin: JSON lines {"text": ...}; argv: num_perm ngram. Prints JSON {"docs", "shingles", "seconds"} where
seconds covers tokenizing, shingling, hashing and signatures (not process start or JSON parsing).
"""
import hashlib
import json
import re
import struct
import sys
import time

import numpy as np

num_perm = int(sys.argv[1])
ngram = int(sys.argv[2])
texts = [json.loads(l)["text"] for l in sys.stdin if l.strip()]

mersenne = np.uint64((1 << 61) - 1)
max_hash = np.uint64((1 << 32) - 1)
gen = np.random.RandomState(1)
a = gen.randint(1, int(mersenne), dtype=np.uint64, size=num_perm)
b = gen.randint(0, int(mersenne), dtype=np.uint64, size=num_perm)
word = re.compile(r"\w+")

t0 = time.perf_counter()
shingles_total = 0
sigs = []
for t in texts:
    w = word.findall(t.lower())
    n = max(1, min(ngram, len(w)))
    grams = [" ".join(w[i : i + n]) for i in range(len(w) - n + 1)]
    shingles_total += len(grams)
    hv = np.array(
        [struct.unpack("<I", hashlib.sha1(g.encode("utf8")).digest()[:4])[0] for g in grams], dtype=np.uint64
    )
    phv = ((np.outer(hv, a) + b) % mersenne) & max_hash
    sigs.append(phv.min(axis=0) if len(hv) else np.full(num_perm, max_hash))
secs = time.perf_counter() - t0
print(json.dumps({"docs": len(texts), "shingles": shingles_total, "seconds": secs}))
