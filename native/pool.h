// A small thread pool with dynamic chunk claiming, used instead of OpenMP fork-join.
//
// Why not OpenMP: with static partitioning every parallel region waits for every thread to *start*, and
// on a shared or oversubscribed machine (other trainers, a sweep running several runs) a descheduled
// worker stalls each call for a whole scheduler time slice; we measured 100x slowdowns of small GEMMs.
// Here the caller works through the chunks itself and only waits for chunks another thread has already
// claimed, so a late worker costs nothing. Results stay deterministic because every chunk is computed
// by the same code whichever thread runs it (callers make chunk boundaries independent of timing).
#pragma once
#include <functional>

namespace sk {

// Runs fn(i) for every i in [0, n) on up to `threads` threads (the caller included). Calls from inside a
// running job, or from a second thread while a job runs, execute serially on the caller.
void parallel_for(int n, int threads, const std::function<void(int)>& fn);

}  // namespace sk
