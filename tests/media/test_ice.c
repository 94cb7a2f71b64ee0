/*
 * The libnice adapter md_ice against a plain libnice agent on 127.0.0.1: the
 * peer is controlling (aggressive nomination, as the benchmark's generator;
 * browsers nominate later still), md_ice controlled, as in the gateway.
 * Datagrams handed to md_ice_send_or_hold() before a pair is selected wait
 * and reach the peer, in order and once, ahead of what is sent after; the
 * cap refuses more; md_ice_send() itself never holds.
 */
#include "md_err.h"
#include "md_ice.h"
#include "md_test.h"

#include <errno.h>
#include <glib.h>
#include <nice/agent.h>
#include <string.h>

#define COMPONENT 1

struct peer {
    NiceAgent *agent;
    guint stream;
    GPtrArray *received; /* char *, the datagrams in arrival order */
};

static bool connected;

static void on_candidate(const char *candidate, void *ud)
{
}

static void on_state(md_ice_state state, void *ud)
{
    struct peer *p = ud;
    if (state == MD_ICE_CONNECTED) {
        /* The held datagrams left before this report. */
        ASSERT_EQ(p->received->len, 0);
        connected = true;
    }
}

static void on_packet(const uint8_t *buf, size_t len, void *ud)
{
}

static void peer_recv(NiceAgent *agent, guint stream, guint component, guint len, gchar *buf,
                      gpointer data)
{
    struct peer *p = data;
    g_ptr_array_add(p->received, g_strndup(buf, len));
}

static void peer_init(struct peer *p)
{
    p->received = g_ptr_array_new_with_free_func(g_free);
    p->agent = nice_agent_new_full(NULL, NICE_COMPATIBILITY_RFC5245, NICE_AGENT_OPTION_NONE);
    g_object_set(p->agent, "controlling-mode", TRUE, "ice-tcp", FALSE, "upnp", FALSE, NULL);
    NiceAddress addr;
    nice_address_init(&addr);
    ASSERT(nice_address_set_from_string(&addr, "127.0.0.1"));
    ASSERT(nice_agent_add_local_address(p->agent, &addr));
    p->stream = nice_agent_add_stream(p->agent, 1);
    ASSERT(p->stream > 0);
    ASSERT(nice_agent_attach_recv(p->agent, p->stream, COMPONENT, NULL, peer_recv, p));
    ASSERT(nice_agent_gather_candidates(p->agent, p->stream));
}

/* Each side learns the other's credentials and host candidates. */
static void exchange(struct peer *p, md_ice *ice)
{
    ASSERT(nice_agent_set_remote_credentials(p->agent, p->stream, md_ice_local_ufrag(ice),
                                             md_ice_local_pwd(ice)));
    char **ours = md_ice_local_candidates(ice);
    GSList *remote = NULL;
    for (char **c = ours; *c; c++) {
        char *line = g_strconcat("a=", *c, NULL);
        NiceCandidate *cand = nice_agent_parse_remote_candidate_sdp(p->agent, p->stream, line);
        g_free(line);
        if (cand)
            remote = g_slist_append(remote, cand);
    }
    g_strfreev(ours);
    ASSERT(remote != NULL);
    ASSERT(nice_agent_set_remote_candidates(p->agent, p->stream, COMPONENT, remote) > 0);
    g_slist_free_full(remote, (GDestroyNotify)nice_candidate_free);

    gchar *ufrag = NULL, *pwd = NULL;
    ASSERT(nice_agent_get_local_credentials(p->agent, p->stream, &ufrag, &pwd));
    ASSERT_OK(md_ice_set_remote_credentials(ice, ufrag, pwd));
    g_free(ufrag);
    g_free(pwd);
    GSList *theirs = nice_agent_get_local_candidates(p->agent, p->stream, COMPONENT);
    for (GSList *l = theirs; l; l = l->next) {
        gchar *sdp = nice_agent_generate_local_candidate_sdp(p->agent, l->data);
        ASSERT_OK(md_ice_add_remote_candidate(ice, sdp));
        g_free(sdp);
    }
    g_slist_free_full(theirs, (GDestroyNotify)nice_candidate_free);
    md_ice_remote_gathering_done(ice);
}

static void run_until(bool *flag, struct peer *p, guint n_received)
{
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while ((flag ? !*flag : p->received->len < n_received) && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
}

static void test_held_until_selected(void)
{
    static const md_ice_callbacks cb = {on_candidate, on_state, on_packet};
    md_ice_options opt = {.bind_address = "127.0.0.1"};
    struct peer p = {0};
    md_ice *ice = NULL;
    peer_init(&p);
    ASSERT_OK(md_ice_new(g_main_context_default(), &opt, &cb, &p, &ice));

    /* No pair yet: plain sends fail, handshake datagrams wait. */
    ASSERT_EQ(md_ice_send(ice, (const uint8_t *)"media", 5), -EAGAIN);
    ASSERT_EQ(md_ice_send_or_hold(ice, (const uint8_t *)"flight-1", 8), 1);
    ASSERT_EQ(md_ice_send_or_hold(ice, (const uint8_t *)"flight-2", 8), 1);
    static uint8_t big[MD_ICE_HELD_BYTES];
    ASSERT_EQ(md_ice_send_or_hold(ice, big, sizeof(big)), -ENOBUFS);

    exchange(&p, ice);
    run_until(&connected, &p, 0);
    ASSERT(connected);
    ASSERT_EQ(md_ice_send_or_hold(ice, (const uint8_t *)"after", 5), 0);
    run_until(NULL, &p, 3);
    ASSERT_EQ(p.received->len, 3);
    ASSERT_STR_EQ(g_ptr_array_index(p.received, 0), "flight-1");
    ASSERT_STR_EQ(g_ptr_array_index(p.received, 1), "flight-2");
    ASSERT_STR_EQ(g_ptr_array_index(p.received, 2), "after");

    /* Held data does not survive a restart (a new agent, new ports). */
    connected = false;
    ASSERT_OK(md_ice_restart(ice, "abcd", "abcdefghijklmnopqrstuvwx"));
    ASSERT_EQ(md_ice_send_or_hold(ice, (const uint8_t *)"stale", 5), 1);
    md_ice_free(ice);
    g_object_unref(p.agent);
    g_ptr_array_unref(p.received);
}

int main(void)
{
    RUN(test_held_until_selected);
    return 0;
}
