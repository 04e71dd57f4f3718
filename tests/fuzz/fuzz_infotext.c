/* fuzz_infotext.c - the server's A1111 infotext parser (tools/server) on any
 * text: it returns an object, and the object prints as JSON. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/infotext_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return 0;
    memcpy(s, data, n);
    s[n] = 0;
    cJSON *j = infotext_parse(s);
    if (!j || !cJSON_IsObject(j) || !cJSON_GetObjectItemCaseSensitive(j, "Prompt")) abort();
    char *p = cJSON_PrintUnformatted(j);
    free(p);
    cJSON_Delete(j);
    free(s);
    return 0;
}
