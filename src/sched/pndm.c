/* pndm.c - PNDMScheduler (diffusers 0.30.3): PLMS (skip_prk_steps, N steps ->
 * N + 1 calls, the second timestep repeated) and the Runge-Kutta warm-up
 * (skip_prk_steps false: 12 PRK calls, then PLMS). The history is kept for
 * the whole batch. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

#define PNDM_ORDER 4

/* PNDMScheduler's own __init__ argument */
typedef struct {
    int skip_prk_steps;
} pndm_opts;

static int skip_prk(const sched_config *c) {
    pndm_opts o;
    SCHED_OPTS_GET(pndm_opts, c, &o);
    return o.skip_prk_steps;
}

/* the sampler's state: the PRK timesteps and the history of the batch */
typedef struct {
    int prk_count;        /* number of PRK calls (0 with skip_prk_steps) */
    int64_t prk_ts[12];   /* prk_timesteps (needed by step_prk) */
    int64_t n;            /* floats per history buffer (0: none yet) */
    float *ets[4];
    int n_ets;
    float *cur_sample;
    int has_cur_sample;
    float *cur_model_output;
    int counter;
} pndm_state;

static sdc_status pndm_state_create(sdc_scheduler *s) {
    if (!(s->state = calloc(1, sizeof(pndm_state)))) return sdc_fail(SDC_ERR_NOMEM, "PNDMScheduler: out of memory");
    return SDC_OK;
}

static void free_history(pndm_state *p) {
    for (int k = 0; k < 4; k++) {
        free(p->ets[k]);
        p->ets[k] = NULL;
    }
    free(p->cur_sample);
    free(p->cur_model_output);
    p->cur_sample = p->cur_model_output = NULL;
    p->n = 0;
}

static void pndm_state_free(void *state) {
    if (!state) return;
    free_history(state);
    free(state);
}

static sdc_status pndm_state_reset(sdc_scheduler *s, int64_t n) {
    pndm_state *p = s->state;
    if (p->n != n) {
        free_history(p);
        size_t bytes = (size_t)n * sizeof(float);
        int bad = 0;
        for (int k = 0; k < 4; k++) bad |= !(p->ets[k] = malloc(bytes));
        bad |= !(p->cur_sample = malloc(bytes));
        bad |= !(p->cur_model_output = malloc(bytes));
        if (bad) {
            free_history(p);
            return sdc_fail(SDC_ERR_NOMEM, "scheduler: out of memory for the step history (%lld floats)", (long long)n);
        }
        p->n = n;
    }
    p->n_ets = 0;
    p->has_cur_sample = 0;
    p->counter = 0;
    memset(p->cur_model_output, 0, (size_t)n * sizeof(float));
    return SDC_OK;
}

static sdc_status pndm_validate(const sched_config *c, int steps) {
    (void)steps;
    if (sched_is_sample(c))
        return sdc_fail(SDC_ERR_ARG, "PNDMScheduler: prediction_type 'sample' is not valid (epsilon or v_prediction)");
    return SDC_OK;
}

/* self._timesteps, ascending, as doubles (leading keeps numpy floats) */
static sdc_status base_timesteps(const sched_config *c, int n, double *ts) {
    const int T = c->num_train_timesteps;
    if (!strcmp(c->timestep_spacing, "linspace")) {
        np_linspace(0, T - 1, n, 1, ts);
        for (int i = 0; i < n; i++) ts[i] = np_round(ts[i]);
    } else if (!strcmp(c->timestep_spacing, "leading")) {
        int ratio = T / n;
        for (int i = 0; i < n; i++) ts[i] = (double)((int64_t)i * ratio) + c->steps_offset;
    } else {
        double ratio = (double)T / n, *v = malloc((size_t)(n + 2) * sizeof(double));
        if (!v) return sdc_fail(SDC_ERR_NOMEM, "PNDMScheduler: out of memory");
        int len = np_arange(T, 0, -ratio, v, n + 2);
        if (len != n) {
            free(v);
            return sdc_fail(SDC_ERR_UNSUPPORTED, "PNDMScheduler: trailing spacing gives %d timesteps for %d steps", len, n);
        }
        for (int i = 0; i < n; i++) ts[i] = (double)((int64_t)np_round(v[n - 1 - i]) - 1);
        free(v);
    }
    return SDC_OK;
}

static sdc_status pndm_set_timesteps(sdc_scheduler *s, int n) {
    const sched_config *c = &s->cfg;
    pndm_state *ps = s->state;
    double *ts = malloc((size_t)n * sizeof(double));
    if (!ts) return sdc_fail(SDC_ERR_NOMEM, "PNDMScheduler: out of memory");
    sdc_status st = base_timesteps(c, n, ts);
    if (st) {
        free(ts);
        return st;
    }
    int total;
    if (skip_prk(c)) {
        /* plms = concat(ts[:-1], ts[-2:-1], ts[-1:])[::-1] */
        total = n == 1 ? 1 : n + 1;
        s->ts_int = malloc((size_t)total * sizeof(int64_t));
        if (!s->ts_int) {
            free(ts);
            return sdc_fail(SDC_ERR_NOMEM, "PNDMScheduler: out of memory");
        }
        double *pl = malloc((size_t)total * sizeof(double));
        if (!pl) {
            free(ts);
            return sdc_fail(SDC_ERR_NOMEM, "PNDMScheduler: out of memory");
        }
        int k = 0;
        for (int i = 0; i < n - 1; i++) pl[k++] = ts[i];
        if (n >= 2) pl[k++] = ts[n - 2];
        pl[k++] = ts[n - 1];
        for (int i = 0; i < total; i++) s->ts_int[i] = (int64_t)pl[total - 1 - i];
        free(pl);
        ps->prk_count = 0;
    } else {
        if (n < PNDM_ORDER) {
            free(ts);
            return sdc_fail(SDC_ERR_ARG, "PNDMScheduler: the Runge-Kutta warm-up (skip_prk_steps false) needs at least %d "
                                         "steps (got %d)",
                            PNDM_ORDER, n);
        }
        const double half = (double)(c->num_train_timesteps / n / 2);
        double p[2 * PNDM_ORDER], q[12];
        for (int j = 0; j < PNDM_ORDER; j++) {
            p[2 * j] = ts[n - PNDM_ORDER + j];
            p[2 * j + 1] = ts[n - PNDM_ORDER + j] + half;
        }
        /* prk = p[:-1].repeat(2)[1:-1][::-1] */
        double r[14];
        for (int j = 0; j < 7; j++) r[2 * j] = r[2 * j + 1] = p[j];
        for (int j = 0; j < 12; j++) q[j] = r[12 - j];
        total = 12 + (n - 3);
        s->ts_int = malloc((size_t)total * sizeof(int64_t));
        if (!s->ts_int) {
            free(ts);
            return sdc_fail(SDC_ERR_NOMEM, "PNDMScheduler: out of memory");
        }
        for (int j = 0; j < 12; j++) s->ts_int[j] = ps->prk_ts[j] = (int64_t)q[j];
        for (int j = 0; j < n - 3; j++) s->ts_int[12 + j] = (int64_t)ts[n - 4 - j];
        ps->prk_count = 12;
    }
    free(ts);
    s->n_calls = total;
    return SDC_OK;
}

/* _get_prev_sample: formula (9) of the PNDM paper, float32 scalars */
static sdc_status prev_sample(const sdc_scheduler *s, const float *sample, int64_t t, int64_t prev_t, const float *mo_in,
                              float *out, int64_t n) {
    const sched_config *c = &s->cfg;
    if (t < 0 || t >= c->num_train_timesteps || prev_t >= c->num_train_timesteps)
        return sdc_fail(SDC_ERR_ARG, "PNDMScheduler: timestep %lld out of range", (long long)t);
    const float a_t = s->ac[t];
    const float a_prev = prev_t >= 0 ? s->ac[prev_t] : s->final_ac;
    const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    const float sa_t = sqrtf(a_t), sb_t = sqrtf(b_t);
    const float sample_coeff = sqrtf(a_prev / a_t);
    const float denom = a_t * sqrtf(b_prev) + sqrtf(a_t * b_t * a_prev);
    const float diff = a_prev - a_t;
    const int v = sched_is_v(c);
    for (int64_t k = 0; k < n; k++) {
        float m = mo_in[k];
        if (v) m = sa_t * m + sb_t * sample[k];
        out[k] = sample_coeff * sample[k] - diff * m / denom;
    }
    return SDC_OK;
}

static void push_et(pndm_state *p, const float *mo, int64_t n) {
    /* ets = ets[-3:]; ets.append(mo) */
    if (p->n_ets == 4) {
        float *first = p->ets[0];
        memmove(p->ets, p->ets + 1, 3 * sizeof(float *));
        p->ets[3] = first;
        p->n_ets = 3;
    }
    assert(p->n_ets < 4); /* ets keeps the last four outputs */
    memcpy(p->ets[p->n_ets++], mo, (size_t)n * sizeof(float));
}

static sdc_status step_plms(sdc_scheduler *s, int i, const float *mo, float *x, int64_t n) {
    const sched_config *c = &s->cfg;
    pndm_state *p = s->state;
    const int64_t ratio = c->num_train_timesteps / s->num_inference_steps;
    int64_t t = s->ts_int[i];
    int64_t prev_t = t - ratio;
    if (!skip_prk(c) && p->n_ets < 3)
        return sdc_fail(SDC_ERR_ARG, "PNDMScheduler: PLMS step %d before the Runge-Kutta warm-up", i);
    if (p->counter != 1) {
        push_et(p, mo, n);
    } else {
        prev_t = t;
        t = t + ratio;
    }
    float *m = malloc((size_t)n * sizeof(float));
    if (!m) return sdc_fail(SDC_ERR_NOMEM, "PNDMScheduler: out of memory");
    const float *sample = x;
    float *const *e = p->ets;
    const int ne = p->n_ets;
    if (ne == 1 && p->counter == 0) {
        memcpy(m, mo, (size_t)n * sizeof(float));
        memcpy(p->cur_sample, x, (size_t)n * sizeof(float));
        p->has_cur_sample = 1;
    } else if (ne == 1 && p->counter == 1) {
        for (int64_t k = 0; k < n; k++) m[k] = (mo[k] + e[0][k]) / 2.0f;
        sample = p->cur_sample;
        p->has_cur_sample = 0;
    } else if (ne == 2) {
        for (int64_t k = 0; k < n; k++) m[k] = (3.0f * e[1][k] - e[0][k]) / 2.0f;
    } else if (ne == 3) {
        for (int64_t k = 0; k < n; k++) m[k] = (23.0f * e[2][k] - 16.0f * e[1][k] + 5.0f * e[0][k]) / 12.0f;
    } else {
        const float c24 = (float)(1.0 / 24.0);
        for (int64_t k = 0; k < n; k++)
            m[k] = c24 * (55.0f * e[3][k] - 59.0f * e[2][k] + 37.0f * e[1][k] - 9.0f * e[0][k]);
    }
    sdc_status st = prev_sample(s, sample, t, prev_t, m, x, n);
    free(m);
    if (!st) p->counter++;
    return st;
}

static sdc_status step_prk(sdc_scheduler *s, int i, const float *mo, float *x, int64_t n) {
    const sched_config *c = &s->cfg;
    pndm_state *p = s->state;
    const int cnt = p->counter;
    assert(cnt < p->prk_count); /* the 12 PRK calls come first (pndm_step) */
    const int64_t diff_to_prev = cnt % 2 ? 0 : c->num_train_timesteps / s->num_inference_steps / 2;
    const int64_t prev_t = s->ts_int[i] - diff_to_prev;
    const int64_t t = p->prk_ts[cnt / 4 * 4];
    const float c6 = (float)(1.0 / 6.0), c3 = (float)(1.0 / 3.0);
    float *m = malloc((size_t)n * sizeof(float));
    if (!m) return sdc_fail(SDC_ERR_NOMEM, "PNDMScheduler: out of memory");
    float *cm = p->cur_model_output;
    if (cnt % 4 == 0) {
        for (int64_t k = 0; k < n; k++) cm[k] = cm[k] + c6 * mo[k];
        push_et(p, mo, n);
        memcpy(p->cur_sample, x, (size_t)n * sizeof(float));
        p->has_cur_sample = 1;
        memcpy(m, mo, (size_t)n * sizeof(float));
    } else if (cnt % 4 == 1 || cnt % 4 == 2) {
        for (int64_t k = 0; k < n; k++) cm[k] = cm[k] + c3 * mo[k];
        memcpy(m, mo, (size_t)n * sizeof(float));
    } else {
        for (int64_t k = 0; k < n; k++) m[k] = cm[k] + c6 * mo[k];
        memset(cm, 0, (size_t)n * sizeof(float));
    }
    const float *sample = p->has_cur_sample ? p->cur_sample : x;
    sdc_status st = prev_sample(s, sample, t, prev_t, m, x, n);
    free(m);
    if (!st) p->counter++;
    return st;
}

static sdc_status pndm_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                            const sched_gens *gens, float eta, float *x0, float *noise_out) {
    (void)gens, (void)eta, (void)noise_out;
    const pndm_state *p = s->state;
    const int64_t n = (int64_t)batch * per;
    assert(p->n == n); /* scheduler.c started the history for this batch at step 0 */
    if (x0) memset(x0, 0, (size_t)n * sizeof(float)); /* PNDM returns no x0 prediction */
    if (p->counter < p->prk_count && !skip_prk(&s->cfg)) return step_prk(s, i, mo, x, n);
    return step_plms(s, i, mo, x, n);
}

static const char *const aliases[] = {"plms", NULL};
static const char *const a1111_aliases[] = {"plms", NULL};

/* PNDMScheduler.__init__ */
static const sched_key keys[] = {
    SK_INT(num_train_timesteps, 1000), SK_NUM(beta_start, 0.0001), SK_NUM(beta_end, 0.02),
    SK_STR(beta_schedule, "linear"), SK_NULLABLE(trained_betas), SO_BOOL(pndm_opts, skip_prk_steps, 0),
    SK_BOOL(set_alpha_to_one, 0), SK_STR(prediction_type, "epsilon"), SK_STR(timestep_spacing, "leading"),
    SK_INT(steps_offset, 0), SK_END};

const sched_def sched_pndm = {
    .info = {.name = "pndm", .aliases = aliases, .diffusers_class = "PNDMScheduler", .a1111_name = "PLMS",
             .a1111_aliases = a1111_aliases, .schedules = SCHED_SCHEDULES_TIMESTEP},
    .keys = keys,
    .opts_size = sizeof(pndm_opts),
    .calls_per_step = 1,
    .validate = pndm_validate,
    .set_timesteps = pndm_set_timesteps,
    .step = pndm_step,
    .state_create = pndm_state_create,
    .state_free = pndm_state_free,
    .state_reset = pndm_state_reset,
};
