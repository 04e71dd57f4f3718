/* lms.c - LMSDiscreteScheduler (diffusers 0.30.3): linear multistep of order
 * min(step + 1, 4) over the Euler sigma schedule (schedule_common.c, Karras
 * sigmas optional, final sigma 0), one model call per step.
 *
 * Step t adds sum_k c_k * d_{t-k} to the sample, d the derivatives
 * (x - x0) / sigma of the last `order` steps and c_k the integral from
 * sigma_t to sigma_{t+1} of the Lagrange basis polynomial of node sigma_{t-k}
 * over the nodes sigma_t ... sigma_{t-order+1}. diffusers integrates it with
 * scipy.integrate.quad (QUADPACK qagse, epsrel 1e-4): for these polynomials
 * (degree <= 3) the first 21-point Gauss-Kronrod pass already meets the
 * tolerance, so quad returns that pass, which is reproduced here node for node
 * in float64. The integrand is evaluated as diffusers evaluates it: float32
 * torch arithmetic, since its self.sigmas is a float32 tensor (a Python float
 * minus a 0-dim float32 tensor is float32). The coefficient, a Python float,
 * becomes float32 again when it multiplies a float32 derivative. */
#include <stdlib.h>

#include "sched/sched_internal.h"

#define LMS_ORDER 4

/* the derivatives of the last LMS_ORDER steps of the batch */
typedef struct {
    int64_t n;           /* floats per buffer (0: none yet) */
    float *d[LMS_ORDER]; /* d[0] the latest */
    int count;
} lms_state;

static sdc_status lms_state_create(sdc_scheduler *s) {
    if (!(s->state = calloc(1, sizeof(lms_state))))
        return sdc_fail(SDC_ERR_NOMEM, "LMSDiscreteScheduler: out of memory");
    return SDC_OK;
}

static void lms_state_free(void *state) {
    lms_state *l = state;
    if (!l) return;
    for (int k = 0; k < LMS_ORDER; k++) free(l->d[k]);
    free(l);
}

static sdc_status lms_state_reset(sdc_scheduler *s, int64_t n) {
    lms_state *l = s->state;
    l->count = 0;
    if (l->n == n) return SDC_OK;
    int bad = 0;
    for (int k = 0; k < LMS_ORDER; k++) {
        free(l->d[k]);
        bad |= !(l->d[k] = malloc((size_t)n * sizeof(float)));
    }
    l->n = bad ? 0 : n;
    if (bad)
        return sdc_fail(SDC_ERR_NOMEM, "LMSDiscreteScheduler: out of memory for the step history (%lld floats)",
                        (long long)n);
    return SDC_OK;
}

static sdc_status lms_set_timesteps(sdc_scheduler *s, int n) {
    return sched_sigma_schedule(s, n, s->cfg.use_karras_sigmas, 0);
}

/* diffusers' lms_derivative(tau): prod = 1.0, then prod *= (tau - s[t-k]) /
 * (s[t-cur] - s[t-k]) for k != cur, each factor float32 tensor math (tau
 * rounded to float32) */
static double lms_basis(double tau, const float *sig, int t, int order, int cur) {
    if (order == 1) return 1.0; /* no factor: the Python float 1.0 */
    const float ft = (float)tau;
    float prod = 1.0f;
    for (int k = 0; k < order; k++) {
        if (k == cur) continue;
        prod = prod * ((ft - sig[t - k]) / (sig[t - cur] - sig[t - k]));
    }
    return (double)prod;
}

/* QUADPACK's 21-point Gauss-Kronrod nodes and weights (dqk21): xgk[1], xgk[3],
 * ... are the 10-point Gauss nodes, wg their Gauss weights */
static const double xgk[11] = {0.995657163025808080735527280689003,
                               0.973906528517171720077964012084452,
                               0.930157491355708226001207180059508,
                               0.865063366688984510732096688423493,
                               0.780817726586416897063717578345042,
                               0.679409568299024406234327365114874,
                               0.562757134668604683339000099272694,
                               0.433395394129247190799265943165784,
                               0.294392862701460198131126603103866,
                               0.148874338981631210884826001129720,
                               0.0};
static const double wgk[11] = {
    0.011694638867371874278064396062192, 0.032558162307964727478818972459390, 0.054755896574351996031381300244580,
    0.075039674810919952767043140916190, 0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
    0.123491976262065851077958109831074, 0.134709217311473325928054001771707, 0.142775938577060080797094273138717,
    0.147739104901338491374841515972068, 0.149445554002916905664936468389821};

/* get_lms_coefficient(order, t, cur): quad over [sigma_t, sigma_{t+1}] = the
 * Kronrod sum of dqk21 in its order of evaluation (the integration direction
 * only flips the sign of hlgth, and the result's sign back) */
static double lms_coefficient(const float *sig, int t, int order, int cur) {
    const double a = (double)sig[t], b = (double)sig[t + 1];
    const double centr = 0.5 * (a + b), hlgth = 0.5 * (b - a);
    double resk = wgk[10] * lms_basis(centr, sig, t, order, cur);
    for (int j = 1; j <= 5; j++) { /* the Gauss nodes first, then the Kronrod ones */
        const int jtw = 2 * j - 1;
        const double absc = hlgth * xgk[jtw];
        const double fsum = lms_basis(centr - absc, sig, t, order, cur) + lms_basis(centr + absc, sig, t, order, cur);
        resk = resk + wgk[jtw] * fsum;
    }
    for (int j = 1; j <= 5; j++) {
        const int jtwm1 = 2 * j - 2;
        const double absc = hlgth * xgk[jtwm1];
        const double fsum = lms_basis(centr - absc, sig, t, order, cur) + lms_basis(centr + absc, sig, t, order, cur);
        resk = resk + wgk[jtwm1] * fsum;
    }
    return resk * hlgth;
}

static sdc_status lms_step(sdc_scheduler *s, int i, const float *mo, float *x, int batch, int64_t per,
                           const sched_gens *gens, float eta, float *x0_out, float *noise_out) {
    (void)gens, (void)eta, (void)noise_out;
    lms_state *l = s->state;
    const int64_t n = (int64_t)batch * per;
    const float sigma = s->sigmas[i];
    const sched_x0 p = sched_x0_at(&s->cfg, sigma);
    /* self.derivatives.append(d), the oldest dropped past LMS_ORDER: d[0] is the newest */
    float *newest = l->d[LMS_ORDER - 1];
    for (int k = LMS_ORDER - 1; k > 0; k--) l->d[k] = l->d[k - 1];
    l->d[0] = newest;
    if (l->count < LMS_ORDER) l->count++;
    for (int64_t q = 0; q < n; q++) {
        const float x0 = sched_x0_of(&p, x[q], mo[q]);
        if (x0_out) x0_out[q] = x0;
        newest[q] = (x[q] - x0) / sigma;
    }
    const int order = i + 1 < LMS_ORDER ? i + 1 : LMS_ORDER;
    float coeff[LMS_ORDER];
    for (int k = 0; k < order; k++) coeff[k] = (float)lms_coefficient(s->sigmas, i, order, k);
    /* prev = sample + sum(coeff_k * d_k, newest first): Python's sum from 0 */
    for (int64_t q = 0; q < n; q++) {
        float acc = 0.0f;
        for (int k = 0; k < order; k++) acc = acc + coeff[k] * l->d[k][q];
        x[q] = x[q] + acc;
    }
    return SDC_OK;
}

static const char *const a1111_aliases[] = {"k_lms", NULL};

/* LMSDiscreteScheduler.__init__ */
static const sched_key keys[] = {SK_INT(num_train_timesteps, 1000),
                                 SK_NUM(beta_start, 0.0001),
                                 SK_NUM(beta_end, 0.02),
                                 SK_STR(beta_schedule, "linear"),
                                 SK_NULLABLE(trained_betas),
                                 SK_BOOL(use_karras_sigmas, 0),
                                 SK_STR(prediction_type, "epsilon"),
                                 SK_STR(timestep_spacing, "linspace"),
                                 SK_INT(steps_offset, 0),
                                 SK_END};

const sched_def sched_lms = {
    .info = {.name = "lms",
             .diffusers_class = "LMSDiscreteScheduler",
             .a1111_name = "LMS",
             .a1111_aliases = a1111_aliases,
             .karras_ok = 1,
             .schedules = SCHED_SCHEDULES_SIGMA},
    .keys = keys,
    .calls_per_step = 1,
    .set_timesteps = lms_set_timesteps,
    .scale_model_input = sched_scale_by_sigma,
    .step = lms_step,
    .state_create = lms_state_create,
    .state_free = lms_state_free,
    .state_reset = lms_state_reset,
};
