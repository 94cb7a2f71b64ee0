/*
 * The retransmission store of one outgoing video stream: the packets sent,
 * already protected, so that the receiver's generic NACKs (RFC 4585 6.2.1)
 * are answered locally (md_relay.c).  A packet is kept for a time that
 * follows the receiver's round trip: three RTTs, never less than `min_ms`
 * nor more than `max_ms` (min_ms while no RTT is known), and at most
 * `max_packets` packets are kept.  A NACK comes back about one RTT after the
 * packet left, a second request for a lost retransmission one RTT later;
 * the third is margin.  Packets are kept at their real length in 8 KiB
 * chunks, reused once every packet in them is too old, so the memory is
 * what the stream sent in that time plus about a chunk and a half.  Owned
 * by the stream's leg on its worker thread; no locking.
 */
#ifndef MD_RTX_H
#define MD_RTX_H

#include <stddef.h>
#include <stdint.h>

#define MD_RTX_MAX_PACKET 2048 /* longer packets are not stored */
#define MD_RTX_RTTS 3          /* packets are kept for this many round trips */

typedef struct md_rtx md_rtx;

/* max_packets >= 1, 1 <= min_ms <= max_ms. */
md_rtx *md_rtx_new(unsigned max_packets, unsigned min_ms, unsigned max_ms);
md_rtx *md_rtx_free(md_rtx *rtx);

/* The receiver's round trip, from its reports (md_quality_tick.c); < 0:
 * unknown.  Sets how long packets are kept from now on. */
void md_rtx_set_rtt(md_rtx *rtx, double rtt_ms);
/* How long a packet is kept, in ms. */
unsigned md_rtx_keep_ms(const md_rtx *rtx);

/* Stores a copy of the packet sent with seq at now_us (monotonic).
 * Allocates only when the stream needs another chunk. */
void md_rtx_put(md_rtx *rtx, uint16_t seq, const uint8_t *packet, size_t len, int64_t now_us);

/* The packet last stored with seq if it is still kept at now_us, or NULL;
 * valid until the next md_rtx_put() or md_rtx_trim(). */
const uint8_t *md_rtx_get(const md_rtx *rtx, uint16_t seq, int64_t now_us, size_t *ret_len);

/* Frees the chunks whose packets are all too old at now_us (after a burst,
 * or a stream that slowed down or stopped), but one that waits an interval
 * for reuse; called once a second.  Returns the bytes freed. */
size_t md_rtx_trim(md_rtx *rtx, int64_t now_us);

/* Bytes held in chunks (for tests and diagnostics). */
size_t md_rtx_bytes(const md_rtx *rtx);

#endif
