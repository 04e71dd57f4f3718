/* unipc.c - UniPCMultistepScheduler (diffusers 0.30.3): the UniP predictor
 * with the UniC corrector, B(h) = h (bh1) or e^h - 1 (bh2), solver orders
 * 1 to 3, predict_x0 (data prediction, the default) or noise prediction,
 * lower_order_final, disable_corrector. Timesteps and sigmas are the
 * DPM-Solver family's (dpm_common.c); after Karras sigmas the last sigma is
 * the last Karras sigma again (0.30.3 ignores final_sigmas_type there).
 *
 * step i: convert the model output (x0, or eps); unless i = 0 or i - 1 is in
 * disable_corrector, correct the sample with UniC of the previous step's
 * order (from the previous sample, through the new output); then predict
 * the next sample with UniP of order min(solver_order, steps left (with
 * lower_order_final), outputs so far + 1). Coefficients are float32 0-dim
 * tensor math as in the reference; the small linear systems of orders 2-3
 * (torch.linalg.solve) are solved in float64 and rounded. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/dpm_common.h"

#define CLS "UniPCMultistepScheduler"
#define MAX_ORDER 3

/* UniPCMultistepScheduler's own __init__ arguments */
typedef struct {
    int solver_order;
    int predict_x0;
    char solver_type[16]; /* bh1 | bh2 (midpoint, heun, logrho read as bh2) */
    int lower_order_final;
    sched_int_list disable_corrector;
    int has_solver_p; /* solver_p not null (unsupported) */
} unipc_opts;

static unipc_opts opts_of(const sched_config *c) {
    unipc_opts o;
    SCHED_OPTS_GET(unipc_opts, c, &o);
    return o;
}

typedef struct {
    int64_t n;
    float *buf[MAX_ORDER + 1];
    float *out[MAX_ORDER]; /* converted model outputs, newest at out[solver_order - 1] */
    float *spare;
    float *last_sample; /* the (corrected) sample the last prediction started from */
    int this_order;     /* the last prediction's order: the next correction's */
    int lower_order_nums;
} unipc_state;

static sdc_status unipc_state_create(sdc_scheduler *s) {
    if (!(s->state = calloc(1, sizeof(unipc_state)))) return sdc_fail(SDC_ERR_NOMEM, CLS ": out of memory");
    return SDC_OK;
}

static void unipc_state_free(void *state) {
    unipc_state *d = state;
    if (!d) return;
    for (int k = 0; k <= MAX_ORDER; k++) free(d->buf[k]);
    free(d->last_sample);
    free(d);
}

static sdc_status unipc_state_reset(sdc_scheduler *s, int64_t n) {
    unipc_state *d = s->state;
    if (d->n != n) {
        int bad = 0;
        for (int k = 0; k <= MAX_ORDER; k++) {
            free(d->buf[k]);
            bad |= !(d->buf[k] = malloc((size_t)n * sizeof(float)));
        }
        free(d->last_sample);
        bad |= !(d->last_sample = malloc((size_t)n * sizeof(float)));
        d->n = bad ? 0 : n;
        if (bad) return sdc_fail(SDC_ERR_NOMEM, CLS ": out of memory for the step history (%lld floats)", (long long)n);
    }
    for (int k = 0; k < MAX_ORDER; k++) d->out[k] = d->buf[k];
    d->spare = d->buf[MAX_ORDER];
    d->this_order = 0;
    d->lower_order_nums = 0;
    return SDC_OK;
}

static sdc_status unipc_validate(const sched_config *c, int steps) {
    const unipc_opts o = opts_of(c);
    if (strcmp(o.solver_type, "bh1") && strcmp(o.solver_type, "bh2") && strcmp(o.solver_type, "midpoint") &&
        strcmp(o.solver_type, "heun") && strcmp(o.solver_type, "logrho"))
        return sdc_fail(SDC_ERR_ARG, CLS ": solver_type '%s' is not implemented (bh1 or bh2)", o.solver_type);
    if (o.solver_order < 1) return sdc_fail(SDC_ERR_ARG, CLS ": solver_order %d must be at least 1", o.solver_order);
    if (o.solver_order > MAX_ORDER)
        return sdc_fail(SDC_ERR_UNSUPPORTED, CLS ": solver_order %d is not supported (1 to %d)", o.solver_order,
                        MAX_ORDER);
    if (o.has_solver_p) return sdc_fail(SDC_ERR_UNSUPPORTED, CLS ": solver_p is not supported");
    if (c->thresholding) return sdc_fail(SDC_ERR_UNSUPPORTED, CLS ": thresholding (dynamic thresholding) is not supported");
    if (strcmp(c->final_sigmas_type, "zero") && strcmp(c->final_sigmas_type, "sigma_min"))
        return sdc_fail(SDC_ERR_ARG, CLS ": final_sigmas_type '%s' (zero or sigma_min)", c->final_sigmas_type);
    if (!strcmp(c->timestep_spacing, "leading") && steps + 1 > c->num_train_timesteps)
        return sdc_fail(SDC_ERR_ARG, CLS ": too many steps (%d) for leading spacing", steps);
    return SDC_OK;
}

static sdc_status unipc_set_timesteps(sdc_scheduler *s, int n) {
    const sched_config *c = &s->cfg;
    const dpm_schedule_spec spec = {
        .cls = CLS,
        .spacing = c->timestep_spacing,
        .lambda_min_clipped = -INFINITY,
        .last_interp = strcmp(c->final_sigmas_type, "sigma_min") ? DPM_LAST_ZERO : DPM_LAST_SIGMA_MIN,
        .last_formula = DPM_LAST_REPEAT};
    return dpm_schedule(s, n, &spec);
}

/* A x = b for k <= 3 by Gaussian elimination with partial pivoting, in float64 */
static void solve(int k, double A[MAX_ORDER][MAX_ORDER], double *b, double *x) {
    for (int c = 0; c < k; c++) {
        int p = c;
        for (int r = c + 1; r < k; r++)
            if (fabs(A[r][c]) > fabs(A[p][c])) p = r;
        for (int j = 0; j < k; j++) {
            double t = A[c][j];
            A[c][j] = A[p][j], A[p][j] = t;
        }
        double t = b[c];
        b[c] = b[p], b[p] = t;
        for (int r = c + 1; r < k; r++) {
            double f = A[r][c] / A[c][c];
            for (int j = c; j < k; j++) A[r][j] -= f * A[c][j];
            b[r] -= f * b[c];
        }
    }
    for (int r = k - 1; r >= 0; r--) {
        double acc = b[r];
        for (int j = r + 1; j < k; j++) acc -= A[r][j] * x[j];
        x[r] = acc / A[r][r];
    }
}

/* The coefficients of one UniP / UniC update from sigma s0 to sigma t:
 * older[j] is the sigma of the (j + 1)-th older output (j < order - 1). */
typedef struct {
    float c_x, c_m0; /* x_t_ = c_x * x - c_m0 * m0 */
    float c_res;     /* x_t = x_t_ - c_res * (residual) */
    float rk[MAX_ORDER];
    float rho[MAX_ORDER]; /* rhos_p (order - 1 of them) or rhos_c (order) */
} unipc_coef;

static void coefficients(const unipc_opts *o, float sig_t, float sig_s0, const float *older, int order, int corrector,
                         unipc_coef *k) {
    float alpha_t, sigma_t, alpha_s0, sigma_s0;
    dpm_alpha_sigma(sig_t, &alpha_t, &sigma_t);
    dpm_alpha_sigma(sig_s0, &alpha_s0, &sigma_s0);
    const float lambda_t = dpm_logf(alpha_t) - dpm_logf(sigma_t);
    const float lambda_s0 = dpm_logf(alpha_s0) - dpm_logf(sigma_s0);
    const float h = lambda_t - lambda_s0;
    for (int j = 0; j < order - 1; j++) k->rk[j] = (dpm_lambda(older[j]) - lambda_s0) / h;
    k->rk[order - 1] = 1.0f;
    const float hh = o->predict_x0 ? -h : h;
    const float h_phi_1 = dpm_expm1f(hh); /* h phi_1(h) = e^h - 1 */
    const float B_h = strcmp(o->solver_type, "bh1") ? dpm_expm1f(hh) : hh;
    /* b_i = h_phi_k * i! / B_h;  h_phi_(k+1) = h_phi_k / hh - 1 / (i + 1)! */
    float b[MAX_ORDER], h_phi_k = h_phi_1 / hh - 1.0f;
    int factorial = 1;
    for (int i = 1; i <= order; i++) {
        b[i - 1] = h_phi_k * (float)factorial / B_h;
        factorial *= i + 1;
        h_phi_k = h_phi_k / hh - (float)(1.0 / factorial);
    }
    /* R[i][j] = rk[j] ** i; the predictor solves the leading (order - 1) block, order 2 takes 0.5 */
    const int m = corrector ? order : order - 1;
    if (m == 1) { /* rhos_c of order 1, rhos_p of order 2 */
        k->rho[0] = 0.5f;
    } else if (m >= 1) {
        double A[MAX_ORDER][MAX_ORDER], bb[MAX_ORDER], x[MAX_ORDER] = {0};
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < m; j++) A[i][j] = i == 0 ? 1.0 : i == 1 ? (double)k->rk[j] : (double)(k->rk[j] * k->rk[j]);
            bb[i] = (double)b[i];
        }
        solve(m, A, bb, x);
        for (int i = 0; i < m; i++) k->rho[i] = (float)x[i];
    }
    if (o->predict_x0) {
        k->c_x = sigma_t / sigma_s0;
        k->c_m0 = alpha_t * h_phi_1;
        k->c_res = alpha_t * B_h;
    } else {
        k->c_x = alpha_t / alpha_s0;
        k->c_m0 = sigma_t * h_phi_1;
        k->c_res = sigma_t * B_h;
    }
}

/* x_new = c_x * x - c_m0 * m0 - c_res * (sum_j rho_j (m_j - m0) / rk_j [+ rho_last (model_t - m0)]);
 * m[j]: the (j + 1)-th older output; model_t: the corrector's new output (NULL: predictor) */
static void update(const unipc_coef *k, int order, const float *x, const float *m0, const float *const *m,
                   const float *model_t, float *out, int64_t n) {
    const int nd = order - 1;
    for (int64_t q = 0; q < n; q++) {
        float x_t_ = k->c_x * x[q] - k->c_m0 * m0[q];
        float res = 0.0f; /* einsum("k,bkc...->bc...", rhos, D1s), 0 without D1s */
        for (int j = 0; j < nd; j++) res += k->rho[j] * ((m[j][q] - m0[q]) / k->rk[j]);
        if (model_t) res = res + k->rho[order - 1] * (model_t[q] - m0[q]);
        out[q] = x_t_ - k->c_res * res;
    }
}

static int in_list(const sched_int_list *l, int v) {
    for (int i = 0; i < l->n; i++)
        if (l->v[i] == v) return 1;
    return 0;
}

static sdc_status unipc_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                             const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)gens, (void)eta, (void)noise_out;
    const sched_config *c = &s->cfg;
    const unipc_opts o = opts_of(c);
    unipc_state *d = s->state;
    const int64_t n = (int64_t)batch * per;
    const int K = o.solver_order, L = s->n_calls;
    assert(d->n == n && d->lower_order_nums <= i);

    /* convert_model_output into the spare buffer: model_t */
    float a_i, s_i;
    dpm_alpha_sigma(s->sigmas[i], &a_i, &s_i);
    float *model_t = d->spare;
    const int eps = sched_is_eps(c), v = sched_is_v(c);
    for (int64_t q = 0; q < n; q++) {
        float x0 = eps ? (x[q] - s_i * mo[q]) / a_i : v ? a_i * x[q] - s_i * mo[q] : mo[q];
        if (x0_out) x0_out[q] = x0;
        if (o.predict_x0) model_t[q] = x0;
        else model_t[q] = eps ? mo[q] : v ? a_i * mo[q] + s_i * x[q] : (x[q] - a_i * mo[q]) / s_i;
    }

    /* UniC: the sample that arrived at sigma_i, corrected through model_t. Only once a prediction made it
     * (diffusers' last_sample is not None): img2img's first call is past 0 but has none */
    if (i > 0 && d->this_order > 0 && !in_list(&o.disable_corrector, i - 1)) {
        const int order = d->this_order;
        float older[MAX_ORDER];
        const float *m[MAX_ORDER];
        for (int j = 0; j < order - 1; j++) older[j] = s->sigmas[i - (j + 2)], m[j] = d->out[K - 2 - j];
        unipc_coef k;
        coefficients(&o, s->sigmas[i], s->sigmas[i - 1], older, order, 1, &k);
        update(&k, order, d->last_sample, d->out[K - 1], m, model_t, x, n);
    }

    /* model_t becomes the newest output */
    d->spare = d->out[0];
    for (int j = 0; j + 1 < K; j++) d->out[j] = d->out[j + 1];
    d->out[K - 1] = model_t;

    int order = o.lower_order_final && L - i < K ? L - i : K;
    if (order > d->lower_order_nums + 1) order = d->lower_order_nums + 1; /* warm-up */
    d->this_order = order;
    memcpy(d->last_sample, x, (size_t)n * sizeof(float));

    /* UniP from sigma_i to sigma_(i+1) */
    float older[MAX_ORDER];
    const float *m[MAX_ORDER];
    for (int j = 0; j < order - 1; j++) older[j] = s->sigmas[i - (j + 1)], m[j] = d->out[K - 2 - j];
    unipc_coef k;
    coefficients(&o, s->sigmas[i + 1], s->sigmas[i], older, order, 0, &k);
    update(&k, order, d->last_sample, d->out[K - 1], m, NULL, x, n);
    if (d->lower_order_nums < K) d->lower_order_nums++;
    return SDC_OK;
}

static const char *const a1111_aliases[] = {"unipc", NULL};

/* UniPCMultistepScheduler.__init__ */
static const sched_key keys[] = {
    SK_INT(num_train_timesteps, 1000), SK_NUM(beta_start, 0.0001), SK_NUM(beta_end, 0.02),
    SK_STR(beta_schedule, "linear"), SK_NULLABLE(trained_betas), SO_INT(unipc_opts, solver_order, 2),
    SK_STR(prediction_type, "epsilon"), SK_BOOL(thresholding, 0), SK_NUM(dynamic_thresholding_ratio, 0.995),
    SK_NUM(sample_max_value, 1.0), SO_BOOL(unipc_opts, predict_x0, 1), SO_STR(unipc_opts, solver_type, "bh2"),
    SO_BOOL(unipc_opts, lower_order_final, 1), SO_INT_LIST(unipc_opts, disable_corrector),
    SO_NULLABLE(unipc_opts, solver_p), SK_BOOL(use_karras_sigmas, 0), SK_STR(timestep_spacing, "linspace"),
    SK_INT(steps_offset, 0), SK_STR(final_sigmas_type, "zero"), SK_BOOL(rescale_betas_zero_snr, 0), SK_END};

const sched_def sched_unipc = {
    .info = {.name = "unipc", .aliases = NULL, .diffusers_class = CLS, .a1111_name = "UniPC",
             .a1111_aliases = a1111_aliases, .karras_ok = 1, .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = keys,
    .opts_size = sizeof(unipc_opts),
    .calls_per_step = 1,
    .validate = unipc_validate,
    .set_timesteps = unipc_set_timesteps,
    .step = unipc_step,
    .state_create = unipc_state_create,
    .state_free = unipc_state_free,
    .state_reset = unipc_state_reset,
};
