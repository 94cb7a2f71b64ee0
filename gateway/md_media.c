/*
 * The media plane's control-thread face (see md_media.h).  md_media keeps a
 * record per open session (its worker and a serial number) and never touches
 * worker state: every command is a heap payload posted to the session's
 * worker, where md_bridge.c runs it.  Events travel the other way through
 * the event sink (md_event_sink.h), which copies each to the control
 * context; md_media drops it there unless the session record with the same
 * serial still exists, so nothing arrives for a closed session, and closes
 * the sink so that nothing arrives after md_media_free().  Offers are parsed and checked here, on
 * the control thread, so malformed ones are refused synchronously.
 */
#include "md_media.h"
#include "md_admit.h"
#include "md_crypto.h"
#include "md_dc_proto.h"
#include "md_err.h"
#include "md_event_sink.h"
#include "md_log.h"
#include "md_recorder.h"
#include "md_bridge.h"
#include "md_worker.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_SESSION_ID 128

struct worker_slot {
    md_worker *worker;
    md_bridge_host *host;
    unsigned sessions;
};

struct session_record {
    unsigned worker;
    uint64_t serial;
    gint64 opened_us; /* for admission: settling until MD_ADMIT_SETTLE_MS later */
};

struct md_media {
    GMainContext *control;
    md_media_event_cb cb;
    void *userdata;
    md_event_sink *sink;
    md_dtls_identity *identity;
    struct worker_slot *workers;
    unsigned n_workers;
    GHashTable *sessions; /* id -> session_record */
    uint64_t next_serial;
    unsigned max_sessions;
    md_admit_limits admit;
    uint64_t admission_refusals;
    /* the process's share of its CPUs, sampled on the control context */
    GSource *process_timer;
    unsigned cpus;
    md_load_meter process_load;
    size_t max_sdp_bytes;
    bool srtp_initialized;
};

/* ---- events: worker -> control ---- */

/* The sink's delivery (md_event_sink.h): an event reaches the callback only
 * while the session record with its serial exists, except a recording's
 * final state (md_media.h, MD_MEDIA_RECORDING). */
static void deliver(const md_media_event *ev, uint64_t serial, void *owner)
{
    md_media *m = owner;
    struct session_record *rec = g_hash_table_lookup(m->sessions, ev->session_id);
    bool final = ev->type == MD_MEDIA_RECORDING && ev->recording.state &&
                 strcmp(ev->recording.state, "recording") != 0;
    if (!final && (!rec || rec->serial != serial))
        return; /* closed, or an older session of the same id */
    m->cb(ev, m->userdata);
}

/* ---- commands: control -> worker ---- */

enum command_kind {
    CMD_OPEN,
    CMD_OFFER,
    CMD_CANDIDATE,
    CMD_CLOSE,
    CMD_SHUTDOWN,
    CMD_CHAT,
    CMD_FILE,
    CMD_STILL,
    CMD_RECORD_START,
    CMD_RECORD_STOP,
    CMD_RECORD_STALL,
};

struct command {
    enum command_kind kind;
    md_bridge_host *host;
    char *session_id;
    uint64_t serial;
    md_leg leg;
    md_sdp *offer;
    char *candidate;
    char **video_codecs;
    bool require_srtp_gcm;
    char *chat_id, *chat_text; /* CMD_CHAT */
    char *still_id;            /* CMD_STILL */
    int64_t chat_ts;
    md_bridge_files files; /* CMD_OPEN: evidence borrowed, types owned */
    md_owned_file file;    /* CMD_FILE: strings owned */
    char *recording_id;    /* CMD_RECORD_START */
    md_evidence_rec *recording_file;
    bool stalled; /* CMD_RECORD_STALL */
};

static void command_free(gpointer data)
{
    struct command *c = data;
    g_free(c->session_id);
    md_sdp_free(c->offer);
    g_free(c->candidate);
    g_strfreev(c->video_codecs);
    g_free(c->chat_id);
    g_free(c->still_id);
    if (c->chat_text)
        md_wipe(c->chat_text, strlen(c->chat_text));
    g_free(c->chat_text);
    g_strfreev(c->files.file_types);
    md_owned_file_clear(&c->file);
    g_free(c->recording_id);
    md_evidence_rec_abandon(c->recording_file); /* a command never run */
    g_free(c);
}

static gboolean run_command(gpointer data)
{
    struct command *c = data;
    switch (c->kind) {
    case CMD_OPEN:
        md_bridge_open(c->host, c->session_id, c->serial, c->video_codecs, c->require_srtp_gcm,
                       &c->files);
        c->video_codecs = NULL;
        c->files.file_types = NULL;
        break;
    case CMD_OFFER:
        md_bridge_offer(c->host, c->session_id, c->leg, c->offer);
        c->offer = NULL;
        break;
    case CMD_CANDIDATE:
        md_bridge_candidate(c->host, c->session_id, c->leg, c->candidate);
        c->candidate = NULL;
        break;
    case CMD_CLOSE:
        md_bridge_close(c->host, c->session_id);
        break;
    case CMD_SHUTDOWN:
        md_bridge_host_free(c->host);
        break;
    case CMD_CHAT:
        md_bridge_chat_deliver(c->host, c->session_id, c->leg, c->chat_id, c->chat_ts,
                               c->chat_text);
        break;
    case CMD_FILE:
        md_bridge_file_deliver(c->host, c->session_id, c->leg, &c->file);
        break;
    case CMD_STILL:
        md_bridge_still_expect(c->host, c->session_id, c->still_id);
        break;
    case CMD_RECORD_START:
        md_bridge_record_start(c->host, c->session_id, c->recording_id, c->recording_file);
        c->recording_file = NULL;
        break;
    case CMD_RECORD_STOP:
        md_bridge_record_stop(c->host, c->session_id);
        break;
    case CMD_RECORD_STALL:
        md_bridge_record_stall(c->host, c->session_id, c->stalled);
        break;
    }
    return G_SOURCE_REMOVE;
}

static void post(md_media *m, unsigned worker, struct command *c)
{
    c->host = m->workers[worker].host;
    md_worker_post(m->workers[worker].worker, run_command, c, command_free);
}

static struct session_record *record(const md_media *m, const char *session_id)
{
    return session_id ? g_hash_table_lookup(m->sessions, session_id) : NULL;
}

static bool leg_valid(md_leg leg)
{
    return leg == MD_LEG_TABLET || leg == MD_LEG_VERIFIER;
}

/* A command about session_id (and leg); the caller fills in the rest and
 * post()s it to the session's worker. */
static struct command *command_new(enum command_kind kind, const char *session_id, md_leg leg)
{
    struct command *c = g_new0(struct command, 1);
    c->kind = kind;
    c->session_id = g_strdup(session_id);
    c->leg = leg;
    return c;
}

/* ---- the process's load (admission) ---- */

/* user + system CPU time of every thread of the process, in µs */
static gint64 process_cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ((gint64)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * G_USEC_PER_SEC +
           ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* The CPUs the process may run on (taskset, cpusets): what its load is a share of. */
static unsigned usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    return g_get_num_processors();
}

/* Once per MD_WORKER_LOAD_MS: the workers' demand does not show a core that
 * the control thread, the recorder or the kernel's work for the process fill;
 * the process's CPU time against the CPUs it may use does. */
static gboolean sample_process(gpointer data)
{
    md_media *m = data;
    md_load_meter_update(&m->process_load, process_cpu_us(), m->cpus);
    return G_SOURCE_CONTINUE;
}

/* ---- lifecycle ---- */

static int check_config(const md_config *cfg)
{
    if (cfg->media.port_min > cfg->media.port_max)
        return -MD_E_CONFIG;
    if ((cfg->media.port_min == 0) != (cfg->media.port_max == 0))
        return -MD_E_CONFIG;
    return 0;
}

static int start_workers(md_media *m, const md_config *cfg)
{
    md_bridge_config sc = {
        .ice = {.bind_address = cfg->media.bind_address,
                .public_address = cfg->media.public_address,
                .port_min = (unsigned)cfg->media.port_min,
                .port_max = (unsigned)cfg->media.port_max,
                .ice_tcp = cfg->media.ice_tcp,
                .receive_buffer = (unsigned)cfg->media.socket_receive_buffer},
        .dtls_timeout_ms = (unsigned)cfg->media.dtls_timeout_ms,
        .max_packet = (size_t)cfg->media.max_packet_bytes,
        .nack_packets = (unsigned)cfg->media.nack_buffer_packets,
        .nack_min_ms = (unsigned)cfg->media.nack_buffer_min_ms,
        .nack_max_ms = (unsigned)cfg->media.nack_buffer_max_ms,
        .keyframe_interval_ms = (unsigned)cfg->media.keyframe_interval_ms,
        .max_remote_candidates = (unsigned)cfg->media.max_remote_candidates,
        .max_message_size = (size_t)cfg->media.max_message_size,
        .chat_queue = (unsigned)cfg->media.chat_queue_messages,
        .file_queue = (unsigned)cfg->media.file_queue_files,
        .record_queue_packets = (unsigned)cfg->media.record_queue_packets,
    };
    m->n_workers = cfg->media.workers > 0 ? (unsigned)cfg->media.workers : g_get_num_processors();
    m->workers = g_new0(struct worker_slot, m->n_workers);
    for (unsigned i = 0; i < m->n_workers; i++) {
        int r = md_worker_new(i, &m->workers[i].worker);
        if (r < 0) {
            m->n_workers = i;
            return r;
        }
        m->workers[i].host =
            md_bridge_host_new(md_worker_context(m->workers[i].worker), &sc, m->identity, m->sink);
    }
    return 0;
}

int md_media_new(const md_config *cfg, GMainContext *control_ctx, md_media_event_cb cb,
                 void *userdata, md_media **ret)
{
    md_media *m = NULL;
    int r = check_config(cfg);
    if (r < 0 || !cb || !control_ctx)
        return r < 0 ? r : -EINVAL;
    m = g_new0(md_media, 1);
    m->control = g_main_context_ref(control_ctx);
    m->cb = cb;
    m->userdata = userdata;
    m->max_sessions = (unsigned)cfg->media.max_sessions;
    m->admit = (md_admit_limits){.load_permille = (unsigned)cfg->media.admit_cpu_percent * 10,
                                 .settling = (unsigned)cfg->media.admit_settling};
    m->max_sdp_bytes = (size_t)cfg->media.max_sdp_bytes;
    m->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    m->sink = md_event_sink_new(control_ctx, deliver, m);
    r = md_srtp_init();
    if (r < 0)
        goto out;
    m->srtp_initialized = true;
    r = md_dtls_identity_new(&m->identity);
    if (r < 0)
        goto out;
    r = start_workers(m, cfg);
    if (r < 0)
        goto out;
    m->cpus = usable_cpus();
    md_load_meter_start(&m->process_load, process_cpu_us());
    m->process_timer = g_timeout_source_new(MD_WORKER_LOAD_MS);
    g_source_set_callback(m->process_timer, sample_process, m, NULL);
    g_source_attach(m->process_timer, control_ctx);
    md_debug("media", "started", "{s:i, s:s}", "workers", (int)m->n_workers, "fingerprint",
             md_dtls_identity_fingerprint(m->identity));
    *ret = m;
    m = NULL;
out:
    md_media_free(m);
    return r;
}

md_media *md_media_free(md_media *m)
{
    if (!m)
        return NULL;
    if (m->process_timer) {
        g_source_destroy(m->process_timer);
        g_source_unref(m->process_timer);
    }
    md_event_sink_close(m->sink); /* events still queued are dropped from here on */
    for (unsigned i = 0; i < m->n_workers; i++) {
        struct command *c = g_new0(struct command, 1);
        c->kind = CMD_SHUTDOWN;
        post(m, i, c);
        md_worker_free(m->workers[i].worker);
    }
    g_free(m->workers);
    md_recorder_wait_all(); /* recordings stopped by the shutdown finish their files */
    md_event_sink_unref(m->sink);
    md_dtls_identity_unref(m->identity);
    if (m->srtp_initialized)
        md_srtp_deinit();
    g_hash_table_destroy(m->sessions);
    g_main_context_unref(m->control);
    g_free(m);
    return NULL;
}

const char *md_media_fingerprint(const md_media *m)
{
    return md_dtls_identity_fingerprint(m->identity);
}

unsigned md_media_workers(const md_media *m)
{
    return m->n_workers;
}

unsigned md_media_worker_load_permille(const md_media *m, unsigned worker)
{
    return worker < m->n_workers ? md_worker_load_permille(m->workers[worker].worker) : 0;
}

unsigned md_media_process_load_permille(const md_media *m)
{
    return m->process_load.permille;
}

uint64_t md_media_admission_refusals(const md_media *m)
{
    return m->admission_refusals;
}

/* ---- sessions ---- */

static bool valid_text(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= max || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
            return false;
    return n > 0;
}

/* The worker for a new session (md_admit.h), or -MD_E_MEDIA_CAPACITY.  Runs
 * once per session opened, over the open sessions: no per-packet cost. */
static int admit(md_media *m, gint64 now_us)
{
    if (g_hash_table_size(m->sessions) >= m->max_sessions)
        return -MD_E_MEDIA_CAPACITY;
    g_autofree md_admit_worker *w = g_new0(md_admit_worker, m->n_workers);
    for (unsigned i = 0; i < m->n_workers; i++) {
        w[i].sessions = m->workers[i].sessions;
        w[i].load_permille = md_worker_load_permille(m->workers[i].worker);
    }
    md_admit_worker process = {.sessions = g_hash_table_size(m->sessions),
                               .load_permille = m->process_load.permille};
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, m->sessions);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const struct session_record *rec = v;
        if (now_us - rec->opened_us < (gint64)MD_ADMIT_SETTLE_MS * 1000) {
            w[rec->worker].settling++;
            process.settling++;
        }
    }
    int pick = md_admit_pick(w, m->n_workers, &process, &m->admit);
    if (pick < 0) {
        json_t *workers = json_array();
        for (unsigned i = 0; i < m->n_workers; i++)
            json_array_append_new(
                workers, json_pack("{s:i, s:i, s:i}", "sessions", (int)w[i].sessions, "settling",
                                   (int)w[i].settling, "load_permille", (int)w[i].load_permille));
        md_info("media", "admission_refused", "{s:i, s:i, s:o}", "sessions", (int)process.sessions,
                "process_load_permille", (int)process.load_permille, "workers", workers);
        return -MD_E_MEDIA_CAPACITY;
    }
    return pick;
}

int md_media_session_open(md_media *m, const char *session_id, const md_media_session_options *opt)
{
    const char *const *video_codecs = opt ? opt->video_codecs : NULL;
    if (!session_id || !valid_text(session_id, MAX_SESSION_ID) || !video_codecs || !video_codecs[0])
        return -EINVAL;
    for (size_t i = 0; video_codecs[i]; i++)
        if (!md_sdp_codec_known(video_codecs[i]) || i >= 8)
            return -EINVAL;
    if (g_hash_table_contains(m->sessions, session_id))
        return -EEXIST;
    gint64 now_us = g_get_monotonic_time();
    int worker = admit(m, now_us);
    if (worker < 0) {
        m->admission_refusals++;
        return worker;
    }
    struct session_record *rec = g_new0(struct session_record, 1);
    rec->worker = (unsigned)worker;
    rec->opened_us = now_us;
    rec->serial = ++m->next_serial;
    m->workers[rec->worker].sessions++;
    g_hash_table_insert(m->sessions, g_strdup(session_id), rec);

    struct command *c = command_new(CMD_OPEN, session_id, MD_LEG_TABLET);
    c->serial = rec->serial;
    c->video_codecs = g_strdupv((char **)video_codecs);
    c->require_srtp_gcm = opt->require_srtp_gcm;
    c->files.evidence = opt->evidence;
    c->files.max_file_size = opt->max_file_size;
    c->files.file_types = opt->file_types ? g_strdupv((char **)opt->file_types) : NULL;
    c->files.max_chat_bytes = opt->max_chat_bytes;
    post(m, rec->worker, c);
    return 0;
}

int md_media_leg_offer(md_media *m, const char *session_id, md_leg leg, const char *sdp, size_t len,
                       char **ret_detail)
{
    char err[256] = "";
    md_sdp *offer = NULL;
    struct session_record *rec = record(m, session_id);
    if (!rec)
        return -MD_E_SESSION_UNKNOWN;
    if (!leg_valid(leg))
        return -EINVAL;
    int r = md_sdp_parse(sdp, len, m->max_sdp_bytes, &offer, err, sizeof(err));
    if (r == 0) {
        r = md_sdp_check_offer(offer, err, sizeof(err));
        if (r < 0)
            offer = md_sdp_free(offer);
    }
    if (r < 0) {
        if (ret_detail)
            *ret_detail = g_strdup(err);
        return r;
    }
    struct command *c = command_new(CMD_OFFER, session_id, leg);
    c->offer = offer;
    post(m, rec->worker, c);
    return 0;
}

int md_media_leg_candidate(md_media *m, const char *session_id, md_leg leg, const char *candidate,
                           const char *mid)
{
    struct session_record *rec = record(m, session_id);
    if (!rec)
        return -MD_E_SESSION_UNKNOWN;
    if (!leg_valid(leg) || (candidate && !valid_text(candidate, MD_MEDIA_MAX_CANDIDATE_BYTES)))
        return -EINVAL;
    if (candidate && !g_str_has_prefix(candidate, "candidate:") &&
        !g_str_has_prefix(candidate, "a=candidate:"))
        return -EINVAL;
    struct command *c = command_new(CMD_CANDIDATE, session_id, leg);
    c->candidate = g_strdup(candidate);
    post(m, rec->worker, c);
    return 0;
}

int md_media_chat_deliver(md_media *m, const char *session_id, md_leg to_leg, const char *chat_id,
                          int64_t ts, const char *text)
{
    struct session_record *rec = record(m, session_id);
    if (!rec)
        return -MD_E_SESSION_UNKNOWN;
    if (!leg_valid(to_leg) || !chat_id || !text || !valid_text(chat_id, MD_DC_ID_MAX) ||
        md_dc_check_chat_text(text, MD_DC_JSON_MAX) < 0)
        return -EINVAL;
    struct command *c = command_new(CMD_CHAT, session_id, to_leg);
    c->chat_id = g_strdup(chat_id);
    c->chat_ts = ts;
    c->chat_text = g_strdup(text);
    post(m, rec->worker, c);
    return 0;
}

int md_media_file_deliver(md_media *m, const char *session_id, md_leg to_leg,
                          const md_media_file *f)
{
    struct session_record *rec = record(m, session_id);
    if (!rec)
        return -MD_E_SESSION_UNKNOWN;
    if (!leg_valid(to_leg) || !f || !f->id || !f->name || !f->mime || !f->sha256 ||
        !valid_text(f->id, MD_DC_ID_MAX) || md_dc_check_file_name(f->name) < 0 ||
        !valid_text(f->mime, MD_DC_MIME_MAX) || strlen(f->sha256) != MD_SHA256_HEX_LEN ||
        f->size == 0 || (f->still && (f->width == 0 || f->height == 0)))
        return -EINVAL;
    struct command *c = command_new(CMD_FILE, session_id, to_leg);
    md_owned_file_copy(&c->file, f);
    post(m, rec->worker, c);
    return 0;
}

int md_media_still_expect(md_media *m, const char *session_id, const char *still_id)
{
    struct session_record *rec = record(m, session_id);
    if (!rec)
        return -MD_E_SESSION_UNKNOWN;
    if (!still_id || !valid_text(still_id, MD_DC_ID_MAX))
        return -EINVAL;
    struct command *c = command_new(CMD_STILL, session_id, MD_LEG_TABLET);
    c->still_id = g_strdup(still_id);
    post(m, rec->worker, c);
    return 0;
}

static bool recording_id_ok(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++)
        if (n >= 64 || !(g_ascii_isalnum(id[n]) || id[n] == '_' || id[n] == '-'))
            return false;
    return n > 0;
}

int md_media_record_start(md_media *m, const char *session_id, const char *recording_id,
                          md_evidence_rec *file)
{
    struct session_record *rec = record(m, session_id);
    if (!rec || !recording_id || !file || !recording_id_ok(recording_id)) {
        md_evidence_rec_abandon(file);
        return !rec ? -MD_E_SESSION_UNKNOWN : -EINVAL;
    }
    struct command *c = command_new(CMD_RECORD_START, session_id, MD_LEG_TABLET);
    c->recording_id = g_strdup(recording_id);
    c->recording_file = file;
    post(m, rec->worker, c);
    return 0;
}

int md_media_record_stop(md_media *m, const char *session_id)
{
    struct session_record *rec = record(m, session_id);
    if (!rec)
        return -MD_E_SESSION_UNKNOWN;
    post(m, rec->worker, command_new(CMD_RECORD_STOP, session_id, MD_LEG_TABLET));
    return 0;
}

int md_media_record_test_stall(md_media *m, const char *session_id, bool stalled)
{
    struct session_record *rec = record(m, session_id);
    if (!rec)
        return -MD_E_SESSION_UNKNOWN;
    struct command *c = command_new(CMD_RECORD_STALL, session_id, MD_LEG_TABLET);
    c->stalled = stalled;
    post(m, rec->worker, c);
    return 0;
}

int md_media_session_close(md_media *m, const char *session_id)
{
    struct session_record *rec = record(m, session_id);
    if (!rec)
        return -MD_E_SESSION_UNKNOWN;
    struct command *c = command_new(CMD_CLOSE, session_id, MD_LEG_TABLET);
    m->workers[rec->worker].sessions--;
    post(m, rec->worker, c);
    g_hash_table_remove(m->sessions, session_id);
    return 0;
}
