/*
 * The generator's batched media path (docs/internals/bench.md, "Batching").
 * Once a peer's ICE pair is selected (READY) and SRTP is up, the peer stops
 * receiving through libnice (nice_agent_attach_recv() with no callback
 * pauses libnice's reading) and its selected UDP socket joins its media
 * thread's epoll set.  One readiness event drains every ready socket with
 * recvmmsg(2); the pacer hands each peer's due packets to sendmmsg(2) in one
 * call.  So the media thread's main loop polls one descriptor instead of
 * every peer's socket, and a burst costs one system call, not one per
 * datagram.
 *
 * libnice no longer reads that socket, so this file answers the STUN
 * Binding requests that still arrive on it (consent freshness, RFC 7675,
 * which madoguchi sends every ~5 s) with libnice's own STUN usage code,
 * as libnice would (RFC 8445 7.3).  Indications and responses are dropped:
 * after READY the generator's own agent sends only Binding indications
 * (keepalives, RFC 8445 11), which need no answer.
 */
#include "mdb.h"

#include "md_bytes.h"

#include <agent.h>
#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <stun/stunagent.h>
#include <stun/usages/ice.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 32           /* datagrams per recvmmsg / sendmmsg */
#define DATAGRAM 2048      /* an RTP packet, its trailer and the SRTP tag fit */
#define DRAIN_ROUNDS 8     /* recvmmsg calls per socket per readiness event */
#define EVENTS 64          /* sockets per epoll_wait */
#define STUN_HEADER_LEN 20 /* RFC 5389 6 */
#define STUN_COOKIE 0x2112A442u

struct mdb_io {
    int epfd;
    GSource *source;
    mdb_stats *stats;
    struct mmsghdr rx_msgs[BATCH];
    struct iovec rx_iov[BATCH];
    struct sockaddr_storage rx_from[BATCH];
    uint8_t rx_buf[BATCH][DATAGRAM];
    struct mmsghdr tx_msgs[BATCH];
    struct iovec tx_iov[BATCH];
    uint8_t tx_buf[BATCH][DATAGRAM];
    size_t tx_n;
};

struct mdb_io_link {
    mdb_io *io;
    GSocket *socket; /* libnice's, one reference held */
    int fd;
    struct sockaddr_storage remote;
    socklen_t remote_len;
    StunAgent stun;
    gchar *ufrag, *pwd; /* ours: the Binding requests we answer carry them */
    bool controlling;
    uint64_t tie;
    mdb_io_packet_fn on_packet;
    void *ud;
};

static const uint16_t stun_known[] = {
    STUN_ATTRIBUTE_USERNAME,        STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
    STUN_ATTRIBUTE_FINGERPRINT,     STUN_ATTRIBUTE_PRIORITY,
    STUN_ATTRIBUTE_USE_CANDIDATE,   STUN_ATTRIBUTE_ICE_CONTROLLED,
    STUN_ATTRIBUTE_ICE_CONTROLLING, 0};

/* A STUN message (RFC 5389 6: two zero bits, the magic cookie); a
 * request has both class bits clear. */
static bool stun_request(const uint8_t *b, size_t len)
{
    if (len < STUN_HEADER_LEN || (b[0] & 0xC0) != 0 || md_get_u32(b + 4) != STUN_COOKIE)
        return false;
    return (md_get_u16(b) & 0x0110) == 0;
}

static bool stun_password(StunAgent *agent, StunMessage *msg, uint8_t *username,
                          uint16_t username_len, uint8_t **ret_password, size_t *ret_len,
                          void *data)
{
    mdb_io_link *l = data;
    size_t n = strlen(l->ufrag);
    /* USERNAME is "<our ufrag>:<their ufrag>" in a request to us (RFC 8445 7.2.2) */
    if (username_len <= n || memcmp(username, l->ufrag, n) != 0 || username[n] != ':')
        return false;
    *ret_password = (uint8_t *)l->pwd;
    *ret_len = strlen(l->pwd);
    return true;
}

static void stun_answer(mdb_io_link *l, uint8_t *buf, size_t len,
                        const struct sockaddr_storage *from, socklen_t from_len)
{
    StunMessage req, resp;
    uint8_t out[512];
    size_t out_len = sizeof(out);
    if (stun_agent_validate(&l->stun, &req, buf, len, stun_password, l) != STUN_VALIDATION_SUCCESS)
        return;
    bool control = l->controlling;
    if (stun_usage_ice_conncheck_create_reply(
            &l->stun, &req, &resp, out, &out_len, from, from_len, &control, l->tie,
            STUN_USAGE_ICE_COMPATIBILITY_RFC5245) == STUN_USAGE_ICE_RETURN_SUCCESS &&
        out_len > 0 &&
        sendto(l->fd, out, out_len, MSG_DONTWAIT, (const struct sockaddr *)from, from_len) ==
            (ssize_t)out_len)
        l->io->stats->stun_answered++;
}

static void drain(mdb_io_link *l)
{
    mdb_io *io = l->io;
    for (int round = 0; round < DRAIN_ROUNDS; round++) {
        for (int i = 0; i < BATCH; i++) {
            io->rx_iov[i] = (struct iovec){.iov_base = io->rx_buf[i], .iov_len = DATAGRAM};
            io->rx_msgs[i].msg_hdr = (struct msghdr){.msg_name = &io->rx_from[i],
                                                     .msg_namelen = sizeof(io->rx_from[i]),
                                                     .msg_iov = &io->rx_iov[i],
                                                     .msg_iovlen = 1};
        }
        int n = recvmmsg(l->fd, io->rx_msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        io->stats->rx_calls++;
        io->stats->rx_datagrams += (uint64_t)n;
        for (int i = 0; i < n; i++) {
            uint8_t *b = io->rx_buf[i];
            size_t len = io->rx_msgs[i].msg_len;
            if (io->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
                continue;
            if (stun_request(b, len))
                stun_answer(l, b, len, &io->rx_from[i], io->rx_msgs[i].msg_hdr.msg_namelen);
            else
                l->on_packet(l->ud, b, len);
        }
        if (n < BATCH)
            return;
    }
}

static gboolean on_ready(gint fd, GIOCondition cond, gpointer data)
{
    mdb_io *io = data;
    struct epoll_event ev[EVENTS];
    int n = epoll_wait(io->epfd, ev, EVENTS, 0);
    for (int i = 0; i < n; i++)
        drain(ev[i].data.ptr);
    return G_SOURCE_CONTINUE;
}

int mdb_io_new(GMainContext *ctx, mdb_stats *stats, mdb_io **ret)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    mdb_io *io = g_new0(mdb_io, 1);
    io->epfd = epfd;
    io->stats = stats;
    io->source = g_unix_fd_source_new(epfd, G_IO_IN);
    g_source_set_callback(io->source, G_SOURCE_FUNC(on_ready), io, NULL);
    g_source_attach(io->source, ctx);
    *ret = io;
    return 0;
}

void mdb_io_free(mdb_io *io)
{
    if (!io)
        return;
    g_source_destroy(io->source);
    g_source_unref(io->source);
    close(io->epfd);
    g_free(io);
}

int mdb_io_link_new(mdb_io *io, NiceAgent *agent, guint stream_id, guint component,
                    bool controlling, int rcvbuf_bytes, mdb_io_packet_fn on_packet, void *ud,
                    mdb_io_link **ret)
{
    NiceCandidate *local = NULL, *remote = NULL;
    if (!nice_agent_get_selected_pair(agent, stream_id, component, &local, &remote) || !remote)
        return -ENOTCONN;
    GSocket *socket = nice_agent_get_selected_socket(agent, stream_id, component);
    if (!socket) /* a relayed pair: libnice frames what it sends */
        return -ENOTSUP;
    mdb_io_link *l = g_new0(mdb_io_link, 1);
    l->io = io;
    l->socket = socket;
    l->fd = g_socket_get_fd(socket);
    l->remote_len =
        (socklen_t)(nice_address_ip_version(&remote->addr) == 6 ? sizeof(struct sockaddr_in6)
                                                                : sizeof(struct sockaddr_in));
    nice_address_copy_to_sockaddr(&remote->addr, (struct sockaddr *)&l->remote);
    nice_agent_get_local_credentials(agent, stream_id, &l->ufrag, &l->pwd);
    l->controlling = controlling;
    l->tie = ((uint64_t)g_random_int() << 32) | g_random_int();
    l->on_packet = on_packet;
    l->ud = ud;
    stun_agent_init(&l->stun, stun_known, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
    if (rcvbuf_bytes > 0 &&
        setsockopt(l->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_bytes, sizeof(rcvbuf_bytes)) < 0)
        setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof(rcvbuf_bytes));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
    if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
        int r = -errno;
        l->fd = -1;
        mdb_io_link_free(l);
        return r;
    }
    *ret = l;
    return 0;
}

mdb_io_link *mdb_io_link_free(mdb_io_link *l)
{
    if (!l)
        return NULL;
    if (l->fd >= 0)
        epoll_ctl(l->io->epfd, EPOLL_CTL_DEL, l->fd, NULL);
    g_object_unref(l->socket);
    g_free(l->ufrag);
    g_free(l->pwd);
    g_free(l);
    return NULL;
}

uint8_t *mdb_io_tx_slot(mdb_io *io, size_t *ret_cap)
{
    if (io->tx_n == BATCH)
        return NULL;
    *ret_cap = DATAGRAM;
    return io->tx_buf[io->tx_n];
}

void mdb_io_tx_commit(mdb_io *io, size_t len)
{
    size_t i = io->tx_n++;
    io->tx_iov[i] = (struct iovec){.iov_base = io->tx_buf[i], .iov_len = len};
}

int mdb_io_tx_flush(mdb_io_link *l)
{
    mdb_io *io = l->io;
    size_t done = 0;
    while (done < io->tx_n) {
        for (size_t i = done; i < io->tx_n; i++)
            io->tx_msgs[i].msg_hdr = (struct msghdr){.msg_name = &l->remote,
                                                     .msg_namelen = l->remote_len,
                                                     .msg_iov = &io->tx_iov[i],
                                                     .msg_iovlen = 1};
        int n = sendmmsg(l->fd, io->tx_msgs + done, (unsigned)(io->tx_n - done), MSG_DONTWAIT);
        if (n <= 0)
            break; /* a full send buffer: what is left is lost, like a late sender's */
        io->stats->tx_calls++;
        io->stats->tx_datagrams += (uint64_t)n;
        done += (size_t)n;
    }
    io->tx_n = 0;
    return (int)done;
}
