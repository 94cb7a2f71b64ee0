/*
 * mdb-load: the load generator's entry point (docs/internals/bench.md).
 * Reads a plan file that names the gateway (madoguchi or Janus), its
 * addresses and the clients' credentials, logs the verifiers in, then runs
 * the phases on the main thread: connect every client, start every session
 * at once, wait until media flows both ways in each (or the setup timeout),
 * measure for the given duration, hang up, and print one JSON object with
 * the figures.  Gateway CPU and RSS come from /proc/<pid> when --gateway-pid
 * is given; the clients share CLOCK_MONOTONIC, so one-way latency needs no
 * clock sync.
 */
#include "mdb.h"

#include "md_dtls.h"
#include "md_srtp.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_ERRORS_KEPT 20

typedef struct options {
    const char *plan, *video, *audio, *out, *mark;
    int sessions, duration_s, setup_timeout_s, gateway_pid, media_threads, rcvbuf_kb;
    bool record, no_batch;
} options;

void mdb_run_error(mdb_run *run, mdb_client *c, const char *what, const char *detail)
{
    run->errors++;
    if (json_array_size(run->error_log) < MAX_ERRORS_KEPT)
        json_array_append_new(run->error_log,
                              json_pack("{s:s, s:s, s:s}", "client", c ? c->name : "-", "error",
                                        what, "detail", detail ? detail : ""));
}

static int read_plan(const char *path, mdb_run *run, int want)
{
    gchar *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return -ENOENT;
    mdb_target *t = &run->target;
    gchar **lines = g_strsplit(text, "\n", -1);
    g_free(text);
    int n_tab = 0, n_ver = 0;
    run->clients = g_new0(mdb_client, 2 * (size_t)want);
    for (gchar **l = lines; *l; l++) {
        gchar **f = g_strsplit(g_strstrip(*l), " ", 4);
        guint n = g_strv_length(f);
        if (n == 2 && strcmp(f[0], "kind") == 0)
            t->kind = g_intern_string(f[1]);
        else if (n == 2 && strcmp(f[0], "host") == 0)
            t->host = g_strdup(f[1]);
        else if (n == 2 && strcmp(f[0], "staff_port") == 0)
            t->staff_port = atoi(f[1]);
        else if (n == 2 && strcmp(f[0], "device_port") == 0)
            t->device_port = atoi(f[1]);
        else if (n == 2 && strcmp(f[0], "janus_port") == 0)
            t->janus_port = atoi(f[1]);
        else if (n == 2 && strcmp(f[0], "ca") == 0)
            t->ca_file = g_strdup(f[1]);
        else if (n == 2 && strcmp(f[0], "origin") == 0)
            t->origin = g_strdup(f[1]);
        else if (n == 2 && strcmp(f[0], "procedure") == 0)
            t->procedure = g_strdup(f[1]);
        else if (n == 2 && strcmp(f[0], "bind") == 0)
            t->bind_address = g_strdup(f[1]);
        else if (n == 4 && strcmp(f[0], "tablet") == 0 && n_tab < want) {
            mdb_client *c = &run->clients[2 * n_tab++];
            c->name = g_strdup(f[1]);
            c->cert_file = g_strdup(f[2]);
            c->key_file = g_strdup(f[3]);
        } else if (n == 4 && strcmp(f[0], "verifier") == 0 && n_ver < want) {
            mdb_client *c = &run->clients[2 * n_ver++ + 1];
            c->name = g_strdup(f[1]);
            c->password = g_strdup(f[2]);
            c->totp_secret = g_strdup(f[3]);
        }
        g_strfreev(f);
    }
    g_strfreev(lines);
    if (!t->kind)
        t->kind = "madoguchi";
    if (!t->procedure)
        t->procedure = g_strdup("mynumber.new");
    bool janus = strcmp(t->kind, "janus") == 0;
    if (!janus) {
        if (n_tab < want || n_ver < want || !t->host || !t->ca_file || !t->origin)
            return -EINVAL;
    } else {
        if (!t->host || !t->janus_port)
            return -EINVAL;
        for (int i = 0; i < 2 * want; i++)
            if (!run->clients[i].name)
                run->clients[i].name = g_strdup_printf("mdb-%s-%d", i % 2 ? "v" : "t", i / 2);
    }
    run->n_sessions = want;
    for (int i = 0; i < 2 * want; i++) {
        mdb_client *c = &run->clients[i];
        c->run = run;
        c->index = i;
        c->tablet = i % 2 == 0;
        c->partner = &run->clients[i ^ 1];
    }
    return 0;
}

static void login_one(gpointer data, gpointer user)
{
    mdb_client *c = data;
    char err[512] = "";
    if (mdb_login(&c->run->target, c->name, c->password, c->totp_secret, &c->cookie, err,
                  sizeof(err)) < 0) {
        fprintf(stderr, "mdb: login of %s failed: %s\n", c->name, err);
        c->failed = true;
    }
}

static int login_all(mdb_run *run)
{
    GThreadPool *pool = g_thread_pool_new(login_one, NULL, 4, TRUE, NULL);
    for (int i = 0; i < run->n_sessions; i++)
        g_thread_pool_push(pool, &run->clients[2 * i + 1], NULL);
    g_thread_pool_free(pool, FALSE, TRUE);
    for (int i = 0; i < run->n_sessions; i++)
        if (run->clients[2 * i + 1].failed)
            return -EACCES;
    return 0;
}

/* utime + stime in clock ticks (proc(5) fields 14 and 15). */
static long long proc_cpu_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* CPU ticks of each of the gateway's threads, summed by thread name
 * (/proc/<pid>/task/<tid>/stat: comm in parentheses, utime and stime in
 * fields 14 and 15), so the recorder's threads (md-recorder and GStreamer's
 * streaming threads) can be told from the media workers (md-media-K).  A thread that ended inside
 * the window is missed. */
static json_t *proc_thread_ticks(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    GDir *d = g_dir_open(path, 0, NULL);
    if (!d)
        return NULL;
    json_t *by_name = json_object();
    const char *tid;
    while ((tid = g_dir_read_name(d))) {
        char stat_path[96], buf[1024];
        snprintf(stat_path, sizeof(stat_path), "/proc/%d/task/%s/stat", pid, tid);
        FILE *f = fopen(stat_path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (!open || !close || close < open ||
            sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) !=
                2)
            continue;
        *close = '\0';
        json_t *prev = json_object_get(by_name, open + 1);
        json_object_set_new(by_name, open + 1,
                            json_integer((json_int_t)(ut + st) + json_integer_value(prev)));
    }
    g_dir_close(d);
    return by_name;
}

/* The recorder's threads in the gateway: its own (md-recorder, which
 * drains the queues into the appsrcs) and GStreamer's, named after their
 * element (src_<party>_<kind> for the appsrc tasks, truncated to 15 bytes;
 * rtpjitterbuffer's timer; element:pad for other streaming tasks). */
static bool recorder_thread(const char *name)
{
    return strcmp(name, "md-recorder") == 0 || g_str_has_prefix(name, "src_") ||
           g_str_has_prefix(name, "rtpjitterbuffer") || strchr(name, ':') != NULL;
}

/* Per thread name: CPU µs over the window; plus the recorder's and the
 * media workers' totals, and what the process used beyond the threads alive
 * at the end of the window (threads that ended inside it). */
static void report_threads(json_t *t0, json_t *t1, json_t *j)
{
    if (!t0 || !t1)
        return;
    double tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK), rec = 0, media = 0;
    json_t *by = json_object();
    const char *name;
    json_t *v;
    json_object_foreach (t1, name, v) {
        double us =
            (double)(json_integer_value(v) - json_integer_value(json_object_get(t0, name))) *
            tick_us;
        json_object_set_new(by, name, json_real(us));
        if (recorder_thread(name))
            rec += us;
        else if (g_str_has_prefix(name, "md-media-"))
            media += us;
    }
    json_object_set_new(j, "cpu_us_by_thread", by);
    json_object_set_new(j, "cpu_us_recorder_threads", json_real(rec));
    json_object_set_new(j, "cpu_us_media_workers", json_real(media));
    double all = 0;
    json_object_foreach (by, name, v)
        all += json_real_value(v);
    json_t *pct = json_object_get(j, "cpu_pct"), *win = json_object_get(j, "window_s");
    if (pct && win)
        json_object_set_new(j, "cpu_us_ended_threads",
                            json_real(json_real_value(pct) * json_real_value(win) * 1e4 - all));
}

static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* UDP counters of a network namespace (RFC 4113 names, /proc/<pid>/net/snmp
 * shows the namespace of pid): where datagrams were dropped in the kernel. */
typedef struct udp_counters {
    long long in_errors, rcvbuf_errors, sndbuf_errors, out_datagrams;
} udp_counters;

static void proc_udp(int pid, udp_counters *ret)
{
    char path[64], names[512], values[512];
    bool have_names = false;
    *ret = (udp_counters){-1, -1, -1, -1};
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/net/snmp", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/net/snmp");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(have_names ? values : names, sizeof(names), f)) {
        if (strncmp(have_names ? values : names, "Udp:", 4) != 0)
            continue;
        if (!have_names) {
            have_names = true;
            continue;
        }
        gchar **n = g_strsplit_set(names, " \n", -1), **v = g_strsplit_set(values, " \n", -1);
        for (int i = 1; n[i] && v[i] && v[i - 1]; i++) {
            long long x = strtoll(v[i], NULL, 10);
            if (strcmp(n[i], "InErrors") == 0)
                ret->in_errors = x;
            else if (strcmp(n[i], "RcvbufErrors") == 0)
                ret->rcvbuf_errors = x;
            else if (strcmp(n[i], "SndbufErrors") == 0)
                ret->sndbuf_errors = x;
            else if (strcmp(n[i], "OutDatagrams") == 0)
                ret->out_datagrams = x;
        }
        g_strfreev(n);
        g_strfreev(v);
        break;
    }
    fclose(f);
}

/* Packets sent on the network interfaces of pid's namespace other than
 * loopback (/proc/<pid>/net/dev: the tenth number after "name:" is transmit
 * packets): for a gateway in its own namespace, all it sent on the veth. */
static long long proc_tx_packets(int pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/net/dev", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long total = 0;
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue; /* the two header lines */
        *colon = '\0';
        if (strcmp(g_strstrip(line), "lo") == 0)
            continue;
        unsigned long long v[10];
        if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) == 10)
            total += (long long)v[9];
    }
    fclose(f);
    return total;
}

/* What else ran on the machine as the run started (it is shared): the load
 * average, CPU pressure (PSI), the kernel's UDP memory, which every
 * namespace shares, and TIME_WAIT sockets left in the generator's
 * namespace. */
static json_t *machine_state(void)
{
    json_t *j = json_object();
    gchar *text = NULL;
    double load = 0;
    if (g_file_get_contents("/proc/loadavg", &text, NULL, NULL) && sscanf(text, "%lf", &load) == 1)
        json_object_set_new(j, "loadavg_1m", json_real(load));
    g_free(text);
    text = NULL;
    double some = 0;
    if (g_file_get_contents("/proc/pressure/cpu", &text, NULL, NULL) &&
        sscanf(text, "some avg10=%lf", &some) == 1)
        json_object_set_new(j, "cpu_pressure_some_avg10", json_real(some));
    g_free(text);
    text = NULL;
    if (g_file_get_contents("/proc/net/sockstat", &text, NULL, NULL)) {
        const char *udp = strstr(text, "\nUDP: "), *tcp = strstr(text, "\nTCP: ");
        long long inuse = 0, mem = 0, tw = 0;
        if (udp && sscanf(udp, "\nUDP: inuse %lld mem %lld", &inuse, &mem) == 2)
            json_object_set_new(j, "udp_mem_pages", json_integer(mem));
        if (tcp && sscanf(tcp, "\nTCP: inuse %*d orphan %*d tw %lld", &tw) == 1)
            json_object_set_new(j, "tcp_time_wait_generator_netns", json_integer(tw));
    }
    g_free(text);
    return j;
}

static json_t *udp_json(const udp_counters *a, const udp_counters *b)
{
    return json_pack("{s:I, s:I, s:I}", "in_errors", (json_int_t)(b->in_errors - a->in_errors),
                     "rcvbuf_errors", (json_int_t)(b->rcvbuf_errors - a->rcvbuf_errors),
                     "sndbuf_errors", (json_int_t)(b->sndbuf_errors - a->sndbuf_errors));
}

/* The sum over sessions of the gateway's counters (both legs) in the window. */
static void gw_counters_total(const mdb_run *run, uint64_t ret[MDB_GW_FIELDS], int *ret_legs)
{
    memset(ret, 0, sizeof(uint64_t) * MDB_GW_FIELDS);
    *ret_legs = 0;
    for (int i = 0; i < run->n_sessions; i++) {
        const mdb_client *v = &run->clients[2 * i + 1];
        for (int leg = 0; leg < 2; leg++) {
            if (!v->gw_have_base[leg])
                continue;
            ++*ret_legs;
            for (int f = 0; f < MDB_GW_FIELDS; f++)
                ret[f] += v->gw_last[leg][f] - (f == MDB_GW_INGRESS_LOST ? 0 : v->gw_base[leg][f]);
        }
    }
}

static bool session_up(const mdb_run *run, int i)
{
    const mdb_client *t = &run->clients[2 * i], *v = &run->clients[2 * i + 1];
    return atomic_load(&t->t_first_rx_us) && atomic_load(&v->t_first_rx_us);
}

static uint64_t rx_total(mdb_run *run)
{
    uint64_t n = 0;
    for (int i = 0; i < run->n_media; i++)
        n += atomic_load(&mdb_media_stats(run->media[i])->rx_packets);
    return n;
}

static uint64_t tx_total(mdb_run *run)
{
    uint64_t n = 0;
    for (int i = 0; i < run->n_media; i++)
        n += atomic_load(&mdb_media_stats(run->media[i])->tx_packets);
    return n;
}

static void on_tick(lws_sorted_usec_list_t *sul);
static lws_sorted_usec_list_t tick_sul;
static struct lws_context *tick_ctx;

static void on_tick(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(tick_ctx, 0, &tick_sul, on_tick, 10 * LWS_US_PER_MS);
}

/* Services libwebsockets until until_us, or until done(run) says so. */
static void service_until(mdb_run *run, const mdb_signaling *sig, int64_t until_us,
                          bool (*done)(mdb_run *))
{
    while (g_get_monotonic_time() < until_us) {
        if (mdb_ws_service(run) < 0)
            return;
        int64_t now = g_get_monotonic_time();
        for (int i = 0; i < 2 * run->n_sessions; i++)
            sig->tick(&run->clients[i], now);
        if (done && done(run))
            return;
    }
}

static bool all_hello(mdb_run *run)
{
    for (int i = 0; i < 2 * run->n_sessions; i++)
        if (!run->clients[i].hello && !run->clients[i].failed)
            return false;
    return true;
}

/* --record: every session that is up has its recording on (both legs told). */
static bool all_recording(mdb_run *run)
{
    for (int i = 0; i < run->n_sessions; i++)
        if (session_up(run, i) && !run->clients[2 * i].failed &&
            !(run->clients[2 * i].recording_on && run->clients[2 * i + 1].recording_on))
            return false;
    return true;
}

static bool all_up(mdb_run *run)
{
    for (int i = 0; i < run->n_sessions; i++)
        if (!session_up(run, i) && !run->clients[2 * i].failed &&
            !atomic_load(&run->clients[2 * i].media_failed) &&
            !atomic_load(&run->clients[2 * i + 1].media_failed))
            return false;
    return true;
}

/* What is read from the gateway and the kernel at the edges of the window. */
typedef struct window_edges {
    long rss_connected; /* VmRSS with every client connected, before any session */
    long rss_end;       /* VmRSS at the end of the window: retransmission rings full */
    udp_counters udp_gw[2], udp_gen[2];
    long long gw_tx[2];   /* packets the gateway's namespace sent on its interfaces */
    long long gen_cpu[2]; /* this process's CPU ticks */
} window_edges;

static void window_edge(const mdb_run *run, const options *o, window_edges *e, int at)
{
    proc_udp(o->gateway_pid, &e->udp_gw[at]);
    proc_udp(0, &e->udp_gen[at]);
    e->gw_tx[at] = o->gateway_pid > 0 ? proc_tx_packets(o->gateway_pid) : -1;
    e->gen_cpu[at] = proc_cpu_ticks(getpid());
}

/* Where packets went missing: the kernel's UDP drops in each namespace and,
 * for madoguchi, its own counters (from `quality`: the window less up to a
 * second, see mdb.h). */
static void report_drops(const mdb_run *run, const options *o, const window_edges *e, json_t *j)
{
    if (o->gateway_pid > 0) {
        json_object_set_new(j, "udp_drops",
                            json_pack("{s:o, s:o}", "gateway",
                                      udp_json(&e->udp_gw[0], &e->udp_gw[1]), "generator",
                                      udp_json(&e->udp_gen[0], &e->udp_gen[1])));
        json_object_set_new(j, "rss_kb_connected", json_integer(e->rss_connected));
        json_object_set_new(j, "rss_kb_end", json_integer(e->rss_end));
    }
    if (strcmp(run->target.kind, "madoguchi") != 0)
        return;
    uint64_t total[MDB_GW_FIELDS], dropped = 0;
    /* (the gateway's own counters, madoguchi only) */
    int legs;
    gw_counters_total(run, total, &legs);
    json_t *g = json_pack("{s:i}", "legs_reporting", legs);
    for (int f = 0; f < MDB_GW_FIELDS; f++) {
        if (f >= MDB_GW_DROPPED_MALFORMED && f <= MDB_GW_DROPPED_NOT_READY)
            dropped += total[f];
        json_object_set_new(g, mdb_gw_field_names[f], json_integer((json_int_t)total[f]));
    }
    json_object_set_new(g, "dropped", json_integer((json_int_t)dropped));
    json_object_set_new(j, "gateway_counters", g);
}

/* The gateway's own count of what it sent, independent of the receivers:
 * packets its namespace transmitted (veth) and UDP datagrams it sent
 * (RTP, RTCP, STUN) over the window, and its CPU per packet on that count.
 * Then the generator's own cost and how well its sends and receives
 * batched. */
static void report_sent(const mdb_run *run, const window_edges *e, double cpu_us, double window,
                        uint64_t packets, json_t *j)
{
    if (e->gw_tx[0] >= 0 && e->gw_tx[1] >= 0) {
        long long veth = e->gw_tx[1] - e->gw_tx[0];
        long long udp = e->udp_gw[1].out_datagrams - e->udp_gw[0].out_datagrams;
        json_object_set_new(j, "gateway_sent",
                            json_pack("{s:I, s:I, s:f}", "veth_tx_packets", (json_int_t)veth,
                                      "udp_out_datagrams", (json_int_t)udp, "veth_tx_pps",
                                      window > 0 ? (double)veth / window : 0.0));
        if (cpu_us >= 0)
            json_object_set_new(j, "cpu_us_per_packet_sent",
                                json_real(veth > 0 ? cpu_us / (double)veth : -1));
    }
    double tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
    double gen_us = (double)(e->gen_cpu[1] - e->gen_cpu[0]) * tick_us;
    uint64_t rx_calls = 0, rx_dg = 0, tx_calls = 0, tx_dg = 0, stun = 0, links = 0;
    for (int i = 0; i < run->n_media; i++) {
        const mdb_stats *s = mdb_media_stats(run->media[i]);
        rx_calls += s->rx_calls;
        rx_dg += s->rx_datagrams;
        tx_calls += s->tx_calls;
        tx_dg += s->tx_datagrams;
        stun += s->stun_answered;
        links += s->links;
    }
    json_object_set_new(
        j, "generator",
        json_pack("{s:f, s:f, s:i, s:b, s:I, s:f, s:f, s:I}", "cpu_pct",
                  window > 0 ? gen_us / window / 1e4 : 0.0, "cpu_us_per_packet",
                  packets ? gen_us / (double)packets : -1.0, "media_threads", run->n_media,
                  "batched", run->batch, "batched_peers", (json_int_t)links,
                  "datagrams_per_recvmmsg", rx_calls ? (double)rx_dg / (double)rx_calls : 0.0,
                  "datagrams_per_sendmmsg", tx_calls ? (double)tx_dg / (double)tx_calls : 0.0,
                  "stun_answered", (json_int_t)stun));
}

static json_t *report(mdb_run *run, const options *o, long long cpu0, long long cpu1, uint64_t rx0,
                      uint64_t rx1, uint64_t tx0, uint64_t tx1, long rss0, long rss1,
                      const window_edges *edges)
{
    size_t n = (size_t)run->n_sessions;
    double *setup = g_new0(double, n), *sent = g_new0(double, n), *answered = g_new0(double, n),
           *dtls = g_new0(double, n);
    size_t n_ok = 0;
    for (int i = 0; i < run->n_sessions; i++) {
        mdb_client *t = &run->clients[2 * i], *v = &run->clients[2 * i + 1];
        if (!session_up(run, i) || !t->t_accept_us)
            continue;
        int64_t last = MAX(atomic_load(&t->t_first_rx_us), atomic_load(&v->t_first_rx_us));
        /* where the setup time goes: the later leg of each stage */
        sent[n_ok] = (double)(MAX(t->t_offer_us, v->t_offer_us) - t->t_accept_us) / 1000.0;
        answered[n_ok] = (double)(MAX(t->t_answer_us, v->t_answer_us) - t->t_accept_us) / 1000.0;
        dtls[n_ok] = (double)(MAX(atomic_load(&t->t_media_up_us), atomic_load(&v->t_media_up_us)) -
                              t->t_accept_us) /
                     1000.0;
        setup[n_ok++] = (double)(last - t->t_accept_us) / 1000.0;
    }
    uint32_t *hist = g_new0(uint32_t, MDB_HIST_BUCKETS);
    uint64_t samples = 0, lost = 0, expected = 0, late = 0, stalls = 0;
    int64_t max_stall = 0;
    for (int m = 0; m < run->n_media; m++) {
        mdb_stats *s = mdb_media_stats(run->media[m]);
        for (size_t b = 0; b < MDB_HIST_BUCKETS; b++)
            hist[b] += s->hist[b];
        samples += s->samples;
        lost += s->lost;
        expected += s->expected;
        late += s->late_ticks;
        stalls += s->stalls;
        max_stall = MAX(max_stall, s->max_stall_us);
    }
    double window = (double)(run->t_window_end - run->t_window_start) / 1e6;
    double fwd = (double)(rx1 - rx0);
    json_t *j = json_pack(
        "{s:s, s:i, s:i, s:i, s:f, s:{s:f, s:f, s:f, s:f}, s:f, s:f, s:f, s:I, s:{s:f, s:f, s:f, "
        "s:I}, s:I, s:i, s:O}",
        "gateway", run->target.kind, "sessions", run->n_sessions, "sessions_up", (int)n_ok,
        "duration_s", o->duration_s, "window_s", window, "setup_ms", "p50",
        mdb_percentile(setup, n_ok, 50), "p95", mdb_percentile(setup, n_ok, 95), "p99",
        mdb_percentile(setup, n_ok, 99), "max", mdb_percentile(setup, n_ok, 100), "forwarded_pps",
        window > 0 ? fwd / window : 0.0, "sent_pps",
        window > 0 ? (double)(tx1 - tx0) / window : 0.0, "loss_pct",
        expected ? 100.0 * (double)lost / (double)expected : 0.0, "lost", (json_int_t)lost,
        "latency_us", "p50", mdb_hist_percentile(hist, samples, 50), "p99",
        mdb_hist_percentile(hist, samples, 99), "p999", mdb_hist_percentile(hist, samples, 99.9),
        "samples", (json_int_t)samples, "generator_late", (json_int_t)late, "errors", run->errors,
        "error_log", run->error_log);
    json_object_set_new(j, "setup_stages_p50_ms",
                        json_pack("{s:f, s:f, s:f}", "descriptions_sent",
                                  mdb_percentile(sent, n_ok, 50), "remote_description",
                                  mdb_percentile(answered, n_ok, 50), "dtls_done",
                                  mdb_percentile(dtls, n_ok, 50)));
    json_object_set_new(j, "admission_refusals", json_integer(run->admission_refusals));
    json_object_set_new(j, "generator_stalls", json_integer((json_int_t)stalls));
    json_object_set_new(j, "generator_max_stall_us", json_integer(max_stall));
    if (o->gateway_pid > 0 && cpu0 >= 0 && cpu1 >= 0) {
        double cpu_us = (double)(cpu1 - cpu0) * 1e6 / (double)sysconf(_SC_CLK_TCK);
        json_object_set_new(j, "gateway_pid", json_integer(o->gateway_pid));
        json_object_set_new(j, "cpu_us_per_packet", json_real(fwd > 0 ? cpu_us / fwd : -1));
        json_object_set_new(j, "cpu_pct", json_real(window > 0 ? cpu_us / window / 1e4 : 0));
        json_object_set_new(j, "rss_kb_idle", json_integer(rss0));
        json_object_set_new(j, "rss_kb_loaded", json_integer(rss1));
        json_object_set_new(j, "rss_kb_per_session",
                            json_real((double)(rss1 - rss0) / run->n_sessions));
        json_object_set_new(j, "rss_kb_per_session_end",
                            json_real((double)(edges->rss_end - rss0) / run->n_sessions));
        /* the part of rss_kb_per_session the two signaling connections take */
        json_object_set_new(j, "rss_kb_per_session_connections",
                            json_real((double)(edges->rss_connected - rss0) / run->n_sessions));
    }
    double gw_cpu_us = o->gateway_pid > 0 && cpu0 >= 0 && cpu1 >= 0
                           ? (double)(cpu1 - cpu0) * 1e6 / (double)sysconf(_SC_CLK_TCK)
                           : -1;
    report_sent(run, edges, gw_cpu_us, window, (rx1 - rx0) + (tx1 - tx0), j);
    report_drops(run, o, edges, j);
    g_free(hist);
    g_free(setup);
    g_free(sent);
    g_free(answered);
    g_free(dtls);
    return j;
}

static int run_phases(mdb_run *run, const options *o, json_t **ret)
{
    bool janus = strcmp(run->target.kind, "janus") == 0;
    const mdb_signaling *sig = janus ? &mdb_janus_signaling : &mdb_madoguchi_signaling;
    int r = janus ? 0 : login_all(run);
    if (r < 0)
        return r;
    r = mdb_ws_init(run, sig);
    if (r < 0)
        return r;
    tick_ctx = run->lws;
    lws_sul_schedule(tick_ctx, 0, &tick_sul, on_tick, 10 * LWS_US_PER_MS);
    long rss0 = o->gateway_pid > 0 ? proc_rss_kb(o->gateway_pid) : -1;
    run->t_start = g_get_monotonic_time();
    for (int i = 0; i < 2 * run->n_sessions; i++)
        sig->connect(&run->clients[i]);
    service_until(run, sig, run->t_start + 30 * G_USEC_PER_SEC, all_hello);
    run->t_all_connected = g_get_monotonic_time();
    window_edges edges = {.rss_connected = o->gateway_pid > 0 ? proc_rss_kb(o->gateway_pid) : -1};
    for (int i = 0; i < run->n_sessions; i++)
        if (run->clients[2 * i].hello && run->clients[2 * i + 1].hello)
            sig->start_session(&run->clients[2 * i]);
    run->t_requests = g_get_monotonic_time();
    service_until(run, sig, run->t_requests + o->setup_timeout_s * G_USEC_PER_SEC, all_up);
    if (run->record) /* the window measures recording sessions only */
        service_until(run, sig, g_get_monotonic_time() + o->setup_timeout_s * G_USEC_PER_SEC,
                      all_recording);
    json_t *threads0 = o->gateway_pid > 0 ? proc_thread_ticks(o->gateway_pid) : NULL;
    long rss1 = o->gateway_pid > 0 ? proc_rss_kb(o->gateway_pid) : -1;
    long long cpu0 = o->gateway_pid > 0 ? proc_cpu_ticks(o->gateway_pid) : -1;
    uint64_t rx0 = rx_total(run), tx0 = tx_total(run);
    window_edge(run, o, &edges, 0);
    run->t_window_start = g_get_monotonic_time();
    atomic_store(&run->measuring, 1);
    if (o->mark) /* tells a profiler that the steady state has begun */
        g_file_set_contents(o->mark, "window\n", -1, NULL);
    service_until(run, sig, run->t_window_start + o->duration_s * G_USEC_PER_SEC, NULL);
    atomic_store(&run->measuring, 0);
    run->t_window_end = g_get_monotonic_time();
    long long cpu1 = o->gateway_pid > 0 ? proc_cpu_ticks(o->gateway_pid) : -1;
    json_t *threads1 = o->gateway_pid > 0 ? proc_thread_ticks(o->gateway_pid) : NULL;
    uint64_t rx1 = rx_total(run), tx1 = tx_total(run);
    window_edge(run, o, &edges, 1);
    edges.rss_end = o->gateway_pid > 0 ? proc_rss_kb(o->gateway_pid) : -1;
    for (int i = 0; i < 2 * run->n_sessions; i++)
        sig->finish(&run->clients[i]);
    service_until(run, sig, g_get_monotonic_time() + G_USEC_PER_SEC / 2, NULL);
    for (int i = 0; i < run->n_media; i++)
        mdb_media_stop(run->media[i]);
    for (int i = 0; i < 2 * run->n_sessions; i++)
        mdb_ws_close(&run->clients[i]);
    service_until(run, sig, g_get_monotonic_time() + G_USEC_PER_SEC / 5, NULL);
    *ret = report(run, o, cpu0, cpu1, rx0, rx1, tx0, tx1, rss0, rss1, &edges);
    report_threads(threads0, threads1, *ret);
    if (run->record) {
        int on = 0;
        for (int i = 0; i < run->n_sessions; i++)
            on += run->clients[2 * i].recording_on && run->clients[2 * i + 1].recording_on;
        json_object_set_new(*ret, "record", json_true());
        json_object_set_new(*ret, "sessions_recording", json_integer(on));
    }
    json_decref(threads0);
    json_decref(threads1);
    return 0;
}

static void run_clear(mdb_run *run)
{
    lws_sul_cancel(&tick_sul);
    mdb_ws_deinit(run);
    for (int i = 0; i < run->n_media; i++)
        mdb_media_free(run->media[i]);
    g_free(run->media);
    for (int i = 0; run->clients && i < 2 * run->n_sessions; i++) {
        mdb_client *c = &run->clients[i];
        g_free(c->name);
        g_free(c->cert_file);
        g_free(c->key_file);
        g_free(c->password);
        g_free(c->totp_secret);
        g_free(c->cookie);
        g_free(c->pending_jsep);
    }
    g_free(run->clients);
    mdb_track_clear(&run->video);
    mdb_track_clear(&run->audio);
    md_dtls_identity_unref(run->identity);
    json_decref(run->error_log);
    if (run->inbox)
        g_queue_free(run->inbox);
    g_mutex_clear(&run->lock);
    mdb_target *t = &run->target;
    g_free(t->host);
    g_free(t->ca_file);
    g_free(t->origin);
    g_free(t->procedure);
    g_free(t->bind_address);
}

static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){.sessions = 1,
                   .duration_s = 5,
                   .setup_timeout_s = 20,
                   .media_threads = 1,
                   .rcvbuf_kb = 1024};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--record") == 0) {
            o->record = true;
            continue;
        }
        if (strcmp(a, "--no-batch") == 0) {
            o->no_batch = true;
            continue;
        }
        if (!v)
            return -EINVAL;
        i++;
        if (strcmp(a, "--plan") == 0)
            o->plan = v;
        else if (strcmp(a, "--video") == 0)
            o->video = v;
        else if (strcmp(a, "--audio") == 0)
            o->audio = v;
        else if (strcmp(a, "--out") == 0)
            o->out = v;
        else if (strcmp(a, "--mark") == 0)
            o->mark = v;
        else if (strcmp(a, "--sessions") == 0)
            o->sessions = atoi(v);
        else if (strcmp(a, "--duration") == 0)
            o->duration_s = atoi(v);
        else if (strcmp(a, "--setup-timeout") == 0)
            o->setup_timeout_s = atoi(v);
        else if (strcmp(a, "--gateway-pid") == 0)
            o->gateway_pid = atoi(v);
        else if (strcmp(a, "--media-threads") == 0)
            o->media_threads = atoi(v);
        else if (strcmp(a, "--rcvbuf-kb") == 0)
            o->rcvbuf_kb = atoi(v);
        else
            return -EINVAL;
    }
    if (!o->plan || !o->video || !o->audio || o->sessions < 1 || o->duration_s < 1 ||
        o->media_threads < 1 || o->rcvbuf_kb < 0)
        return -EINVAL;
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: mdb-load --plan FILE --video FILE --audio FILE [--sessions N] "
                        "[--duration S] [--setup-timeout S] [--gateway-pid PID] "
                        "[--media-threads K] [--no-batch] [--rcvbuf-kb KB] [--out FILE] "
                        "[--mark FILE] [--record]\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    json_t *machine = machine_state(); /* before this run adds its own load */
    mdb_run run = {.duration_s = o.duration_s,
                   .setup_timeout_s = o.setup_timeout_s,
                   .record = o.record,
                   .batch = !o.no_batch,
                   .rcvbuf_bytes = o.rcvbuf_kb * 1024};
    g_mutex_init(&run.lock);
    run.inbox = g_queue_new();
    run.error_log = json_array();
    json_t *result = NULL;
    int r = read_plan(o.plan, &run, o.sessions);
    if (r < 0) {
        fprintf(stderr, "mdb: plan %s unusable or short of clients for %d sessions\n", o.plan,
                o.sessions);
        goto out;
    }
    if ((r = mdb_track_load(o.video, true, 90000, &run.video)) < 0 ||
        (r = mdb_track_load(o.audio, false, 48000, &run.audio)) < 0) {
        fprintf(stderr, "mdb: cannot load %s / %s (run bench/gen-media.sh)\n", o.video, o.audio);
        goto out;
    }
    if ((r = md_srtp_init()) < 0 || (r = md_dtls_identity_new(&run.identity)) < 0)
        goto out;
    mdb_peer_debug_init();
    run.n_media = o.media_threads;
    run.media = g_new0(mdb_media *, (size_t)run.n_media);
    for (int i = 0; i < run.n_media; i++)
        mdb_media_new(&run, i, &run.media[i]);
    for (int i = 0; i < 2 * run.n_sessions; i++)
        run.clients[i].media = run.media[i % run.n_media];
    r = run_phases(&run, &o, &result);
    if (r < 0) {
        fprintf(stderr, "mdb: run failed: %s\n", g_strerror(-r));
        goto out;
    }
    json_object_set(result, "machine_at_start", machine);
    char *text = json_dumps(result, JSON_INDENT(2));
    if (o.out)
        g_file_set_contents(o.out, text, -1, NULL);
    printf("%s\n", text);
    free(text);
out:
    json_decref(result);
    json_decref(machine);
    run_clear(&run);
    md_srtp_deinit();
    return r < 0 ? 1 : 0;
}
