/* emulated_graph.h - the emulated device's ops without graph recording
 * (backend_emulated.c), which emulated_graph.c wraps into
 * op_backend_emulated. Internal to src/backend. */
#ifndef SDC_BACKEND_CPU_EMULATED_GRAPH_H
#define SDC_BACKEND_CPU_EMULATED_GRAPH_H

#include "backend/backend.h"

extern const op_backend emu_plain;

#endif
