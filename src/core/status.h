/* status.h - the one error path of the library.
 * Every fallible function returns sdc_status; on failure it has recorded a
 * human-readable message (thread-local) that names the file, key or value at
 * fault. Callers check at once and propagate: `if ((st = f())) return st;`.
 * Nothing in the library calls exit() or abort(). */
#ifndef SDC_CORE_STATUS_H
#define SDC_CORE_STATUS_H

#include "sdc.h"

/* sdc_fail (sdc.h): record a message and return `code`. */

/* Prefix the current message with more context ("loading unet: ..."). */
sdc_status sdc_wrap(sdc_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void sdc_clear_error(void);

#define SDC_TRY(expr)                     \
    do {                                  \
        sdc_status sdc_try_st_ = (expr);  \
        if (sdc_try_st_) return sdc_try_st_; \
    } while (0)

#endif
