/*
 * `madoguchi recording list|export` (DESIGN 6, docs/internals/recorder.md).
 * An export is evidence leaving the system: it needs a reason, and the
 * audit keeps the reason's SHA-256 (the text itself may be personal data),
 * the recording id and the SHA-256 of the file written.
 */
#include "cli.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_recorder.h"
#include "md_recording.h"
#include "md_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int open_evidence(md_cli *cli, md_evidence **ret)
{
    int r = md_evidence_open(cli->cfg.evidence.dir, cli->cfg.evidence.master_key, ret);
    if (r < 0)
        md_cli_fail(cli->cfg.evidence.dir, r);
    return r;
}

static int print_row(const md_recording *r, void *ud)
{
    char started[40];
    md_time_format_iso(r->started_at, started, sizeof(started));
    printf("%s\t%s\t%s\t%s\t%s\t%" PRId64 ".%03" PRId64 "s\t%s\n", r->id, r->session_id,
           md_recording_state_name(r->state), r->codec ? r->codec : "-", started,
           r->duration_ms / 1000, r->duration_ms % 1000, r->sha256 ? r->sha256 : "-");
    return 0;
}

int md_cmd_recording_list(md_cli *cli, int argc, char **argv)
{
    char *session = NULL;
    const GOptionEntry entries[] = {
        {"session", 0, 0, G_OPTION_ARG_STRING, &session, "only this session's", "ID"},
        {NULL},
    };
    bool done;
    int status = md_cli_parse(&argc, &argv, "",
                              "Prints every recording: id, session, state (recording, complete, "
                              "cut, purged), codec, start (UTC), duration, SHA-256 of the "
                              "encrypted file.",
                              entries, &done);
    if (done)
        goto out;
    status = 1;
    if (md_cli_store(cli) < 0)
        goto out;
    printf("id\tsession\tstate\tcodec\tstarted\tduration\tsha256\n");
    int r = md_recording_list(cli->store, session, print_row, NULL);
    status = r < 0 ? md_cli_fail("recording list", r) : 0;
out:
    g_free(session);
    return status;
}

int md_cmd_recording_export(md_cli *cli, int argc, char **argv)
{
    char *out_path = NULL, *reason = NULL;
    const GOptionEntry entries[] = {
        {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out_path, "file to write (.webm or .mp4)", "FILE"},
        {"reason", 0, 0, G_OPTION_ARG_STRING, &reason, "why (audited as its SHA-256)", "TEXT"},
        {NULL},
    };
    md_evidence *ev = NULL;
    md_evidence_rec_reader *rd = NULL;
    md_recording rec = {0};
    bool done;
    int r, status = md_cli_parse(&argc, &argv, "ID",
                                 "Decrypts a recording and writes it as a file standard players "
                                 "open: WebM for VP8, MP4 for H.264, without transcoding.  A cut "
                                 "recording exports up to the cut.  Audited.",
                                 entries, &done);
    if (done)
        goto out;
    status = 2;
    if (argc != 2 || !out_path || !reason || !*reason) {
        fprintf(stderr, "usage: madoguchi recording export ID --out FILE --reason TEXT\n");
        goto out;
    }
    status = 1;
    const char *id = argv[1];
    if (md_cli_audit(cli) < 0 || open_evidence(cli, &ev) < 0)
        goto out;
    if ((r = md_recording_get(cli->store, id, &rec)) <= 0) {
        status = md_cli_fail(id, r < 0 ? r : -MD_E_RECORDING_UNKNOWN);
        goto out;
    }
    if ((r = md_recording_open(cli->store, ev, id, &rd)) < 0) {
        status = md_cli_fail(id, r);
        goto out;
    }
    bool truncated = md_evidence_rec_reader_truncated(rd);
    if (truncated && rec.state == MD_RECORDING_COMPLETE) {
        /* Stored complete, found cut: someone shortened the file. */
        status = md_cli_fail(id, -MD_E_EVIDENCE_CORRUPT);
        goto out;
    }
    const char *container = NULL;
    int64_t duration_ms = 0;
    if ((r = md_recorder_export(rd, out_path, &container, &duration_ms)) < 0) {
        status = md_cli_fail("recording export", r);
        goto out;
    }
    char reason_sha[MD_SHA256_HEX_LEN + 1];
    md_sha256_hex(reason, strlen(reason), reason_sha);
    json_t *detail =
        json_pack("{s:s, s:s, s:s, s:I, s:b}", "recording", id, "reason_sha256", reason_sha,
                  "container", container, "duration_ms", (json_int_t)duration_ms, "cut", truncated);
    int64_t seq = md_audit_append_new(cli->audit, cli->actor, "recording_exported", NULL, NULL,
                                      rec.session_id, detail);
    if (seq < 0) {
        /* Not audited, not handed out. */
        remove(out_path);
        status = md_cli_fail("audit", (int)seq);
        goto out;
    }
    printf("%s: %s, %" PRId64 ".%03" PRId64 " s%s\n", out_path, container, duration_ms / 1000,
           duration_ms % 1000, truncated ? " (cut: the recording was interrupted)" : "");
    status = 0;
out:
    md_evidence_rec_reader_free(rd);
    md_evidence_free(ev);
    md_recording_clear(&rec);
    g_free(out_path);
    g_free(reason);
    return status;
}
