"""Peer for bench/analyze.ts: unigram counts of a token file with numpy (np.bincount), the usual way.

usage: python3 unigram_numpy.py <tokens.bin> <vocab> whole|chunked
whole: np.fromfile + one bincount (holds the file); chunked: bincount over 1M-token slices of an
np.memmap (pages are dropped as it goes only if the kernel reclaims them; RSS counts touched pages).
Prints the seconds on stdout and the peak RSS in MB (getrusage) on stderr. Counts only: it does not
draw the equal-size sample or compare with test sets, which synthmix does in the same pass.
"""
import resource, sys, time
import numpy as np

path, vocab, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
if mode == "whole":
    counts = np.bincount(np.fromfile(path, dtype=np.uint16), minlength=vocab)
else:
    mm = np.memmap(path, dtype=np.uint16, mode="r")
    counts = np.zeros(vocab, dtype=np.int64)
    step = 1 << 20
    for i in range(0, len(mm), step):
        counts += np.bincount(mm[i : i + step], minlength=vocab)
print(time.perf_counter() - t0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)
