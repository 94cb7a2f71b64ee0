/*
 * The retransmission store of one outgoing video stream: the last packets
 * sent, already protected, so that the receiver's generic NACKs (RFC 4585
 * 6.2.1) are answered locally (md_relay.c).  A packet is findable by its
 * sequence number while it is among the last `slots` sequence numbers sent
 * and no later packet took its index slot.  Packets are kept at their real
 * length in 16 KiB chunks that are allocated as the stream needs them and
 * reused once nothing in them can be asked for, so the memory is that of the
 * last `slots` packets (plus up to two chunks), not `slots` times the
 * largest packet.  Owned by the
 * stream's leg on its worker thread; no locking.
 */
#ifndef MD_RTX_H
#define MD_RTX_H

#include <stddef.h>
#include <stdint.h>

#define MD_RTX_MAX_PACKET 2048 /* longer packets are not stored */

typedef struct md_rtx md_rtx;

/* slots: a power of two (the config's media.nack_buffer_packets, rounded). */
md_rtx *md_rtx_new(unsigned slots);
md_rtx *md_rtx_free(md_rtx *rtx);

/* Stores a copy of the packet sent with seq (it replaces an older one with
 * the same slot).  Allocates only when the stream needs another chunk. */
void md_rtx_put(md_rtx *rtx, uint16_t seq, const uint8_t *packet, size_t len);

/* The stored packet with seq, or NULL; valid until the next md_rtx_put(). */
const uint8_t *md_rtx_get(const md_rtx *rtx, uint16_t seq, size_t *ret_len);

/* Bytes held in chunks (for tests and diagnostics). */
size_t md_rtx_bytes(const md_rtx *rtx);

#endif
