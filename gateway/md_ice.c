/*
 * libnice adapter (see md_ice.h); the only file that includes <nice/agent.h>.
 * The agent is created with trickle (RFC 8838) and consent freshness
 * (RFC 7675, libnice >= 0.1.19: consent requests every ~5 s, a component
 * whose consent expires goes to FAILED; a cut path is noticed in 7-8 s here).  Credentials are our
 * own random ice-chars so their length is fixed (RFC 8445 5.3 asks for at least 24 bits of
 * randomness in the ufrag and 128 in the password).  All signals are delivered on the worker
 * context passed to nice_agent_new_full().
 *
 * ICE-TCP (RFC 6544): libnice gathers an active and a passive TCP host
 * candidate per address and sets their priorities itself (RFC 6544 4.2:
 * direction preference in the top bits of the local preference, TCP below
 * UDP in libnice's type preference).  We advertise only the passive one: the
 * gateway has a public address and the client is the one behind a UDP-blocking
 * firewall, so the client connects to us (RFC 6544 4.5: an active candidate's
 * port is 9 and it is never listened on, so advertising ours would be of use
 * only to a passive client, which a firewalled client is not).  For the same
 * reason remote passive candidates are refused: accepting them would let a
 * client make the gateway open TCP connections to any address it names.
 * RFC 4571 framing is done inside libnice, so DTLS and SRTP above see the
 * same datagrams as over UDP.
 */
#include "md_ice.h"
#include "md_crypto.h"
#include "md_err.h"

#include <errno.h>
#include <nice/agent.h>
#include <sys/socket.h>
#include <string.h>

#define COMPONENT 1

struct md_ice {
    NiceAgent *agent;
    guint stream;
    GMainContext *ctx;
    md_ice_callbacks cb;
    void *ud;
    char *public_address;
    char *bind_address;
    unsigned port_min, port_max, receive_buffer;
    bool ice_tcp;
    char ufrag[MD_ICE_UFRAG_LEN + 1];
    char pwd[MD_ICE_PWD_LEN + 1];
    bool gathering, gathering_done, connected, failed;
    GQueue held; /* GBytes *: md_ice_send_or_hold() before a pair was selected */
    size_t held_bytes;
};

static void drop_held(md_ice *ice)
{
    GBytes *b;
    while ((b = g_queue_pop_head(&ice->held)))
        g_bytes_unref(b);
    ice->held_bytes = 0;
}

static void send_held(md_ice *ice)
{
    GBytes *b;
    while ((b = g_queue_pop_head(&ice->held))) {
        gsize len;
        const gchar *data = g_bytes_get_data(b, &len);
        nice_agent_send(ice->agent, ice->stream, COMPONENT, (guint)len, data);
        g_bytes_unref(b);
    }
    ice->held_bytes = 0;
}

static int random_ice_chars(char *out, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t raw[64];
    if (n > sizeof(raw) || md_random_bytes(raw, n) < 0)
        return -MD_E_CRYPTO;
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[raw[i] & 63];
    out[n] = '\0';
    md_wipe(raw, sizeof(raw));
    return 0;
}

static int new_local_credentials(md_ice *ice)
{
    int r = random_ice_chars(ice->ufrag, MD_ICE_UFRAG_LEN);
    if (r == 0)
        r = random_ice_chars(ice->pwd, MD_ICE_PWD_LEN);
    if (r == 0 && !nice_agent_set_local_credentials(ice->agent, ice->stream, ice->ufrag, ice->pwd))
        r = -EIO;
    return r;
}

/* "candidate:..." for a local candidate, host addresses replaced by the
 * advertised 1:1 NAT address (the agent still owns the private socket). */
static char *candidate_text(md_ice *ice, NiceCandidate *cand)
{
    NiceCandidate *shown = cand;
    NiceCandidate *copy = NULL;
    if (ice->public_address && cand->type == NICE_CANDIDATE_TYPE_HOST) {
        copy = nice_candidate_copy(cand);
        guint port = nice_address_get_port(&cand->addr);
        if (nice_address_set_from_string(&copy->addr, ice->public_address)) {
            nice_address_set_port(&copy->addr, port);
            copy->base_addr = copy->addr; /* no raddr revealing the private address */
            shown = copy;
        }
    }
    gchar *sdp = nice_agent_generate_local_candidate_sdp(ice->agent, shown);
    if (copy)
        nice_candidate_free(copy);
    if (!sdp)
        return NULL;
    char *text = g_str_has_prefix(sdp, "a=") ? g_strdup(sdp + 2) : g_strdup(sdp);
    g_free(sdp);
    return text;
}

/* RFC 6544 4.5: only our passive TCP candidates are worth advertising (see
 * the top of the file). */
static bool advertised(const NiceCandidate *cand)
{
    return cand->transport == NICE_CANDIDATE_TRANSPORT_UDP ||
           cand->transport == NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE;
}

static void on_new_candidate(NiceAgent *agent, NiceCandidate *cand, gpointer data)
{
    md_ice *ice = data;
    if (cand->stream_id != ice->stream || cand->component_id != COMPONENT || ice->gathering ||
        !advertised(cand))
        return;
    char *text = candidate_text(ice, cand);
    if (text)
        ice->cb.on_candidate(text, ice->ud);
    g_free(text);
}

static void on_gathering_done(NiceAgent *agent, guint stream, gpointer data)
{
    md_ice *ice = data;
    if (stream != ice->stream || ice->gathering_done)
        return;
    ice->gathering_done = true;
    if (!ice->gathering)
        ice->cb.on_candidate(NULL, ice->ud);
}

static void on_state_changed(NiceAgent *agent, guint stream, guint component, guint state,
                             gpointer data)
{
    md_ice *ice = data;
    if (stream != ice->stream || component != COMPONENT)
        return;
    if (state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY) {
        ice->failed = false;
        if (!ice->connected) {
            ice->connected = true;
            send_held(ice);
            ice->cb.on_state(MD_ICE_CONNECTED, ice->ud);
        }
    } else if (state == NICE_COMPONENT_STATE_FAILED && !ice->failed) {
        ice->failed = true;
        ice->connected = false;
        ice->cb.on_state(MD_ICE_FAILED, ice->ud);
    }
}

/* A leg's media arrives on its selected socket in bursts (a keyframe is
 * dozens of packets) while the worker may be busy with other legs; the
 * kernel's default receive buffer (~208 KiB) then overflows.  The kernel
 * caps the size at net.core.rmem_max (doubled); the operator raises that
 * sysctl for larger buffers (docs/configuration.md). */
static void on_selected_pair(NiceAgent *agent, guint stream, guint component, NiceCandidate *local,
                             NiceCandidate *remote, gpointer data)
{
    md_ice *ice = data;
    (void)local;
    (void)remote;
    if (stream != ice->stream || component != COMPONENT || !ice->receive_buffer)
        return;
    GSocket *sock = nice_agent_get_selected_socket(agent, stream, component);
    if (!sock)
        return;
    g_socket_set_option(sock, SOL_SOCKET, SO_RCVBUF, (gint)ice->receive_buffer, NULL);
    g_object_unref(sock);
}

static void on_recv(NiceAgent *agent, guint stream, guint component, guint len, gchar *buf,
                    gpointer data)
{
    md_ice *ice = data;
    if (len > 0)
        ice->cb.on_packet((const uint8_t *)buf, len, ice->ud);
}

static void drop_agent(md_ice *ice)
{
    drop_held(ice);
    if (!ice->agent)
        return;
    g_signal_handlers_disconnect_by_data(ice->agent, ice);
    if (ice->stream) {
        nice_agent_attach_recv(ice->agent, ice->stream, COMPONENT, ice->ctx, NULL, NULL);
        nice_agent_remove_stream(ice->agent, ice->stream);
    }
    g_clear_object(&ice->agent);
    ice->stream = 0;
}

/* A new agent with one stream, new local credentials and its host
 * candidates gathered (synchronously: they are read back with
 * md_ice_local_candidates()). */
static int new_agent(md_ice *ice)
{
    ice->agent =
        nice_agent_new_full(ice->ctx, NICE_COMPATIBILITY_RFC5245,
                            NICE_AGENT_OPTION_ICE_TRICKLE | NICE_AGENT_OPTION_CONSENT_FRESHNESS);
    g_object_set(ice->agent, "controlling-mode", FALSE, "ice-udp", TRUE, "ice-tcp",
                 (gboolean)ice->ice_tcp, "upnp", FALSE, NULL);
    ice->gathering_done = ice->connected = ice->failed = false;
    if (ice->bind_address) {
        NiceAddress addr;
        nice_address_init(&addr);
        if (!nice_address_set_from_string(&addr, ice->bind_address))
            return -EINVAL;
        if (!nice_agent_add_local_address(ice->agent, &addr))
            return -EINVAL;
    }
    ice->stream = nice_agent_add_stream(ice->agent, 1);
    if (ice->stream == 0)
        return -EIO;
    if (ice->port_min || ice->port_max)
        nice_agent_set_port_range(ice->agent, ice->stream, COMPONENT, ice->port_min, ice->port_max);
    int r = new_local_credentials(ice);
    if (r < 0)
        return r;
    g_signal_connect(ice->agent, "new-candidate-full", G_CALLBACK(on_new_candidate), ice);
    g_signal_connect(ice->agent, "candidate-gathering-done", G_CALLBACK(on_gathering_done), ice);
    g_signal_connect(ice->agent, "component-state-changed", G_CALLBACK(on_state_changed), ice);
    g_signal_connect(ice->agent, "new-selected-pair-full", G_CALLBACK(on_selected_pair), ice);
    if (!nice_agent_attach_recv(ice->agent, ice->stream, COMPONENT, ice->ctx, on_recv, ice))
        return -EIO;
    ice->gathering = true;
    gboolean ok = nice_agent_gather_candidates(ice->agent, ice->stream);
    ice->gathering = false;
    return ok ? 0 : -EIO;
}

int md_ice_new(GMainContext *ctx, const md_ice_options *opt, const md_ice_callbacks *cb, void *ud,
               md_ice **ret)
{
    md_ice *ice = g_new0(md_ice, 1);
    ice->ctx = ctx;
    ice->cb = *cb;
    ice->ud = ud;
    ice->ice_tcp = opt->ice_tcp;
    ice->port_min = opt->port_min;
    ice->port_max = opt->port_max;
    ice->receive_buffer = opt->receive_buffer;
    if (opt->bind_address && opt->bind_address[0])
        ice->bind_address = g_strdup(opt->bind_address);
    int r = 0;
    if (opt->public_address && opt->public_address[0]) {
        NiceAddress probe;
        if (!nice_address_set_from_string(&probe, opt->public_address))
            r = -EINVAL;
        ice->public_address = g_strdup(opt->public_address);
    }
    if (r == 0)
        r = new_agent(ice);
    if (r < 0) {
        md_ice_free(ice);
        return r;
    }
    *ret = ice;
    return 0;
}

md_ice *md_ice_free(md_ice *ice)
{
    if (!ice)
        return NULL;
    drop_agent(ice);
    g_free(ice->public_address);
    g_free(ice->bind_address);
    md_wipe(ice->pwd, sizeof(ice->pwd));
    g_free(ice);
    return NULL;
}

const char *md_ice_local_ufrag(const md_ice *ice)
{
    return ice->ufrag;
}

const char *md_ice_local_pwd(const md_ice *ice)
{
    return ice->pwd;
}

char **md_ice_local_candidates(md_ice *ice)
{
    GSList *list =
        ice->agent ? nice_agent_get_local_candidates(ice->agent, ice->stream, COMPONENT) : NULL;
    GPtrArray *out = g_ptr_array_new();
    for (GSList *l = list; l; l = l->next) {
        if (!advertised(l->data))
            continue;
        char *text = candidate_text(ice, l->data);
        if (text)
            g_ptr_array_add(out, text);
    }
    g_slist_free_full(list, (GDestroyNotify)nice_candidate_free);
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

bool md_ice_gathering_done(const md_ice *ice)
{
    return ice->gathering_done;
}

int md_ice_set_remote_credentials(md_ice *ice, const char *ufrag, const char *pwd)
{
    if (!ice->agent)
        return -ENOTCONN;
    return nice_agent_set_remote_credentials(ice->agent, ice->stream, ufrag, pwd) ? 0 : -EINVAL;
}

/* RFC 6544 4.5: the value after "tcptype" among the extension attributes
 * (tok[8..], after "typ <type>" and any raddr/rport), or NULL. */
static const char *tcptype_of(gchar **tok)
{
    for (size_t i = 8; tok[i] && tok[i + 1]; i++)
        if (strcmp(tok[i], "tcptype") == 0)
            return tok[i + 1];
    return NULL;
}

/* RFC 8839 5.1: foundation component transport priority address port typ ... */
static int precheck_candidate(md_ice *ice, const char *line)
{
    gchar **tok = g_strsplit(line, " ", 32);
    int r = 0;
    if (g_strv_length(tok) < 8) {
        r = -EINVAL;
    } else if (strcmp(tok[1], "1") != 0) {
        r = -ENOTSUP; /* RTCP component: rtcp-mux is required */
    } else if (g_ascii_strcasecmp(tok[2], "tcp") == 0) {
        /* RFC 6544 4.5: tcptype is mandatory on TCP candidates.  Only
         * connections towards us (active, or simultaneous-open) are taken. */
        const char *tcptype = tcptype_of(tok);
        if (!tcptype)
            r = -EINVAL;
        else if (!ice->ice_tcp)
            r = -ENOTSUP;
        else if (strcmp(tcptype, "active") != 0 && strcmp(tcptype, "so") != 0)
            r = -ENOTSUP;
    } else if (g_ascii_strcasecmp(tok[2], "udp") != 0) {
        r = -ENOTSUP;
    }
    if (r == 0 && g_str_has_suffix(tok[4], ".local"))
        r = -ENOTSUP; /* mDNS names are not resolved; peer-reflexive covers them */
    g_strfreev(tok);
    return r;
}

int md_ice_add_remote_candidate(md_ice *ice, const char *candidate)
{
    if (g_str_has_prefix(candidate, "a="))
        candidate += 2;
    if (!g_str_has_prefix(candidate, "candidate:") || strlen(candidate) > 512)
        return -EINVAL;
    if (!ice->agent)
        return -ENOTCONN;
    int r = precheck_candidate(ice, candidate + strlen("candidate:"));
    if (r < 0)
        return r;
    char *line = g_strconcat("a=", candidate, NULL);
    NiceCandidate *cand = nice_agent_parse_remote_candidate_sdp(ice->agent, ice->stream, line);
    g_free(line);
    if (!cand)
        return -EINVAL;
    GSList one = {.data = cand, .next = NULL};
    int added = nice_agent_set_remote_candidates(ice->agent, ice->stream, COMPONENT, &one);
    nice_candidate_free(cand);
    return added >= 0 ? 0 : -EINVAL;
}

void md_ice_remote_gathering_done(md_ice *ice)
{
    if (ice->agent)
        nice_agent_peer_candidate_gathering_done(ice->agent, ice->stream);
}

/* A fresh agent rather than nice_agent_restart_stream(): libnice keeps the
 * pair selected before the restart, and its consent freshness can then take
 * the component to FAILED while the new checks run; a check succeeding after
 * that is a FAILED -> CONNECTED transition, which libnice 0.1.21 asserts
 * against, aborting the process (docs/internals/media.md).  A new agent has
 * no old pair and no old timer.  Its host candidates are new (new ports) and
 * go out in the answer to the restart offer, which is allowed (RFC 8445 9:
 * an ICE restart starts over, including gathering). */
int md_ice_restart(md_ice *ice, const char *remote_ufrag, const char *remote_pwd)
{
    drop_agent(ice);
    int r = new_agent(ice);
    if (r < 0)
        return r;
    return md_ice_set_remote_credentials(ice, remote_ufrag, remote_pwd);
}

int md_ice_send(md_ice *ice, const uint8_t *buf, size_t len)
{
    if (!ice->agent)
        return -ENOTCONN;
    gint n = nice_agent_send(ice->agent, ice->stream, COMPONENT, (guint)len, (const gchar *)buf);
    if (n < 0)
        return ice->connected ? -EIO : -EAGAIN; /* no selected pair yet */
    return n == (gint)len ? 0 : -EIO;
}

/* RFC 8445 7.3.1.5 / 8.1.1: the controlled agent selects the pair only when
 * the controlling peer nominates it, which may come after the peer's first
 * DTLS flight (the peer's own check succeeded first).  Held, not lost. */
int md_ice_send_or_hold(md_ice *ice, const uint8_t *buf, size_t len)
{
    int r = md_ice_send(ice, buf, len);
    if (r != -EAGAIN || !ice->agent)
        return r;
    if (ice->held_bytes + len > MD_ICE_HELD_BYTES)
        return -ENOBUFS;
    g_queue_push_tail(&ice->held, g_bytes_new(buf, len));
    ice->held_bytes += len;
    return 1;
}
