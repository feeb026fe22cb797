// OpenMP when the compiler supports it (GCC/Linux builds); otherwise the pragmas are ignored and the
// kernels run on one thread.
#pragma once
#ifdef _OPENMP
#include <omp.h>
#else
inline int omp_get_thread_num() { return 0; }
inline int omp_get_num_procs() { return 1; }
#endif
