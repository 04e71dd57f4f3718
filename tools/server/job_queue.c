/* job_queue.c - one worker thread owns the model and runs one txt2img job at
 * a time; request threads queue jobs (a bounded FIFO) and wait for them.
 * The worker keeps A1111's progress state (job_no of job_count iterations,
 * sampling_step of sampling_steps) for /progress, and its progress callback
 * returns the interrupt flag so a job stops at the next denoising step.
 * One mutex guards everything here; the worker never holds it while it
 * computes. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

struct job_queue {
    sdc_model *model;
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t work, done; /* work: a job was queued or stop; done: some job finished */
    jq_job **ring;             /* waiting jobs, FIFO */
    int cap, head, count;
    jq_job *running;
    int interrupt, stopping;
    jq_progress prog;
};

static double now_realtime(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int on_step(void *ctx, int step, int total) {
    job_queue *q = ctx;
    pthread_mutex_lock(&q->mu);
    q->prog.sampling_step = step;
    q->prog.sampling_steps = total;
    int stop = q->interrupt;
    pthread_mutex_unlock(&q->mu);
    return stop;
}

/* n_iter calls of sdc_generate; the error message is thread-local, so it is copied here */
static void run_job(job_queue *q, jq_job *j) {
    for (int it = 0; it < j->n_iter; it++) {
        pthread_mutex_lock(&q->mu);
        q->prog.job_no = it;
        q->prog.sampling_step = 0;
        int stop = q->interrupt;
        pthread_mutex_unlock(&q->mu);
        if (stop) {
            j->interrupted = 1;
            break;
        }
        sdc_request r = j->req;
        r.seed = j->req.seed + (uint64_t)it * (uint64_t)j->req.batch;
        r.progress = on_step;
        r.progress_ctx = q;
        sdc_status st = sdc_generate(q->model, &r, &j->images[it], &j->nimages[it]);
        if (st == SDC_ERR_INTERRUPTED) {
            j->interrupted = 1;
            break;
        }
        if (st) {
            j->st = st;
            snprintf(j->error, sizeof j->error, "%s", sdc_last_error());
            break;
        }
        j->iterations_done = it + 1;
    }
}

static void *worker_main(void *arg) {
    job_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->count && !q->stopping) pthread_cond_wait(&q->work, &q->mu);
        if (!q->count) break; /* stopping with nothing left */
        jq_job *j = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        q->running = j;
        q->interrupt = q->stopping; /* an /interrupt before this job began does not touch it */
        q->prog = (jq_progress){.busy = 1, .job_count = j->n_iter, .waiting = q->count, .time_start = now_realtime()};
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(q->prog.job_timestamp, sizeof q->prog.job_timestamp, "%Y%m%d%H%M%S", &tm);
        memcpy(j->job_timestamp, q->prog.job_timestamp, sizeof j->job_timestamp);
        pthread_mutex_unlock(&q->mu);

        run_job(q, j);

        pthread_mutex_lock(&q->mu);
        q->running = NULL;
        q->prog.interrupted = q->interrupt;
        q->prog.busy = 0;
        q->prog.job_count = 0;
        j->result = JQ_DONE;
        j->done = 1;
        pthread_cond_broadcast(&q->done);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int jq_start(job_queue **out, sdc_model *m, int capacity) {
    job_queue *q = calloc(1, sizeof *q);
    if (!q) return -1;
    q->cap = capacity > 0 ? capacity : 1;
    q->ring = calloc((size_t)q->cap, sizeof *q->ring);
    q->model = m;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->done, NULL);
    if (!q->ring || pthread_create(&q->worker, NULL, worker_main, q)) {
        free(q->ring);
        free(q);
        return -1;
    }
    *out = q;
    return 0;
}

int jq_run(job_queue *q, jq_job *j) {
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return j->result = JQ_SHUTDOWN;
    }
    if (q->count == q->cap) {
        pthread_mutex_unlock(&q->mu);
        return j->result = JQ_FULL;
    }
    j->done = 0;
    q->ring[(q->head + q->count) % q->cap] = j;
    q->count++;
    q->prog.waiting = q->count;
    pthread_cond_signal(&q->work);
    while (!j->done) pthread_cond_wait(&q->done, &q->mu);
    int res = j->result;
    pthread_mutex_unlock(&q->mu);
    return res;
}

void jq_interrupt(job_queue *q) {
    pthread_mutex_lock(&q->mu);
    if (q->running) q->interrupt = 1;
    pthread_mutex_unlock(&q->mu);
}

int jq_stopping(job_queue *q) {
    pthread_mutex_lock(&q->mu);
    int s = q->stopping;
    pthread_mutex_unlock(&q->mu);
    return s;
}

void jq_get_progress(job_queue *q, jq_progress *p) {
    pthread_mutex_lock(&q->mu);
    *p = q->prog;
    p->waiting = q->count;
    pthread_mutex_unlock(&q->mu);
}

void jq_stop(job_queue *q) {
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    q->interrupt = 1;
    for (; q->count; q->count--) { /* the waiting jobs never start */
        jq_job *j = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        j->result = JQ_SHUTDOWN;
        j->done = 1;
    }
    pthread_cond_broadcast(&q->done);
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->worker, NULL);
}

void jq_free(job_queue *q) {
    if (!q) return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->done);
    free(q->ring);
    free(q);
}

void jq_job_free_images(jq_job *j) {
    for (int i = 0; i < 64; i++) {
        sdc_images_free(j->images[i], j->nimages[i]);
        j->images[i] = NULL;
        j->nimages[i] = 0;
    }
}
