/*
 * A tiny gateway for integration tests: one md_media bound to 127.0.0.1 with
 * a session "s1" opened at start, driven by JSON lines on stdin and reporting
 * events as JSON lines on stdout.  tests/media/aiortc_*.py run real aiortc
 * peers against it.  "session" defaults to "s1" everywhere.
 * Input:  {"op":"offer","leg":"tablet","sdp":"...","session":"s1"}
 *         {"op":"candidate","leg":"verifier","candidate":"..."|null}
 *         {"op":"open","session":"s2"}   {"op":"close","session":"s2"}
 *         {"op":"resources"}   (open fds and threads of this process)
 * Output: {"event":"answer"|"candidate"|"connected"|"disconnected"|"failed"|
 *          "quality"|"chat"|"channel_refused"|"refused"|"opened"|"resources",
 *          "leg":..., "session":..., "sdp"/"candidate"/"error"/"detail"/"stats"/
 *          "id"/"sha256"/"text"/"label"/"fds"/"threads": ...}
 * Chat (MD_MEDIA_CHAT) stands in for the control thread, without a
 * transcript: it is delivered to the other leg at once.  Files: with
 * MD_EVIDENCE_DIR set, sessions get an md_evidence store there (master key
 * <dir>/master.key) and MD_MAX_FILE_BYTES as their cap (default 20 MiB);
 * every MD_MEDIA_FILE ("file" event: id, name, size, mime, sha256) is
 * delivered to the other leg at once, as the control thread does after its
 * audit.  Without it every file_offer is refused.
 * Recording (tests/recorder): with MD_EVIDENCE_DIR and MD_RECORD_DB (an
 * SQLite path) set, recordings are kept as `serve` keeps them: at start,
 * rows left "recording" by a crash are recovered (md_recording_recover);
 *         {"op":"record_start"} -> {"event":"record_begun","id":...}
 *         {"op":"record_stop"}  {"op":"record_stall","stalled":true|false}
 * and every MD_MEDIA_RECORDING is a "recording" event (id, state, codec,
 * sha256, bytes, duration_ms, packets, dropped); a final one ends the row.
 * Usage: media_peer [codec ...]   (default VP8 H264).  Exits on stdin EOF.
 */
#include "md_config.h"
#include "md_err.h"
#include "md_log.h"
#include "md_media.h"
#include "md_recording.h"
#include "md_sanitizer.h"
#include "md_store.h"

#include <errno.h>
#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static GMainLoop *loop;
static md_media *media;

static const char *event_name(md_media_event_type t)
{
    static const char *const names[] = {"answer", "candidate",   "connected", "disconnected",
                                        "failed", "quality",     "chat",      "channel_refused",
                                        "file",   "file_failed", "recording"};
    return (size_t)t < G_N_ELEMENTS(names) ? names[t] : "unknown";
}

static void emit(json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    fprintf(stdout, "%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(obj);
}

static md_store *store;

static void on_recording(const md_media_event *ev, json_t *o)
{
    const md_media_recording *r = &ev->recording;
    json_object_set_new(o, "id", json_string(r->id));
    json_object_set_new(o, "state", json_string(r->state));
    json_object_set_new(o, "codec", r->codec ? json_string(r->codec) : json_null());
    json_object_set_new(o, "sha256", json_string(r->sha256 ? r->sha256 : ""));
    json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
    json_object_set_new(o, "duration_ms", json_integer(r->duration_ms));
    json_object_set_new(o, "packets", json_integer((json_int_t)r->packets));
    json_object_set_new(o, "dropped", json_integer((json_int_t)r->dropped));
    if (!store)
        return;
    if (strcmp(r->state, "recording") == 0) {
        md_recording_set_codec(store, r->id, r->codec);
        return;
    }
    md_recording_end(store, r->id,
                     strcmp(r->state, "complete") == 0 ? MD_RECORDING_COMPLETE : MD_RECORDING_CUT,
                     g_get_real_time() / 1000, r->duration_ms, r->sha256, r->bytes);
}

static void on_event(const md_media_event *ev, void *ud)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "event", event_name(ev->type), "leg",
                          md_leg_name(ev->leg), "session", ev->session_id);
    if (ev->sdp)
        json_object_set_new(o, "sdp", json_string(ev->sdp));
    if (ev->type == MD_MEDIA_CANDIDATE)
        json_object_set_new(o, "candidate",
                            ev->candidate ? json_string(ev->candidate) : json_null());
    if (ev->stats)
        json_object_set(o, "stats", ev->stats);
    if (ev->type == MD_MEDIA_CHAT) {
        json_object_set_new(o, "id", json_string(ev->chat_id));
        json_object_set_new(o, "sha256", json_string(ev->chat_sha256));
        json_object_set_new(o, "text", json_string(ev->chat_text));
        md_media_chat_deliver(media, ev->session_id,
                              ev->leg == MD_LEG_TABLET ? MD_LEG_VERIFIER : MD_LEG_TABLET,
                              ev->chat_id, ev->chat_ts, ev->chat_text);
    }
    if (ev->type == MD_MEDIA_FILE) {
        json_object_set_new(o, "id", json_string(ev->file.id));
        json_object_set_new(o, "name", json_string(ev->file.name));
        json_object_set_new(o, "size", json_integer((json_int_t)ev->file.size));
        json_object_set_new(o, "mime", json_string(ev->file.mime));
        json_object_set_new(o, "sha256", json_string(ev->file.sha256));
        json_object_set_new(o, "kind", json_string(ev->file.still ? "still" : "file"));
        md_media_file_deliver(media, ev->session_id,
                              ev->leg == MD_LEG_TABLET ? MD_LEG_VERIFIER : MD_LEG_TABLET,
                              &ev->file);
    }
    if (ev->type == MD_MEDIA_FILE_FAILED)
        json_object_set_new(o, "id", json_string(ev->file.id));
    if (ev->type == MD_MEDIA_RECORDING)
        on_recording(ev, o);
    if (ev->label)
        json_object_set_new(o, "label", json_string(ev->label));
    if (ev->error) {
        json_object_set_new(o, "error", json_string(md_err_code(ev->error)));
        json_object_set_new(o, "detail", json_string(ev->error_detail ? ev->error_detail : ""));
    }
    emit(o);
}

static md_leg leg_of(json_t *msg)
{
    const char *leg = json_string_value(json_object_get(msg, "leg"));
    return leg && strcmp(leg, "verifier") == 0 ? MD_LEG_VERIFIER : MD_LEG_TABLET;
}

static unsigned count_entries(const char *dir)
{
    unsigned n = 0;
    GDir *d = g_dir_open(dir, 0, NULL);
    while (d && g_dir_read_name(d))
        n++;
    if (d)
        g_dir_close(d);
    return n;
}

static const char *session_of(json_t *msg)
{
    const char *id = json_string_value(json_object_get(msg, "session"));
    return id ? id : "s1";
}

static const char *const *codecs;
static md_evidence *evidence;
static uint64_t max_file_size;

static md_media_session_options session_options(void)
{
    return (md_media_session_options){
        .video_codecs = codecs, .evidence = evidence, .max_file_size = max_file_size};
}

static void handle(json_t *msg)
{
    const char *op = json_string_value(json_object_get(msg, "op"));
    const char *sid = session_of(msg);
    if (!op)
        return;
    if (strcmp(op, "offer") == 0) {
        const char *sdp = json_string_value(json_object_get(msg, "sdp"));
        char *detail = NULL;
        int r = md_media_leg_offer(media, sid, leg_of(msg), sdp ? sdp : "", sdp ? strlen(sdp) : 0,
                                   &detail);
        if (r < 0)
            emit(json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "refused", "session", sid, "leg",
                           md_leg_name(leg_of(msg)), "error", md_err_code(r), "detail",
                           detail ? detail : ""));
        g_free(detail);
    } else if (strcmp(op, "candidate") == 0) {
        const char *c = json_string_value(json_object_get(msg, "candidate"));
        md_media_leg_candidate(media, sid, leg_of(msg), c, NULL);
    } else if (strcmp(op, "close") == 0) {
        md_media_session_close(media, sid);
    } else if (strcmp(op, "open") == 0) {
        md_media_session_options opt = session_options();
        int r = md_media_session_open(media, sid, &opt);
        emit(json_pack("{s:s, s:s, s:i}", "event", "opened", "session", sid, "result", r));
    } else if (strcmp(op, "record_start") == 0) {
        char *id = NULL;
        md_evidence_rec *file = NULL;
        int r = store && evidence
                    ? md_recording_begin(store, evidence, sid, g_get_real_time() / 1000, &id, &file)
                    : -EINVAL;
        if (r == 0)
            r = md_media_record_start(media, sid, id, file);
        emit(json_pack("{s:s, s:s, s:s?, s:s}", "event", "record_begun", "session", sid, "id", id,
                       "result", r < 0 ? md_err_code(r) : "ok"));
        free(id);
    } else if (strcmp(op, "record_stop") == 0) {
        md_media_record_stop(media, sid);
    } else if (strcmp(op, "record_stall") == 0) {
        md_media_record_test_stall(media, sid, json_is_true(json_object_get(msg, "stalled")));
    } else if (strcmp(op, "resources") == 0) {
        /* Counted here, on the control thread, after every earlier command
         * was posted; workers may still be running the last closes. */
        emit(json_pack("{s:s, s:i, s:i}", "event", "resources", "fds",
                       (int)count_entries("/proc/self/fd"), "threads",
                       (int)count_entries("/proc/self/task")));
    }
}

static gboolean on_stdin(GIOChannel *ch, GIOCondition cond, gpointer data)
{
    char *line = NULL;
    gsize len = 0;
    GIOStatus st = g_io_channel_read_line(ch, &line, &len, NULL, NULL);
    if (st == G_IO_STATUS_EOF || st == G_IO_STATUS_ERROR) {
        g_main_loop_quit(loop);
        return G_SOURCE_REMOVE;
    }
    if (line) {
        json_t *msg = json_loadb(line, len, 0, NULL);
        if (msg)
            handle(msg);
        json_decref(msg);
        g_free(line);
    }
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    md_sanitizer_init(); /* before GStreamer's quarks: see core/md_sanitizer.c */
    md_config cfg;
    const char *default_codecs[] = {"VP8", "H264", NULL};
    codecs = argc > 1 ? (const char *const *)argv + 1 : default_codecs;
    if (md_config_load(NULL, &cfg, NULL) < 0)
        return 2;
    g_free(cfg.media.bind_address);
    cfg.media.bind_address = g_strdup("127.0.0.1"); /* loopback only (DESIGN 8) */
    cfg.media.workers = 2;
    const char *ev_dir = g_getenv("MD_EVIDENCE_DIR");
    const char *cap = g_getenv("MD_MAX_FILE_BYTES");
    max_file_size = cap ? g_ascii_strtoull(cap, NULL, 10) : 0;
    if (ev_dir) {
        g_autofree char *key = g_build_filename(ev_dir, "master.key", NULL);
        int er = md_evidence_open(ev_dir, key, &evidence);
        if (er < 0) {
            fprintf(stderr, "md_evidence_open: %s\n", md_strerror(er));
            return 2;
        }
    }
    const char *queue = g_getenv("MD_RECORD_QUEUE_PACKETS"); /* small: the stall test */
    if (queue)
        cfg.media.record_queue_packets = (int)g_ascii_strtoll(queue, NULL, 10);
    const char *level = g_getenv("MD_LOG_LEVEL"); /* e.g. debug, when a test fails */
    if (level && md_log_level_from_string(level) >= 0)
        md_log_set_level((enum md_log_level)md_log_level_from_string(level));
    const char *db = g_getenv("MD_RECORD_DB");
    if (db && evidence) {
        int sr = md_store_open(db, &store);
        if (sr < 0) {
            fprintf(stderr, "md_store_open: %s\n", md_strerror(sr));
            return 2;
        }
        md_recording_recover(store, evidence, g_get_real_time() / 1000);
    }
    loop = g_main_loop_new(NULL, FALSE);
    int r = md_media_new(&cfg, g_main_context_default(), on_event, NULL, &media);
    if (r < 0) {
        fprintf(stderr, "md_media_new: %s\n", md_strerror(r));
        return 2;
    }
    md_media_session_options opt = session_options();
    r = md_media_session_open(media, "s1", &opt);
    if (r < 0) {
        fprintf(stderr, "session_open: %s\n", md_strerror(r));
        return 2;
    }
    GIOChannel *ch = g_io_channel_unix_new(0);
    g_io_add_watch(ch, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, NULL);
    g_main_loop_run(loop);
    g_io_channel_unref(ch);
    md_media_free(media);
    md_evidence_free(evidence); /* after the workers that write into it */
    md_store_close(store);
    g_main_loop_unref(loop);
    md_config_clear(&cfg);
    return 0;
}
