/*
 * The usrsctp adapter (see md_sctp.h for the thread contract).  usrsctp calls
 * us back from inside itself, possibly on another worker's thread (timers are
 * global), with its internal locks held: conn_output() and upcall() therefore
 * never touch an association directly.  They look the association up by its
 * numeric id in a process-wide table under global_lock, queue the packet or
 * note the wake-up there, and, when the owner is not already inside an
 * md_sctp_* call, attach one idle source to the owner's context.  The owner
 * drains the queue and reads the socket in leave(), outside usrsctp, so that
 * our callbacks can call back into md_sctp.  An id that is gone from the
 * table (freed association) makes late packets vanish harmlessly.
 *
 * Lock order: tick_lock, then global_lock (usrsctp_handle_timers() may call
 * conn_output()).  usrsctp_init/finish run under tick_lock, so no tick runs
 * against a library being torn down.
 */
#include "md_sctp.h"
#include "md_err.h"
#include "md_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <usrsctp.h>

/* usrsctp implements this read-only option (netinet/sctp.h) but its public
 * header does not declare it: bytes queued for sending, unacknowledged
 * included. */
#ifndef SCTP_GET_SNDBUF_USE
#define SCTP_GET_SNDBUF_USE 0x00001101
struct sctp_sockstat {
    sctp_assoc_t ss_assoc_id;
    uint32_t ss_total_sndbuf;
    uint32_t ss_total_recv_buf;
};
#endif

#define RECV_SCRATCH (16 * 1024) /* one read; drain_receive() keeps it on the stack */
#define MAX_OUT_PACKETS 2048     /* per association; beyond it SCTP retransmits */
#define MAX_NOTIFICATION 4096
#define PUMP_ROUNDS 64

typedef enum stream_state {
    STREAM_OPEN = 0,
    STREAM_CLOSING_LOCAL,  /* our reset sent first; waiting for the peer's */
    STREAM_CLOSING_REMOTE, /* the peer reset first; ours is queued or in flight */
} stream_state;

struct md_sctp {
    unsigned id; /* usrsctp's AF_CONN address and our table key */
    struct socket *sock;
    GMainContext *ctx;
    GThread *thread;
    md_sctp_callbacks cb;
    void *ud;
    size_t max_send, max_recv, send_buffer, low_threshold;
    uint16_t local_port, remote_port;

    /* Owner thread only. */
    int depth; /* nesting of md_sctp_* calls and callbacks */
    bool started, connected, closed, paused, above_low;
    uint8_t *pend; /* the unaccepted tail of a message (SCTP_EXPLICIT_EOR) */
    size_t pend_len, pend_off;
    uint16_t pend_stream;
    uint32_t pend_ppid;
    uint8_t *rx; /* reassembly of one message; streams do not interleave */
    size_t rx_len, rx_cap;
    uint16_t rx_stream;
    uint32_t rx_ppid;
    bool rx_active, rx_oversize;
    uint8_t notif[MAX_NOTIFICATION];
    size_t notif_len;
    md_sctp_stream_params params[MD_SCTP_MAX_STREAMS];
    uint8_t state[MD_SCTP_MAX_STREAMS];
    uint8_t reset_queued[MD_SCTP_MAX_STREAMS / 8];

    /* Under global_lock (written by usrsctp's callbacks, any thread). */
    GQueue out; /* of GBytes */
    GSource *wake;
};

static GMutex global_lock;
static GMutex tick_lock;
static unsigned global_refs;
static bool global_inited;
static unsigned next_id = 1;
static GHashTable *assocs; /* id -> md_sctp */
static gint64 last_tick_ms;

static void *id_ptr(unsigned id)
{
    return (void *)(uintptr_t)id;
}

/* ---- usrsctp's side (any thread, usrsctp locks held) ---------------------- */

static gboolean on_wake(gpointer data);

/* Under global_lock. */
static void schedule(md_sctp *s)
{
    if (s->wake || (g_thread_self() == s->thread && s->depth > 0))
        return; /* leave() will drain */
    s->wake = g_idle_source_new();
    g_source_set_priority(s->wake, G_PRIORITY_DEFAULT);
    g_source_set_callback(s->wake, on_wake, id_ptr(s->id), NULL);
    g_source_attach(s->wake, s->ctx);
}

static int conn_output(void *addr, void *buf, size_t len, uint8_t tos, uint8_t set_df)
{
    g_mutex_lock(&global_lock);
    md_sctp *s = assocs ? g_hash_table_lookup(assocs, addr) : NULL;
    if (s && s->out.length < MAX_OUT_PACKETS) {
        g_queue_push_tail(&s->out, g_bytes_new(buf, len));
        schedule(s);
    }
    g_mutex_unlock(&global_lock);
    return 0;
}

static void upcall(struct socket *sock, void *arg, int flags)
{
    g_mutex_lock(&global_lock);
    md_sctp *s = assocs ? g_hash_table_lookup(assocs, arg) : NULL;
    if (s)
        schedule(s);
    g_mutex_unlock(&global_lock);
}

/* ---- library lifetime ----------------------------------------------------- */

static void global_ref(md_sctp *s)
{
    g_mutex_lock(&tick_lock);
    g_mutex_lock(&global_lock);
    if (!global_inited) {
        usrsctp_init_nothreads(0, conn_output, NULL);
        /* No ECN over DTLS; as browsers do. */
        usrsctp_sysctl_set_sctp_ecn_enable(0);
        assocs = g_hash_table_new(g_direct_hash, g_direct_equal);
        last_tick_ms = g_get_monotonic_time() / 1000;
        global_inited = true;
    }
    global_refs++;
    s->id = next_id++;
    if (next_id == 0)
        next_id = 1;
    g_mutex_unlock(&global_lock);
    g_mutex_unlock(&tick_lock);
}

static void global_unref(void)
{
    g_mutex_lock(&tick_lock);
    g_mutex_lock(&global_lock);
    bool last = --global_refs == 0;
    g_mutex_unlock(&global_lock);
    /* Sockets closed with SO_LINGER 0 are gone at once, so finish succeeds;
     * if it does not, the library stays up for the next association. */
    if (last && usrsctp_finish() == 0) {
        g_mutex_lock(&global_lock);
        g_hash_table_destroy(assocs);
        assocs = NULL;
        global_inited = false;
        g_mutex_unlock(&global_lock);
    }
    g_mutex_unlock(&tick_lock);
}

void md_sctp_tick(void)
{
    if (!g_mutex_trylock(&tick_lock))
        return; /* another worker is ticking right now */
    if (global_inited) {
        gint64 now = g_get_monotonic_time() / 1000;
        if (now > last_tick_ms) {
            uint32_t elapsed = (uint32_t)MIN(now - last_tick_ms, 1000);
            last_tick_ms = now;
            usrsctp_handle_timers(elapsed);
        }
    }
    g_mutex_unlock(&tick_lock);
}

/* ---- owner side ------------------------------------------------------------ */

static bool pump(md_sctp *s);

static void enter(md_sctp *s)
{
    s->depth++;
}

/* The outermost call drains what usrsctp queued meanwhile. */
static void leave(md_sctp *s)
{
    if (s->depth > 1) {
        s->depth--;
        return;
    }
    int rounds = 0;
    while (pump(s) && ++rounds < PUMP_ROUNDS) {
    }
    s->depth--;
    if (rounds == PUMP_ROUNDS) {
        g_mutex_lock(&global_lock);
        schedule(s); /* more work: come back from the loop */
        g_mutex_unlock(&global_lock);
    }
}

static gboolean on_wake(gpointer data)
{
    g_mutex_lock(&global_lock);
    md_sctp *s = assocs ? g_hash_table_lookup(assocs, data) : NULL;
    if (s && s->wake) {
        g_source_unref(s->wake);
        s->wake = NULL;
    }
    g_mutex_unlock(&global_lock);
    if (s) {
        enter(s);
        leave(s);
    }
    return G_SOURCE_REMOVE;
}

static bool flush_out(md_sctp *s)
{
    bool any = false;
    for (;;) {
        g_mutex_lock(&global_lock);
        GBytes *b = g_queue_pop_head(&s->out);
        g_mutex_unlock(&global_lock);
        if (!b)
            return any;
        gsize len;
        const uint8_t *p = g_bytes_get_data(b, &len);
        s->cb.send(p, len, s->ud);
        g_bytes_unref(b);
        any = true;
    }
}

static void fail(md_sctp *s, int error)
{
    if (s->closed)
        return;
    s->closed = true;
    s->connected = false;
    if (s->cb.on_closed)
        s->cb.on_closed(error, s->ud);
}

static bool bit(const uint8_t *set, uint16_t i)
{
    return set[i / 8] & (1u << (i % 8));
}

static void set_bit(uint8_t *set, uint16_t i, bool on)
{
    if (on)
        set[i / 8] |= (uint8_t)(1u << (i % 8));
    else
        set[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

/* RFC 8831 6.7 / RFC 6525: one SCTP_RESET_STREAMS for every queued stream
 * except one whose message we are still feeding in. */
static bool flush_resets(md_sctp *s)
{
    uint16_t list[MD_SCTP_MAX_STREAMS];
    uint16_t n = 0;

    if (!s->connected)
        return false;
    for (uint16_t i = 0; i < MD_SCTP_MAX_STREAMS; i++)
        if (bit(s->reset_queued, i) && !(s->pend && s->pend_stream == i))
            list[n++] = i;
    if (n == 0)
        return false;
    size_t size = sizeof(struct sctp_reset_streams) + n * sizeof(uint16_t);
    struct sctp_reset_streams *srs = g_malloc0(size);
    srs->srs_assoc_id = SCTP_ALL_ASSOC;
    srs->srs_flags = SCTP_STREAM_RESET_OUTGOING;
    srs->srs_number_streams = n;
    memcpy(srs->srs_stream_list, list, n * sizeof(uint16_t));
    int r = usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_RESET_STREAMS, srs, (socklen_t)size);
    int err = errno;
    g_free(srs);
    if (r < 0) {
        /* EALREADY/EAGAIN/EBUSY: a request is in flight; retried on its event. */
        md_debug("sctp", "stream_reset_deferred", "{s:i, s:i}", "streams", n, "errno", err);
        return false;
    }
    for (uint16_t i = 0; i < n; i++)
        set_bit(s->reset_queued, list[i], false);
    return true;
}

static void queue_reset(md_sctp *s, uint16_t stream)
{
    set_bit(s->reset_queued, stream, true);
}

static void on_stream_reset_event(md_sctp *s, const struct sctp_stream_reset_event *ev, size_t len)
{
    if (len < sizeof(*ev) || ev->strreset_length > len)
        return;
    size_t n = (ev->strreset_length - sizeof(*ev)) / sizeof(uint16_t);
    for (size_t i = 0; i < n; i++) {
        uint16_t sid = ev->strreset_stream_list[i];
        if (sid >= MD_SCTP_MAX_STREAMS)
            continue;
        if (ev->strreset_flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED)) {
            if (ev->strreset_flags & SCTP_STREAM_RESET_OUTGOING_SSN)
                queue_reset(s, sid); /* try again */
            continue;
        }
        if (ev->strreset_flags & SCTP_STREAM_RESET_INCOMING_SSN) {
            bool local_first = s->state[sid] == STREAM_CLOSING_LOCAL;
            if (local_first) {
                s->state[sid] = STREAM_OPEN; /* both directions reset: id free */
            } else {
                s->state[sid] = STREAM_CLOSING_REMOTE;
                queue_reset(s, sid);
            }
            memset(&s->params[sid], 0, sizeof(s->params[sid]));
            if (s->cb.on_stream_closed)
                s->cb.on_stream_closed(sid, s->ud);
        } else if (ev->strreset_flags & SCTP_STREAM_RESET_OUTGOING_SSN) {
            if (s->state[sid] == STREAM_CLOSING_REMOTE)
                s->state[sid] = STREAM_OPEN;
        }
    }
}

static void on_notification(md_sctp *s, const uint8_t *buf, size_t len)
{
    union sctp_notification n;

    if (len < sizeof(n.sn_header))
        return;
    memcpy(&n, buf, MIN(len, sizeof(n)));
    switch (n.sn_header.sn_type) {
    case SCTP_ASSOC_CHANGE:
        if (len < sizeof(n.sn_assoc_change))
            return;
        switch (n.sn_assoc_change.sac_state) {
        case SCTP_COMM_UP:
            if (!s->connected && !s->closed) {
                s->connected = true;
                md_debug("sctp", "connected", "{s:i, s:i}", "out_streams",
                         n.sn_assoc_change.sac_outbound_streams, "in_streams",
                         n.sn_assoc_change.sac_inbound_streams);
                if (s->cb.on_connected)
                    s->cb.on_connected(s->ud);
            }
            break;
        case SCTP_SHUTDOWN_COMP:
            fail(s, 0);
            break;
        case SCTP_COMM_LOST:
        case SCTP_CANT_STR_ASSOC:
            fail(s, -MD_E_SCTP_FAILED);
            break;
        default:
            break;
        }
        break;
    case SCTP_STREAM_RESET_EVENT: {
        /* Variable length: parse from an aligned copy of the whole event. */
        void *copy = g_memdup2(buf, len);
        on_stream_reset_event(s, copy, len);
        g_free(copy);
        break;
    }
    case SCTP_SENDER_DRY_EVENT:
    default:
        break; /* the buffered-amount check in pump() covers dry */
    }
}

static void deliver(md_sctp *s, uint16_t stream, uint32_t ppid, const uint8_t *buf, size_t len)
{
    switch (ppid) {
    case MD_SCTP_PPID_STRING_EMPTY: /* RFC 8831 6.6: one byte to ignore */
        ppid = MD_SCTP_PPID_STRING;
        len = 0;
        break;
    case MD_SCTP_PPID_BINARY_EMPTY:
        ppid = MD_SCTP_PPID_BINARY;
        len = 0;
        break;
    case MD_SCTP_PPID_DCEP:
    case MD_SCTP_PPID_STRING:
    case MD_SCTP_PPID_BINARY:
        break;
    default: /* 52/54 (deprecated partial messages, RFC 8831 8) and unknown */
        if (s->cb.on_stream_error)
            s->cb.on_stream_error(stream, -MD_E_DC_PROTOCOL, s->ud);
        return;
    }
    if (s->cb.on_message)
        s->cb.on_message(stream, ppid, len ? buf : (const uint8_t *)"", len, s->ud);
}

/* A piece of a message; pieces of one message are contiguous (usrsctp's
 * default fragment interleave level does not interleave streams). */
static void on_data(md_sctp *s, uint16_t stream, uint32_t ppid, const uint8_t *buf, size_t len,
                    bool eor)
{
    if (s->rx_active && (stream != s->rx_stream || ppid != s->rx_ppid)) {
        md_debug("sctp", "reassembly_restart", "{s:i}", "stream", stream);
        s->rx_active = false;
    }
    if (!s->rx_active) {
        if (eor && len <= s->max_recv) {
            deliver(s, stream, ppid, buf, len); /* the common case: no copy */
            return;
        }
        s->rx_active = true;
        s->rx_stream = stream;
        s->rx_ppid = ppid;
        s->rx_len = 0;
        s->rx_oversize = false;
    }
    if (!s->rx_oversize && len > s->max_recv - s->rx_len) {
        s->rx_oversize = true;
        g_free(s->rx);
        s->rx = NULL;
        s->rx_cap = 0;
    }
    if (!s->rx_oversize) {
        if (s->rx_len + len > s->rx_cap) {
            size_t cap = MAX(s->rx_cap * 2, 16 * 1024);
            while (cap < s->rx_len + len)
                cap *= 2;
            s->rx_cap = MIN(cap, s->max_recv);
            s->rx = g_realloc(s->rx, s->rx_cap);
        }
        memcpy(s->rx + s->rx_len, buf, len);
        s->rx_len += len;
    }
    if (!eor)
        return;
    s->rx_active = false;
    if (s->rx_oversize) {
        if (s->cb.on_stream_error)
            s->cb.on_stream_error(stream, -MD_E_TOO_LARGE, s->ud);
        md_sctp_close_stream(s, stream);
        return;
    }
    deliver(s, stream, ppid, s->rx, s->rx_len);
    /* Keep a moderate buffer for the next large message, not a huge one. */
    if (s->rx_cap > 256 * 1024) {
        g_free(s->rx);
        s->rx = NULL;
        s->rx_cap = 0;
    }
}

static bool drain_receive(md_sctp *s)
{
    /* On the stack, not per association: a message longer than this is read
     * in parts and reassembled in s->rx (on_data). */
    uint8_t scratch[RECV_SCRATCH];
    bool any = false;
    while (!s->closed && !s->paused) {
        struct sctp_rcvinfo info;
        struct sockaddr_conn from;
        socklen_t fromlen = sizeof(from), infolen = sizeof(info);
        unsigned int infotype = SCTP_RECVV_NOINFO;
        int flags = 0;
        memset(&info, 0, sizeof(info));
        ssize_t n = usrsctp_recvv(s->sock, scratch, sizeof(scratch), (struct sockaddr *)&from,
                                  &fromlen, &info, &infolen, &infotype, &flags);
        if (n < 0) {
            if (errno != EWOULDBLOCK && errno != EAGAIN && errno != ENOTCONN)
                fail(s, -MD_E_SCTP_FAILED);
            break;
        }
        any = true;
        if (n == 0) {
            fail(s, 0); /* end of stream: the peer shut down */
            break;
        }
        if (flags & MSG_NOTIFICATION) {
            if ((size_t)n <= MAX_NOTIFICATION - s->notif_len) {
                memcpy(s->notif + s->notif_len, scratch, (size_t)n);
                s->notif_len += (size_t)n;
            } else {
                s->notif_len = MAX_NOTIFICATION + 1; /* poison until EOR */
            }
            if (flags & MSG_EOR) {
                if (s->notif_len <= MAX_NOTIFICATION)
                    on_notification(s, s->notif, s->notif_len);
                s->notif_len = 0;
            }
            continue;
        }
        if (infotype != SCTP_RECVV_RCVINFO)
            continue;
        on_data(s, info.rcv_sid, ntohl(info.rcv_ppid), scratch, (size_t)n, (flags & MSG_EOR) != 0);
    }
    return any;
}

static ssize_t sendv(md_sctp *s, uint16_t stream, uint32_t ppid, const uint8_t *buf, size_t len)
{
    struct sctp_sendv_spa spa;
    const md_sctp_stream_params *p = &s->params[stream];

    memset(&spa, 0, sizeof(spa));
    spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
    spa.sendv_sndinfo.snd_sid = stream;
    spa.sendv_sndinfo.snd_ppid = htonl(ppid);
    /* SCTP_EXPLICIT_EOR: EOR on every call; a partly accepted call leaves
     * the message open and the next call with the rest completes it. */
    spa.sendv_sndinfo.snd_flags = SCTP_EOR | (p->unordered ? SCTP_UNORDERED : 0);
    if (p->pr != MD_SCTP_PR_NONE) {
        spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
        spa.sendv_prinfo.pr_policy = p->pr == MD_SCTP_PR_RTX ? SCTP_PR_SCTP_RTX : SCTP_PR_SCTP_TTL;
        spa.sendv_prinfo.pr_value = p->pr_value;
    }
    return usrsctp_sendv(s->sock, buf, len, NULL, 0, &spa, (socklen_t)sizeof(spa), SCTP_SENDV_SPA,
                         0);
}

static int map_send_errno(int err)
{
    switch (err) {
    case EWOULDBLOCK:
        return -EAGAIN;
    case EMSGSIZE:
        return -MD_E_TOO_LARGE;
    case ENOTCONN:
        return -ENOTCONN;
    default:
        return -MD_E_SCTP_FAILED;
    }
}

/* Feeds the rest of a partly accepted message. */
static bool resume_pending(md_sctp *s)
{
    if (!s->pend || !s->connected)
        return false;
    ssize_t n =
        sendv(s, s->pend_stream, s->pend_ppid, s->pend + s->pend_off, s->pend_len - s->pend_off);
    if (n < 0) {
        int r = map_send_errno(errno);
        if (r != -EAGAIN)
            fail(s, r);
        return false;
    }
    s->pend_off += (size_t)n;
    if (s->pend_off == s->pend_len) {
        g_free(s->pend);
        s->pend = NULL;
    }
    return n > 0;
}

size_t md_sctp_buffered_amount(md_sctp *s)
{
    struct sctp_sockstat ss;
    socklen_t len = sizeof(ss);
    size_t total = s->pend ? s->pend_len - s->pend_off : 0;

    memset(&ss, 0, sizeof(ss));
    if (s->sock && s->connected &&
        usrsctp_getsockopt(s->sock, IPPROTO_SCTP, SCTP_GET_SNDBUF_USE, &ss, &len) == 0)
        total += ss.ss_total_sndbuf;
    return total;
}

static bool check_low(md_sctp *s)
{
    /* Not while a message is half in: a send would still be refused. */
    if (!s->above_low || s->closed || s->pend || md_sctp_buffered_amount(s) > s->low_threshold)
        return false;
    s->above_low = false;
    if (s->cb.on_buffered_amount_low)
        s->cb.on_buffered_amount_low(s->ud);
    return true;
}

/* One round of the owner's work; true if anything happened. */
static bool pump(md_sctp *s)
{
    bool any = flush_out(s);
    if (s->sock && !s->closed) {
        any |= drain_receive(s);
        any |= resume_pending(s);
        any |= flush_resets(s);
        any |= check_low(s);
    }
    any |= flush_out(s);
    return any;
}

static int set_opt(struct socket *sock, int level, int name, const void *v, socklen_t len)
{
    if (usrsctp_setsockopt(sock, level, name, v, len) < 0) {
        md_debug("sctp", "setsockopt_failed", "{s:i, s:i}", "option", name, "errno", errno);
        return -MD_E_SCTP_FAILED;
    }
    return 0;
}

static int configure(md_sctp *s, size_t receive_buffer)
{
    const int on = 1;
    int sndbuf = (int)s->send_buffer, rcvbuf = (int)receive_buffer;
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* free() aborts at once */
    struct sctp_assoc_value reset = {.assoc_id = SCTP_ALL_ASSOC,
                                     .assoc_value = SCTP_ENABLE_RESET_STREAM_REQ};
    struct sctp_initmsg init = {.sinit_num_ostreams = MD_SCTP_MAX_STREAMS,
                                .sinit_max_instreams = MD_SCTP_MAX_STREAMS};
    static const uint16_t events[] = {SCTP_ASSOC_CHANGE, SCTP_STREAM_RESET_EVENT,
                                      SCTP_SENDER_DRY_EVENT};
    int r;

    if ((r = set_opt(s->sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg))) < 0 ||
        (r = set_opt(s->sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf))) < 0 ||
        (r = set_opt(s->sock, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf))) < 0 ||
        (r = set_opt(s->sock, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &reset, sizeof(reset))) < 0 ||
        (r = set_opt(s->sock, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof(on))) < 0 ||
        (r = set_opt(s->sock, IPPROTO_SCTP, SCTP_EXPLICIT_EOR, &on, sizeof(on))) < 0 ||
        (r = set_opt(s->sock, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof(on))) < 0 ||
        (r = set_opt(s->sock, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof(init))) < 0)
        return r;
    for (size_t i = 0; i < G_N_ELEMENTS(events); i++) {
        struct sctp_event ev = {.se_assoc_id = SCTP_ALL_ASSOC, .se_type = events[i], .se_on = 1};
        if ((r = set_opt(s->sock, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof(ev))) < 0)
            return r;
    }
    return 0;
}

static struct sockaddr_conn conn_addr(const md_sctp *s, uint16_t port)
{
    struct sockaddr_conn a;
    memset(&a, 0, sizeof(a));
    a.sconn_family = AF_CONN;
    a.sconn_port = htons(port);
    a.sconn_addr = id_ptr(s->id);
    return a;
}

int md_sctp_new(const md_sctp_options *opt, GMainContext *ctx, const md_sctp_callbacks *cb,
                void *ud, md_sctp **ret)
{
    md_sctp_options o = opt ? *opt : (md_sctp_options){0};
    md_sctp *s;
    int r;

    if (!cb || !cb->send || !ret)
        return -EINVAL;
    s = g_new0(md_sctp, 1);
    s->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    s->thread = g_thread_self();
    s->cb = *cb;
    s->ud = ud;
    s->local_port = o.local_port ? o.local_port : MD_SCTP_PORT;
    s->remote_port = o.remote_port ? o.remote_port : MD_SCTP_PORT;
    s->max_send = o.max_send_message_size ? o.max_send_message_size : MD_SCTP_DEFAULT_MAX_MESSAGE;
    s->max_send = MIN(s->max_send, MD_SCTP_HARD_MAX_MESSAGE);
    s->max_recv = o.max_receive_message_size ? o.max_receive_message_size : 256 * 1024;
    s->max_recv = MIN(s->max_recv, MD_SCTP_HARD_MAX_MESSAGE);
    s->send_buffer = o.send_buffer ? o.send_buffer : 256 * 1024;
    s->low_threshold = o.buffered_amount_low ? o.buffered_amount_low : s->send_buffer / 4;
    g_queue_init(&s->out);
    global_ref(s);

    usrsctp_register_address(id_ptr(s->id));
    s->sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
    if (!s->sock) {
        md_debug("sctp", "socket_failed", "{s:i}", "errno", errno);
        r = -MD_E_SCTP_FAILED;
        goto fail;
    }
    if (usrsctp_set_non_blocking(s->sock, 1) < 0) {
        r = -MD_E_SCTP_FAILED;
        goto fail;
    }
    if ((r = configure(s, o.receive_buffer ? o.receive_buffer : 1024 * 1024)) < 0)
        goto fail;
    struct sockaddr_conn local = conn_addr(s, s->local_port);
    if (usrsctp_bind(s->sock, (struct sockaddr *)&local, sizeof(local)) < 0) {
        md_debug("sctp", "bind_failed", "{s:i}", "errno", errno);
        r = -MD_E_SCTP_FAILED;
        goto fail;
    }
    g_mutex_lock(&global_lock);
    g_hash_table_insert(assocs, id_ptr(s->id), s);
    g_mutex_unlock(&global_lock);
    usrsctp_set_upcall(s->sock, upcall, id_ptr(s->id));
    *ret = s;
    return 0;
fail:
    md_sctp_free(s);
    return r;
}

int md_sctp_start(md_sctp *s)
{
    if (!s || s->started || s->closed)
        return -EINVAL;
    s->started = true;
    struct sockaddr_conn remote = conn_addr(s, s->remote_port);
    enter(s);
    int r = usrsctp_connect(s->sock, (struct sockaddr *)&remote, sizeof(remote));
    int err = errno;
    leave(s);
    if (r < 0 && err != EINPROGRESS) {
        md_debug("sctp", "connect_failed", "{s:i}", "errno", err);
        return -MD_E_SCTP_FAILED;
    }
    return 0;
}

int md_sctp_input(md_sctp *s, const uint8_t *buf, size_t len)
{
    if (!s || !buf || len == 0)
        return -EINVAL;
    if (s->closed)
        return -MD_E_SCTP_FAILED;
    enter(s);
    usrsctp_conninput(id_ptr(s->id), buf, len, 0);
    leave(s);
    return 0;
}

int md_sctp_set_stream_params(md_sctp *s, uint16_t stream, const md_sctp_stream_params *p)
{
    if (!s || !p || stream >= MD_SCTP_MAX_STREAMS || p->pr > MD_SCTP_PR_TTL)
        return -EINVAL;
    s->params[stream] = *p;
    return 0;
}

int md_sctp_send(md_sctp *s, uint16_t stream, uint32_t ppid, const uint8_t *buf, size_t len)
{
    static const uint8_t zero = 0;
    int r = 0;

    if (!s || stream >= MD_SCTP_MAX_STREAMS || (!buf && len > 0))
        return -EINVAL;
    if (ppid != MD_SCTP_PPID_DCEP && ppid != MD_SCTP_PPID_STRING && ppid != MD_SCTP_PPID_BINARY)
        return -EINVAL;
    if (s->closed)
        return -MD_E_SCTP_FAILED;
    if (!s->connected)
        return -ENOTCONN;
    if (s->state[stream] != STREAM_OPEN || bit(s->reset_queued, stream))
        return -EPIPE;
    if (len > s->max_send)
        return -MD_E_TOO_LARGE;
    if (s->pend) {
        s->above_low = true;
        return -EAGAIN;
    }
    if (len == 0) { /* RFC 8831 6.6 */
        if (ppid == MD_SCTP_PPID_DCEP)
            return -EINVAL;
        ppid = ppid == MD_SCTP_PPID_STRING ? MD_SCTP_PPID_STRING_EMPTY : MD_SCTP_PPID_BINARY_EMPTY;
        buf = &zero;
        len = 1;
    }
    enter(s);
    ssize_t n = sendv(s, stream, ppid, buf, len);
    if (n < 0) {
        r = map_send_errno(errno);
        if (r == -EAGAIN)
            s->above_low = true;
        goto out;
    }
    if ((size_t)n < len) {
        s->pend_len = len - (size_t)n;
        s->pend = g_memdup2(buf + n, s->pend_len);
        s->pend_off = 0;
        s->pend_stream = stream;
        s->pend_ppid = ppid;
    }
    if (s->pend || md_sctp_buffered_amount(s) > s->low_threshold)
        s->above_low = true;
out:
    leave(s);
    return r;
}

int md_sctp_close_stream(md_sctp *s, uint16_t stream)
{
    if (!s || stream >= MD_SCTP_MAX_STREAMS)
        return -EINVAL;
    if (s->closed)
        return -MD_E_SCTP_FAILED;
    if (s->state[stream] != STREAM_OPEN)
        return 0; /* already closing */
    s->state[stream] = STREAM_CLOSING_LOCAL;
    queue_reset(s, stream);
    enter(s);
    leave(s);
    return 0;
}

void md_sctp_set_receive_paused(md_sctp *s, bool paused)
{
    if (!s || s->paused == paused)
        return;
    s->paused = paused;
    enter(s);
    leave(s);
}

int md_sctp_shutdown(md_sctp *s)
{
    if (!s || s->closed)
        return -EINVAL;
    enter(s);
    int r = usrsctp_shutdown(s->sock, SHUT_RDWR);
    int err = errno;
    leave(s);
    if (r < 0 && err != ENOTCONN)
        return -MD_E_SCTP_FAILED;
    return 0;
}

md_sctp *md_sctp_free(md_sctp *s)
{
    GQueue last = G_QUEUE_INIT;

    if (!s)
        return NULL;
    if (s->sock) {
        usrsctp_set_upcall(s->sock, NULL, NULL);
        /* SO_LINGER 0: usrsctp sends an ABORT (RFC 9260 9.1) through
         * conn_output while the id is still registered, and frees the socket
         * at once. */
        usrsctp_close(s->sock);
        s->sock = NULL;
    }
    g_mutex_lock(&global_lock);
    if (assocs)
        g_hash_table_remove(assocs, id_ptr(s->id));
    if (s->wake) {
        g_source_destroy(s->wake);
        g_source_unref(s->wake);
        s->wake = NULL;
    }
    last = s->out;
    g_queue_init(&s->out);
    g_mutex_unlock(&global_lock);
    /* The ABORT (and anything queued before it) goes out through the owner's
     * transport, which must still be alive: md_sctp_free() is called before
     * the DTLS it runs over is freed. */
    GBytes *p;
    while ((p = g_queue_pop_head(&last))) {
        gsize len;
        const uint8_t *d = g_bytes_get_data(p, &len);
        s->cb.send(d, len, s->ud);
        g_bytes_unref(p);
    }
    usrsctp_deregister_address(id_ptr(s->id));
    global_unref();
    g_free(s->pend);
    g_free(s->rx);
    g_main_context_unref(s->ctx);
    g_free(s);
    return NULL;
}
