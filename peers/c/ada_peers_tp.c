/* The provider's probes (LTTNG_UST_TRACEPOINT_CREATE_PROBES), the tracepoint definitions
 * (LTTNG_UST_TRACEPOINT_DEFINE) and the one function Rust calls: it fires the tracepoint once.
 * Probes and caller live in one object so that linking the caller also links the probes'
 * registration constructor. */
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "ada_peers_tp.h"

void ada_peers_lttng_event(uint64_t id, uint64_t arg, uint32_t kind, uint32_t thread)
{
    lttng_ust_tracepoint(ada_peers, event32, id, arg, kind, thread);
}
