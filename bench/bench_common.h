/* bench_common.h - timing, peak RSS and this machine's measured SGEMM peak,
 * shared by the benchmark programs. */
#ifndef SDC_BENCH_COMMON_H
#define SDC_BENCH_COMMON_H

double bench_now(void);
double bench_peak_rss_mib(void);
/* GFLOP/s of OpenBLAS SGEMM on n x n x n (best of `reps`), current threads. */
double bench_gemm_peak(int n, int reps);

#endif
