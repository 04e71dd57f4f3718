/* emu_fibers.cc - a kernel's grid on the CPU: blocks one after another,
 * each thread of a block a fiber (ucontext) with a stack of its own. A
 * fiber runs until it reaches a barrier or returns; a warp barrier
 * (__syncwarp, a shuffle, a wmma load or store) opens when every live lane
 * of the warp waits at one, __syncthreads when every live thread of the
 * block does. When no
 * fiber can run and none of the barriers can open, the block is deadlocked
 * (a barrier in divergent code): reported as a fault, as are shuffles that
 * read a lane which did not take part. A warp shuffle is a barrier for 32
 * fibers, and a kernel does millions of them, so on x86-64 the switch is a
 * few instructions of our own rather than swapcontext (which makes a
 * system call for the signal mask every time). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "cuda_emu_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#define STACK_BYTES ((size_t)512 << 10)
#else
#define EMU_ASAN 0
#define STACK_BYTES ((size_t)128 << 10)
#endif

namespace {
enum fstate { F_RUN, F_BLOCK, F_WARP, F_DONE };

#if defined(__x86_64__)
/* emu_switch(&save, to): push the callee-saved registers, keep the stack
 * pointer in *save, continue on stack `to` (pops its registers, returns). */
extern "C" void emu_switch(void **save, void *to);
asm(".text\n"
    ".globl emu_switch\n"
    ".type emu_switch,@function\n"
    "emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size emu_switch, .-emu_switch\n");
struct emu_ctx {
    void *sp;
};
#else
struct emu_ctx {
    ucontext_t uc;
};
#endif

struct fiber {
    emu_ctx ctx;
    uint3 tid;
    int lane, warp;
    fstate st;
    unsigned shfl_n; /* shuffles done: which slot generation this lane writes next */
    void *fake_stack; /* ASan's, while switched away */
};

struct warp_slots {
    unsigned char v[2][32][16];
    unsigned gen[2][32];
    cu_emu::mma_memo memo;
};

struct block_run {
    std::vector<fiber> f;
    std::vector<warp_slots> w;
    std::vector<int> warp_lanes;
    emu_ctx sched;
    void (*body)(void *);
    void *ctx;
    void *smem;
    const cu_emu::launch_cfg *cfg;
    int faults;
    const void *main_bottom; /* the scheduler's stack, for ASan */
    size_t main_size;
};

block_run *R;
fiber *cur;
std::vector<char *> g_stacks; /* one per thread slot, reused by every block */

char *stack_for(size_t i) {
    while (g_stacks.size() <= i) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        char *m = (char *)mmap(NULL, STACK_BYTES + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                               -1, 0);
        if (m == MAP_FAILED) return NULL;
        mprotect(m, page, PROT_NONE); /* a guard page under the stack: an overflow faults instead of corrupting */
        g_stacks.push_back(m + page);
    }
    return g_stacks[i];
}

void ctx_switch(emu_ctx *save, emu_ctx *to) {
#if defined(__x86_64__)
    emu_switch(&save->sp, to->sp);
#else
    swapcontext(&save->uc, &to->uc);
#endif
}

void fiber_entry(void);

/* a fresh context that starts fiber_entry on the given stack */
void ctx_init(emu_ctx *c, char *stack, size_t bytes) {
#if defined(__x86_64__)
    /* six zero registers, then fiber_entry as the return address: after the
     * `ret` the stack is aligned as right after a call */
    void **sp = (void **)(stack + bytes) - 8;
    for (int i = 0; i < 6; i++) sp[i] = NULL;
    sp[6] = (void *)fiber_entry;
    sp[7] = NULL;
    c->sp = sp;
#else
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = bytes;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, fiber_entry, 0);
#endif
}

/* from the scheduler into fiber f, until f waits or returns */
void switch_to(fiber *f) {
    cur = f;
#if EMU_ASAN
    void *fake = NULL;
    size_t idx = (size_t)(f - R->f.data());
    __sanitizer_start_switch_fiber(&fake, g_stacks[idx], STACK_BYTES);
    ctx_switch(&R->sched, &f->ctx);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    ctx_switch(&R->sched, &f->ctx);
#endif
    cur = NULL;
}

/* from the running fiber back to the scheduler */
void yield(void) {
    fiber *me = cur;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(me->st == F_DONE ? NULL : &me->fake_stack, R->main_bottom, R->main_size);
    ctx_switch(&me->ctx, &R->sched);
    __sanitizer_finish_switch_fiber(me->fake_stack, NULL, NULL);
#else
    ctx_switch(&me->ctx, &R->sched);
#endif
}

void fiber_entry(void) {
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(NULL, &R->main_bottom, &R->main_size);
#endif
    R->body(R->ctx);
    cur->st = F_DONE;
    yield(); /* never resumed */
}

const char *state_name(fstate s) {
    return s == F_RUN ? "running" : s == F_BLOCK ? "__syncthreads" : s == F_WARP ? "a warp barrier" : "returned";
}

cudaError_t run_block(block_run &r) {
    size_t n = r.f.size();
    for (size_t i = 0; i < n; i++) {
        fiber &f = r.f[i];
        char *stk = stack_for(i);
        if (!stk) {
            cu_emu::warn("%s: no memory for the stacks of %zu threads", r.cfg->name, n);
            return cudaErrorMemoryAllocation;
        }
        ctx_init(&f.ctx, stk, STACK_BYTES);
    }
    /* Warps run as far apart as barriers allow: one warp goes on (its warp
     * barriers opening as its lanes meet) until it waits at __syncthreads
     * or returns, then the next. A warp a whole phase ahead of the others
     * is what a GPU may do; overwriting shared memory another warp still
     * reads, or reading what another warp has not written yet, then shows.
     * Odd blocks take the warps in reverse order. */
    size_t nw = r.warp_lanes.size();
    bool reverse = (cu_emu::g_blk.idx.x + cu_emu::g_blk.idx.y + cu_emu::g_blk.idx.z) & 1;
    for (;;) {
        for (size_t k = 0; k < nw; k++) {
            size_t w = reverse ? nw - 1 - k : k, first = w * 32, end = first + (size_t)r.warp_lanes[w];
            for (;;) {
                for (size_t i = first; i < end; i++)
                    if (r.f[i].st == F_RUN) switch_to(&r.f[i]);
                size_t wl = 0, ww = 0;
                for (size_t i = first; i < end; i++) {
                    wl += r.f[i].st != F_DONE;
                    ww += r.f[i].st == F_WARP;
                }
                if (!ww || ww != wl) break;
                for (size_t i = first; i < end; i++)
                    if (r.f[i].st == F_WARP) r.f[i].st = F_RUN;
            }
        }
        size_t live = 0, at_block = 0;
        for (size_t i = 0; i < n; i++) {
            live += r.f[i].st != F_DONE;
            at_block += r.f[i].st == F_BLOCK;
        }
        if (live == 0) return cudaSuccess;
        if (at_block == live) {
            for (size_t i = 0; i < n; i++)
                if (r.f[i].st == F_BLOCK) r.f[i].st = F_RUN;
        } else {
            std::string s;
            for (size_t w = 0; w < r.warp_lanes.size() && s.size() < 300; w++) {
                size_t first = w * 32, end = first + (size_t)r.warp_lanes[w];
                char buf[96];
                snprintf(buf, sizeof buf, " warp %zu: lane 0 at %s, lane %zu at %s;", w, state_name(r.f[first].st),
                         end - first - 1, state_name(r.f[end - 1].st));
                s += buf;
            }
            cu_emu::warn("%s, block (%u,%u,%u): deadlock, a barrier not reached by every live thread:%s", r.cfg->name,
                         cu_emu::g_blk.idx.x, cu_emu::g_blk.idx.y, cu_emu::g_blk.idx.z, s.c_str());
            return cudaErrorLaunchFailure;
        }
    }
}
} // namespace

namespace cu_emu {
block_state g_blk;

const uint3 &thread_idx(void) {
    static const uint3 host = {0, 0, 0};
    if (!cur) {
        fault("threadIdx read outside a kernel");
        return host;
    }
    return cur->tid;
}

int lane_id(void) { return cur ? cur->lane : 0; }

mma_memo *mma_memo_of_warp(void) { return cur ? &R->w[(size_t)cur->warp].memo : NULL; }

void *dyn_smem(void) { return R ? R->smem : NULL; }

void fault(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!R) {
        warn("%s (outside a kernel)", msg);
        return;
    }
    if (R->faults++ < 3)
        warn("%s, block (%u,%u,%u) thread (%u,%u,%u): %s", R->cfg->name, g_blk.idx.x, g_blk.idx.y, g_blk.idx.z,
             cur ? cur->tid.x : 0, cur ? cur->tid.y : 0, cur ? cur->tid.z : 0, msg);
}

void sync_block(void) {
    if (!cur) return fault("__syncthreads outside a kernel");
    cur->st = F_BLOCK;
    yield();
}

void sync_warp(void) {
    if (!cur) return fault("__syncwarp outside a kernel");
    cur->st = F_WARP;
    yield();
}

void shfl_bytes(const void *v, void *out, size_t n, int src, const char *what) {
    if (!cur) return fault("%s outside a kernel", what);
    if (n > 16) return fault("%s of a %zu-byte value", what, n);
    fiber *me = cur;
    warp_slots &ws = R->w[(size_t)me->warp];
    int par = me->shfl_n & 1;
    unsigned gen = me->shfl_n + 1;
    memcpy(ws.v[par][me->lane], v, n);
    ws.gen[par][me->lane] = gen;
    sync_warp();
    me = cur;
    if (src >= R->warp_lanes[(size_t)me->warp] || ws.gen[par][src] != gen) {
        fault("%s: lane %d reads lane %d, which %s", what, me->lane, src,
              src >= R->warp_lanes[(size_t)me->warp] ? "does not exist (a partial warp)" : "did not take part");
        memcpy(out, v, n);
    } else {
        memcpy(out, ws.v[par][src], n);
    }
    me->shfl_n++;
}

cudaError_t run_grid(const launch_cfg &c, void (*body)(void *), void *ctx) {
    size_t nt = (size_t)c.block.x * c.block.y * c.block.z, nw = (nt + 31) / 32;
    block_run r;
    r.f.resize(nt);
    r.w.resize(nw);
    r.warp_lanes.resize(nw);
    for (size_t w = 0; w < nw; w++) r.warp_lanes[w] = (int)(w + 1 < nw ? 32 : nt - w * 32);
    r.body = body;
    r.ctx = ctx;
    r.cfg = &c;
    r.faults = 0;
    r.main_bottom = NULL;
    r.main_size = 0;
    /* 128-byte aligned, as the backend declares its dynamic shared memory */
    r.smem = NULL;
    if (posix_memalign(&r.smem, 128, c.smem ? c.smem : 1)) return cudaErrorMemoryAllocation;
    block_run *saved = R;
    R = &r;
    cudaError_t e = cudaSuccess;
    for (unsigned z = 0; z < c.grid.z && e == cudaSuccess; z++)
        for (unsigned y = 0; y < c.grid.y && e == cudaSuccess; y++)
            for (unsigned x = 0; x < c.grid.x && e == cudaSuccess; x++) {
                g_blk.idx = uint3{x, y, z};
                g_blk.dim = uint3{c.block.x, c.block.y, c.block.z};
                g_blk.grid = uint3{c.grid.x, c.grid.y, c.grid.z};
                memset(r.smem, 0xff, c.smem); /* shared memory starts as garbage on a GPU */
                for (size_t i = 0; i < nt; i++) {
                    fiber &f = r.f[i];
                    f.tid = uint3{(unsigned)(i % c.block.x), (unsigned)(i / c.block.x % c.block.y),
                                  (unsigned)(i / ((size_t)c.block.x * c.block.y))};
                    f.lane = (int)(i % 32);
                    f.warp = (int)(i / 32);
                    f.st = F_RUN;
                    f.shfl_n = 0;
                    f.fake_stack = NULL;
                }
                memset(r.w.data(), 0, nw * sizeof(warp_slots));
                e = run_block(r);
                if (e == cudaSuccess && r.faults) e = cudaErrorLaunchFailure;
            }
    R = saved;
    free(r.smem);
    return e;
}
} // namespace cu_emu
