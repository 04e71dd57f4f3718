/* bench_common.h - timing, peak RSS and this machine's measured SGEMM peak,
 * shared by the benchmark programs. */
#ifndef SDC_BENCH_COMMON_H
#define SDC_BENCH_COMMON_H

double bench_now(void);
double bench_peak_rss_mib(void);
/* GFLOP/s of OpenBLAS SGEMM on n x n x n (best of `reps`), current threads. */
double bench_gemm_peak(int n, int reps);
/* GFLOP/s of sdc's own GEMM (op_linear in cx) on n x n x n, best of `reps`. */
typedef struct op_ctx op_ctx;
double bench_own_gemm_peak(op_ctx *cx, int n, int reps);
/* The arithmetic peaks (peaks.c), G(FL)OP/s on `threads` threads, 0 where
 * the CPU lacks the instructions: [0] fp32 FMA, [1] bf16, [2] int8
 * AVX512-VNNI, [3] int8 AVX-VNNI. */
#define BENCH_NPEAKS 4
void bench_arith_peaks(int threads, double gops[BENCH_NPEAKS]);
const char *bench_peak_name(int k);
/* CPU seconds used by this process (all threads). */
double bench_cpu_seconds(void);
/* Print op_profile_* (seconds, share, GFLOP/s per op kind) after a run. */
void bench_print_profile(double total_seconds, double total_cpu_seconds);

#endif
