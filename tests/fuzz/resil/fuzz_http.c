/*
 * libFuzzer harness for the HTTP API behind the TLS listeners
 * (signaling/md_http_api.c): the request line's method and path, the query
 * string, the session cookie, Origin and the body all come from the input,
 * which is split at '\n' into
 *
 *   listener ('d' device, else staff) \n method \n path \n query \n cookie \n origin \n body
 *
 * (missing fields are empty / absent).  libwebsockets has already split the
 * HTTP request when md_http_api_handle runs; everything after that is ours.
 * The server is the real md_server state on an in-memory store with the
 * sample registry imported, an auditor and a verifier, and a login cookie
 * (AUDITOR_COOKIE, VERIFIER_COOKIE; 43 characters like a real token) for
 * each, so authenticated paths (audit query and verify, me, logout) are
 * reached; logins with any password and TOTP are tried too.  Replayed from
 * tests/fuzz/resil/corpus/http.
 */
#include "fuzz_common.h"
#include "md_crypto.h"
#include "md_limits.h"
#include "md_server_private.h"
#include "md_staff.h"
#include "md_time.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define AUDITOR_COOKIE "fuzz-auditor-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define VERIFIER_COOKIE "fuzz-verifier-AAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static md_server srv;
static md_config cfg;

static void add_cookie(const char *token, const char *username)
{
    char hex[MD_SHA256_HEX_LEN + 1];
    md_sha256_hex(token, strlen(token), hex);
    if (md_store_exec(srv.store,
                      "INSERT INTO web_session (token_hash, username, created_at, expires_at)"
                      " VALUES (?, ?, 0, ?)",
                      MD_PARAMS(MD_P_TEXT(hex), MD_P_TEXT(username), MD_P_INT(INT64_MAX / 2))) < 0)
        FUZZ_CHECK(!"web_session insert");
}

static void set_up(void)
{
    const char *root = getenv("MD_SOURCE_ROOT");
    if (!root)
        root = MD_FUZZ_SOURCE_ROOT;
    g_autofree char *config = g_strdup_printf(
        "{\"data_dir\": \"%s\", \"database\": \":memory:\", \"log_level\": \"error\"}", fuzz_dir());
    g_autofree char *path = fuzz_write("http-config.json", (const uint8_t *)config, strlen(config));
    char *err = NULL;
    FUZZ_CHECK(md_config_load(path, &cfg, &err) == 0);
    g_free(cfg.web_root);
    cfg.web_root = g_build_filename(root, "web", NULL);
    g_autofree char *procedures = g_build_filename(root, "data", "procedures.json", NULL);
    g_autofree char *registry = g_build_filename(root, "data", "sample-registry.json", NULL);
    srv.cfg = &cfg;
    srv.auth_limits = (md_auth_limits){.session_ttl_seconds = 3600};
    srv.parties = g_ptr_array_new(); /* no connections: logout closes none */
    /* No login pool: without a connection a login is answered at once. */
    srv.login_limiter = md_login_limiter_new(&(md_login_limits){.per_minute = 1 << 30,
                                                                .per_source_per_minute = 1 << 30,
                                                                .threshold = 5,
                                                                .max_backoff_seconds = 60});
    FUZZ_CHECK(md_store_open(":memory:", &srv.store) == 0);
    /* Sealed columns (TOTP secrets) need the store's field key, as serve attaches it. */
    static const uint8_t field_key[MD_STORE_FIELD_KEY_LEN] = {42};
    md_store_set_field_key(srv.store, field_key);
    FUZZ_CHECK(md_audit_open(srv.store, cfg.audit.signing_key, 1000, 3600, &srv.audit) == 0);
    FUZZ_CHECK(md_procedures_load(procedures, &srv.procedures) == 0);
    json_t *doc = json_load_file(registry, 0, NULL);
    FILE *devnull = fopen("/dev/null", "w");
    FUZZ_CHECK(doc && md_registry_import(srv.store, srv.audit, srv.procedures, doc, "fuzz",
                                         md_now_ms(), devnull) >= 0);
    fclose(devnull);
    json_decref(doc);
    char *uri[2] = {NULL, NULL};
    FUZZ_CHECK(md_staff_add(srv.store, srv.audit, "a-fuzz", MD_ROLE_AUDITOR, NULL,
                            "correct horse battery staple", "fuzz", md_now_ms(), &uri[0]) == 0);
    FUZZ_CHECK(md_staff_add(srv.store, srv.audit, "v-fuzz", MD_ROLE_VERIFIER, "204111",
                            "correct horse battery staple", "fuzz", md_now_ms(), &uri[1]) == 0);
    free(uri[0]);
    free(uri[1]);
    add_cookie(AUDITOR_COOKIE, "a-fuzz");
    add_cookie(VERIFIER_COOKIE, "v-fuzz");
}

/* Everything set_up made, and what handlers made on demand. */
static void tear_down(void)
{
    srv.audit = md_audit_close(srv.audit);
    srv.store = md_store_close(srv.store);
    srv.procedures = md_procedures_free(srv.procedures);
    srv.login_limiter = md_login_limiter_free(srv.login_limiter);
    g_ptr_array_free(srv.parties, TRUE);
    if (srv.playback_tickets)
        g_hash_table_destroy(srv.playback_tickets);
    md_config_clear(&cfg);
    memset(&srv, 0, sizeof(srv));
}

/*
 * Inputs append audit entries, and GET /api/audit/verify walks the whole
 * chain; on one state kept for a whole run the walk grows until inputs time
 * out.  The gateway walks on md_audit_check's thread, so a long log never
 * holds up its control loop; here, where requests have no connection to
 * defer, it runs inline.  A fresh state every so many inputs keeps the log
 * short.
 */
#define INPUTS_PER_STATE 1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned inputs;
    if (srv.store && ++inputs % INPUTS_PER_STATE == 0)
        tear_down();
    if (!srv.store)
        set_up();
    /* Split into at most 7 NUL-terminated fields (the body may hold '\n'). */
    char *copy = g_malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *field[7] = {"", "", "", "", "", NULL, NULL};
    char *p = copy;
    for (int i = 0; i < 7 && p; i++) {
        field[i] = p;
        char *nl = i < 6 ? memchr(p, '\n', (size_t)(copy + size - p)) : NULL;
        if (nl) {
            *nl = '\0';
            p = nl + 1;
        } else {
            p = NULL;
        }
    }
    md_http_request req = {
        .listener = field[0][0] == 'd' ? MD_LISTENER_DEVICE : MD_LISTENER_STAFF,
        .method = field[1],
        .path = field[2],
        .query = field[3],
        .session_cookie = field[4][0] ? field[4] : NULL,
        .origin = field[5],
        .host = "127.0.0.1",
        .remote = "127.0.0.1",
        .content_type = "application/json",
        .body = field[6],
        .body_len = field[6] ? strlen(field[6]) : 0,
    };
    md_http_response resp = {0};
    md_http_api_handle(&srv, &req, &resp);
    md_http_response_clear(&resp);
    g_free(copy);
    return 0;
}
