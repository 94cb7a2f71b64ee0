/*
 * Retransmission store (see md_rtx.h).  Chunks form a FIFO of records
 * (sequence number, length, time stored, then the packet), appended to the
 * newest chunk.  A new chunk is started when the newest is full or holds
 * max_packets records; it is the oldest chunk when every packet in it is too
 * old, else the one spare chunk, else a new allocation.  Whenever more than
 * max_packets records are held, the oldest chunk goes (to the spare slot, or
 * freed).  The trim frees the chunks that are too old but one, kept as the
 * spare until a whole interval passes without it being used: a steady
 * stream allocates nothing, and a burst (a late worker or sender catching
 * up) or a stream that stops gives its chunks back.  Each chunk knows the
 * range of sequence numbers it holds, so a lookup reads only the chunks
 * whose range covers the number asked for.  Per packet: one memcpy and a
 * few stores.
 */
#include "md_rtx.h"
#include "md_rtp.h"

#include <glib.h>
#include <stdbool.h>
#include <string.h>

#define CHUNK_BYTES 8192 /* one allocation */

typedef struct rtx_record {
    uint16_t seq, len;
    uint32_t time_ms; /* monotonic ms when stored, modulo 2^32 */
} rtx_record;         /* followed by the packet, padded to 8 bytes */

typedef struct rtx_chunk {
    struct rtx_chunk *next; /* towards the newest */
    uint32_t used;          /* bytes of data[] */
    uint32_t newest_ms;     /* time_ms of its last record */
    /* Every record's seq s has (uint16_t)(s - lo) <= (uint16_t)(hi - lo). */
    uint16_t lo, hi;
    uint16_t count;
    uint16_t pad;
    uint8_t data[];
} rtx_chunk;

G_STATIC_ASSERT(offsetof(rtx_chunk, data) % 8 == 0);
#define CHUNK_DATA (CHUNK_BYTES - offsetof(rtx_chunk, data))
G_STATIC_ASSERT(CHUNK_DATA >= sizeof(rtx_record) + MD_RTX_MAX_PACKET);

struct md_rtx {
    rtx_chunk *oldest, *newest;
    rtx_chunk *spare;
    bool spare_idle;   /* the spare was neither made nor taken since the last trim */
    unsigned n_chunks; /* in the FIFO */
    unsigned packets;  /* records in the FIFO */
    unsigned max_packets;
    unsigned min_ms, max_ms, keep_ms;
};

static uint32_t to_ms(int64_t us)
{
    return (uint32_t)(us / 1000);
}

static size_t record_size(size_t len)
{
    return sizeof(rtx_record) + ((len + 7) & ~(size_t)7);
}

static bool too_old(const md_rtx *rtx, uint32_t time_ms, uint32_t now_ms)
{
    return (uint32_t)(now_ms - time_ms) > rtx->keep_ms;
}

static bool covers(const rtx_chunk *c, uint16_t seq)
{
    return (uint16_t)(seq - c->lo) <= (uint16_t)(c->hi - c->lo);
}

md_rtx *md_rtx_new(unsigned max_packets, unsigned min_ms, unsigned max_ms)
{
    g_return_val_if_fail(max_packets > 0 && min_ms > 0 && min_ms <= max_ms, NULL);
    md_rtx *rtx = g_new0(md_rtx, 1);
    rtx->max_packets = max_packets;
    rtx->min_ms = min_ms;
    rtx->max_ms = max_ms;
    rtx->keep_ms = min_ms;
    return rtx;
}

md_rtx *md_rtx_free(md_rtx *rtx)
{
    if (!rtx)
        return NULL;
    for (rtx_chunk *c = rtx->oldest, *next; c; c = next) {
        next = c->next;
        g_free(c);
    }
    g_free(rtx->spare);
    g_free(rtx);
    return NULL;
}

void md_rtx_set_rtt(md_rtx *rtx, double rtt_ms)
{
    if (!rtx)
        return;
    double keep = rtt_ms < 0 ? 0 : MD_RTX_RTTS * rtt_ms;
    rtx->keep_ms = keep < rtx->min_ms   ? rtx->min_ms
                   : keep > rtx->max_ms ? rtx->max_ms
                                        : (unsigned)keep + 1;
}

unsigned md_rtx_keep_ms(const md_rtx *rtx)
{
    return rtx ? rtx->keep_ms : 0;
}

/* Unlinks the oldest chunk; keeps it as the spare if there is none. */
static void drop_oldest(md_rtx *rtx, bool keep_spare)
{
    rtx_chunk *c = rtx->oldest;
    rtx->oldest = c->next;
    if (!rtx->oldest)
        rtx->newest = NULL;
    rtx->n_chunks--;
    rtx->packets -= c->count;
    if (keep_spare && !rtx->spare) {
        rtx->spare = c;
        rtx->spare_idle = false;
    } else
        g_free(c);
}

/* An empty chunk appended at the newest end. */
static rtx_chunk *next_chunk(md_rtx *rtx, uint32_t now_ms)
{
    rtx_chunk *c;
    if (rtx->oldest && too_old(rtx, rtx->oldest->newest_ms, now_ms)) {
        c = rtx->oldest;
        rtx->oldest = c->next;
        if (!rtx->oldest)
            rtx->newest = NULL;
        rtx->packets -= c->count;
    } else if (rtx->spare) {
        c = rtx->spare;
        rtx->spare = NULL;
        rtx->n_chunks++;
    } else {
        c = g_malloc(CHUNK_BYTES);
        rtx->n_chunks++;
    }
    c->next = NULL;
    c->used = 0;
    c->count = 0;
    if (rtx->newest)
        rtx->newest->next = c;
    else
        rtx->oldest = c;
    rtx->newest = c;
    return c;
}

void md_rtx_put(md_rtx *rtx, uint16_t seq, const uint8_t *packet, size_t len, int64_t now_us)
{
    if (!rtx || len == 0 || len > MD_RTX_MAX_PACKET)
        return;
    uint32_t now_ms = to_ms(now_us);
    size_t need = record_size(len);
    rtx_chunk *c = rtx->newest;
    if (!c || c->used + need > CHUNK_DATA || c->count >= rtx->max_packets)
        c = next_chunk(rtx, now_ms);
    rtx_record *r = (rtx_record *)(c->data + c->used);
    *r = (rtx_record){.seq = seq, .len = (uint16_t)len, .time_ms = now_ms};
    memcpy(r + 1, packet, len);
    c->used += (uint32_t)need;
    c->newest_ms = now_ms;
    if (c->count++ == 0)
        c->lo = c->hi = seq;
    else if (!covers(c, seq) && md_seq_newer(seq, c->hi))
        c->hi = seq;
    else if (!covers(c, seq))
        c->lo = seq;
    rtx->packets++;
    while (rtx->packets > rtx->max_packets) /* never the newest: it holds <= max_packets */
        drop_oldest(rtx, true);
}

const uint8_t *md_rtx_get(const md_rtx *rtx, uint16_t seq, int64_t now_us, size_t *ret_len)
{
    if (!rtx)
        return NULL;
    uint32_t now_ms = to_ms(now_us);
    const rtx_record *found = NULL;
    for (const rtx_chunk *c = rtx->oldest; c; c = c->next) {
        if (!covers(c, seq) || too_old(rtx, c->newest_ms, now_ms))
            continue;
        for (size_t off = 0; off < c->used;) {
            const rtx_record *r = (const rtx_record *)(c->data + off);
            if (r->seq == seq)
                found = r; /* the later copy wins */
            off += record_size(r->len);
        }
    }
    if (!found || too_old(rtx, found->time_ms, now_ms))
        return NULL;
    *ret_len = found->len;
    return (const uint8_t *)(found + 1);
}

size_t md_rtx_trim(md_rtx *rtx, int64_t now_us)
{
    if (!rtx)
        return 0;
    uint32_t now_ms = to_ms(now_us);
    size_t freed = 0;
    if (rtx->spare && rtx->spare_idle) { /* a whole interval unused */
        g_clear_pointer(&rtx->spare, g_free);
        freed += CHUNK_BYTES;
    }
    while (rtx->oldest && too_old(rtx, rtx->oldest->newest_ms, now_ms)) {
        freed += rtx->spare ? CHUNK_BYTES : 0;
        drop_oldest(rtx, true); /* the first one waits as the spare */
    }
    rtx->spare_idle = true;
    return freed;
}

size_t md_rtx_bytes(const md_rtx *rtx)
{
    return rtx ? (size_t)(rtx->n_chunks + (rtx->spare != NULL)) * CHUNK_BYTES : 0;
}
