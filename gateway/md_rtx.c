/*
 * Retransmission store (see md_rtx.h).  Chunks form a FIFO: packets are
 * appended to the newest; when it is full, the oldest chunk is reused if no
 * index entry still points into it, or if all its packets are more than
 * `slots` sequence numbers behind the newest (gaps in the sequence, from
 * loss before the gateway, leave old entries whose slot nobody overwrote);
 * else a new chunk is allocated, up to the number that `slots` packets of
 * MD_RTX_MAX_PACKET bytes would fill (then the oldest is reused anyway).
 * Each chunk counts the index entries pointing into it; an entry records its
 * chunk's generation, which grows on reuse, so an entry into a reused chunk
 * is simply stale.  Per packet: one memcpy and a few stores.
 */
#include "md_rtx.h"
#include "md_rtp.h"

#include <glib.h>
#include <stdbool.h>
#include <string.h>

#define CHUNK_BYTES (16 * 1024)

typedef struct rtx_chunk {
    struct rtx_chunk *next; /* towards the newest */
    uint32_t generation;
    uint32_t used;
    unsigned live;       /* index entries pointing here */
    uint16_t newest_seq; /* of the packets written here (RFC 1982 order) */
    uint8_t data[CHUNK_BYTES];
} rtx_chunk;

typedef struct rtx_entry {
    rtx_chunk *chunk; /* NULL: never written */
    uint32_t generation;
    uint32_t offset;
    uint16_t seq, len;
} rtx_entry;

struct md_rtx {
    rtx_chunk *oldest, *newest;
    unsigned n_chunks, max_chunks;
    unsigned mask;
    uint16_t newest_seq; /* of every packet put */
    rtx_entry index[];
};

static bool entry_live(const rtx_entry *e)
{
    return e->chunk && e->generation == e->chunk->generation;
}

md_rtx *md_rtx_new(unsigned slots)
{
    g_return_val_if_fail(slots && (slots & (slots - 1)) == 0, NULL);
    md_rtx *rtx = g_malloc0(sizeof(*rtx) + slots * sizeof(rtx_entry));
    rtx->mask = slots - 1;
    rtx->max_chunks =
        (unsigned)(((size_t)slots * MD_RTX_MAX_PACKET + CHUNK_BYTES - 1) / CHUNK_BYTES);
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
    g_free(rtx);
    return NULL;
}

/* True when nothing in c can still be asked for: no index entry points into
 * it, or its packets are all older than the last `slots` sequence numbers. */
static bool expired(const md_rtx *rtx, const rtx_chunk *c)
{
    return c->live == 0 || (uint16_t)(rtx->newest_seq - c->newest_seq) > rtx->mask;
}

/* A chunk with room for len more bytes at the newest end. */
static rtx_chunk *room_for(md_rtx *rtx, size_t len)
{
    rtx_chunk *c = rtx->newest;
    if (c && c->used + len <= CHUNK_BYTES)
        return c;
    if (rtx->oldest && rtx->oldest != rtx->newest &&
        (expired(rtx, rtx->oldest) || rtx->n_chunks >= rtx->max_chunks)) {
        c = rtx->oldest; /* reuse: entries still into it go stale */
        rtx->oldest = c->next;
        c->generation++;
    } else if (rtx->n_chunks < rtx->max_chunks || !c) {
        c = g_malloc(sizeof(*c));
        c->generation = 0;
        rtx->n_chunks++;
        if (!rtx->oldest)
            rtx->oldest = c;
    } else { /* one chunk allowed and it is full */
        c->generation++;
        c->used = 0;
        c->live = 0;
        return c;
    }
    c->next = NULL;
    c->used = 0;
    c->live = 0;
    if (rtx->newest)
        rtx->newest->next = c;
    rtx->newest = c;
    return c;
}

void md_rtx_put(md_rtx *rtx, uint16_t seq, const uint8_t *packet, size_t len)
{
    if (!rtx || len == 0 || len > MD_RTX_MAX_PACKET)
        return;
    if (!rtx->newest || md_seq_newer(seq, rtx->newest_seq))
        rtx->newest_seq = seq;
    rtx_entry *e = &rtx->index[seq & rtx->mask];
    if (entry_live(e))
        e->chunk->live--;
    e->chunk = NULL;
    rtx_chunk *c = room_for(rtx, len);
    memcpy(c->data + c->used, packet, len);
    *e = (rtx_entry){.chunk = c,
                     .generation = c->generation,
                     .offset = c->used,
                     .seq = seq,
                     .len = (uint16_t)len};
    if (c->live++ == 0 || md_seq_newer(seq, c->newest_seq))
        c->newest_seq = seq;
    c->used += (uint32_t)len;
}

const uint8_t *md_rtx_get(const md_rtx *rtx, uint16_t seq, size_t *ret_len)
{
    if (!rtx)
        return NULL;
    const rtx_entry *e = &rtx->index[seq & rtx->mask];
    if (!entry_live(e) || e->seq != seq)
        return NULL;
    *ret_len = e->len;
    return e->chunk->data + e->offset;
}

size_t md_rtx_bytes(const md_rtx *rtx)
{
    return rtx ? (size_t)rtx->n_chunks * sizeof(rtx_chunk) : 0;
}
