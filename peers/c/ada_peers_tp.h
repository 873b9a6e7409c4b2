/* The LTTng-UST tracepoint provider the peers bench measures: one event with a 32-byte
 * payload (two u64 and two u32 fields, the shape of an ADA index record). lttng-ust 2.13
 * macros. */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER ada_peers

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./ada_peers_tp.h"

#if !defined(ADA_PEERS_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define ADA_PEERS_TP_H

#include <stdint.h>
#include <lttng/tracepoint.h>

LTTNG_UST_TRACEPOINT_EVENT(
    ada_peers,
    event32,
    LTTNG_UST_TP_ARGS(
        uint64_t, id,
        uint64_t, arg,
        uint32_t, kind,
        uint32_t, thread
    ),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint64_t, id, id)
        lttng_ust_field_integer(uint64_t, arg, arg)
        lttng_ust_field_integer(uint32_t, kind, kind)
        lttng_ust_field_integer(uint32_t, thread, thread)
    )
)

#endif /* ADA_PEERS_TP_H */

#include <lttng/tracepoint-event.h>
