/*
 * The registry: check digits, policy parsing, import of the sample and of the
 * refusal cases in tests/data (each <name>.json is compared with the report in
 * <name>.expected), the admission check with the clock fixed at 2026-11-22
 * JST, devices, and the public listings.
 */
#include "md_audit.h"
#include "md_err.h"
#include "md_registry.h"
#include "md_store.h"
#include "md_test.h"
#include "md_time.h"

#include <errno.h>
#include <glib.h>

static char *source_path(const char *rel)
{
    const char *root = getenv("MD_SOURCE_ROOT");
    return g_build_filename(root ? root : ".", rel, NULL);
}

static md_procedures *load_procedures(void)
{
    md_procedures *procs = NULL;
    char *path = source_path("data/procedures.json");
    ASSERT_OK(md_procedures_load(path, &procs));
    g_free(path);
    return procs;
}

static json_t *load_json(const char *rel)
{
    char *path = source_path(rel);
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    if (!doc)
        MD_FAIL("%s: %s", path, err.text);
    g_free(path);
    return doc;
}

static int64_t at(const char *iso)
{
    int64_t ms;
    ASSERT_OK(md_time_parse_iso(iso, &ms));
    return ms;
}

/* 2026-11-22 12:00 JST. */
#define NOW at("2026-11-22T03:00:00Z")

/* ---- fixture: a fresh store with an audit log, optionally the sample imported ---- */

struct fixture {
    char *dir;
    md_store *st;
    md_audit *audit;
    md_procedures *procs;
};

static int import_file(struct fixture *f, const char *rel, char **ret_report)
{
    json_t *doc = load_json(rel);
    char *report = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&report, &len);
    ASSERT(out);
    int r = md_registry_import(f->st, f->audit, f->procs, doc, "operator", NOW, out);
    fclose(out);
    json_decref(doc);
    if (ret_report)
        *ret_report = report;
    else
        free(report);
    return r;
}

static void fixture_open(struct fixture *f, bool with_sample)
{
    f->dir = md_test_tmpdir();
    char *db = g_build_filename(f->dir, "registry.db", NULL);
    char *key = g_build_filename(f->dir, "audit.key", NULL);
    ASSERT_OK(md_store_open(db, &f->st));
    ASSERT_OK(md_audit_open(f->st, key, 1000, 3600, &f->audit));
    f->procs = load_procedures();
    g_free(db);
    g_free(key);
    if (with_sample)
        ASSERT_EQ(import_file(f, "data/sample-registry.json", NULL), 0);
}

static void fixture_close(struct fixture *f)
{
    md_audit_close(f->audit);
    md_store_close(f->st);
    md_procedures_free(f->procs);
    g_free(f->dir);
}

static int64_t count(struct fixture *f, const char *sql)
{
    int64_t n = -1;
    ASSERT_EQ(md_store_query_int(f->st, sql, MD_NO_PARAMS, &n), 1);
    return n;
}

static void expect_report(struct fixture *f, const char *name, int refused)
{
    char *json = g_strdup_printf("tests/data/%s.json", name);
    char *expected_path = g_strdup_printf("tests/data/%s.expected", name);
    char *path = source_path(expected_path);
    char *expected = NULL, *report = NULL;
    ASSERT(g_file_get_contents(path, &expected, NULL, NULL));
    ASSERT_EQ(import_file(f, json, &report), refused);
    ASSERT_STR_EQ(report, expected);
    free(report);
    g_free(expected);
    g_free(path);
    g_free(expected_path);
    g_free(json);
}

/* ---- pure rules ---- */

static void test_check_digit(void)
{
    ASSERT_OK(md_municipality_code_check("204111")); /* 泰阜村 */
    ASSERT_OK(md_municipality_code_check("092061")); /* 日光市 */
    ASSERT_OK(md_municipality_code_check("452025")); /* 都城市 */
    ASSERT_OK(md_municipality_code_check("131016")); /* 千代田区 */
    ASSERT_EQ(md_municipality_code_check("204112"), -MD_E_MUNICIPALITY_CODE);
    ASSERT_EQ(md_municipality_code_check("204011"), -MD_E_MUNICIPALITY_CODE);
    ASSERT_EQ(md_municipality_code_check("20411"), -MD_E_MUNICIPALITY_CODE);
    ASSERT_EQ(md_municipality_code_check("2041110"), -MD_E_MUNICIPALITY_CODE);
    ASSERT_EQ(md_municipality_code_check("20411a"), -MD_E_MUNICIPALITY_CODE);
    ASSERT_EQ(md_municipality_code_check(" 04111"), -MD_E_MUNICIPALITY_CODE);
    ASSERT_EQ(md_municipality_code_check(""), -MD_E_MUNICIPALITY_CODE);
    ASSERT_EQ(md_municipality_code_check(NULL), -MD_E_MUNICIPALITY_CODE);
}

static void test_procedures(void)
{
    md_procedures *procs = load_procedures();
    ASSERT_EQ(md_procedures_count(procs), 15);
    const md_procedure *p = md_procedures_find(procs, "mynumber.new");
    ASSERT(p && p->direct_only && p->designation == MD_DESIGNATION_COUNCIL);
    ASSERT(p->available == MD_AVAILABLE_NOW);
    p = md_procedures_find(procs, "mynumber.renewal");
    ASSERT(p && p->available == MD_AVAILABLE_AFTER_UPGRADE);
    p = md_procedures_find(procs, "application_support");
    ASSERT(p && !p->direct_only && p->designation == MD_DESIGNATION_CONTRACT);
    ASSERT(!md_procedures_find(procs, "passport.new"));
    ASSERT_STR_EQ(md_procedures_at(procs, 0)->id, "koseki.certificate");
    ASSERT(!md_procedures_at(procs, 15));
    md_procedures_free(procs);

    md_procedures *none = NULL;
    ASSERT_EQ(md_procedures_load("/nonexistent/procedures.json", &none), -ENOENT);
    ASSERT(!none);
}

static int parse_policy(const char *text, md_policy *ret, char **ret_error)
{
    json_t *obj = json_loads(text, 0, NULL);
    ASSERT(obj);
    int r = md_policy_parse(obj, ret, ret_error);
    json_decref(obj);
    return r;
}

static void test_policy_ok(void)
{
    md_policy p;
    char *error = NULL;

    ASSERT_OK(parse_policy("{}", &p, &error));
    ASSERT(p.recording == MD_RECORDING_OFF && p.require_device_cert);
    ASSERT_STR_EQ(p.min_tls, "1.3");
    ASSERT(p.assignment == MD_ASSIGN_PICK && !p.allowed_networks &&
           !md_quality_thresholds_any(&p.quality));
    ASSERT_STR_EQ(p.file_types[0], "image/jpeg");
    md_policy_clear(&p);

    ASSERT_OK(parse_policy("{\"recording\": \"required\", \"retention_days\": 1825,"
                           " \"max_file_mb\": 20, \"file_types\": [\"Image/JPEG\", "
                           "\"application/vnd.ms-excel\"], \"require_device_cert\": false,"
                           " \"min_tls\": \"1.2\", \"allowed_networks\": [\"192.0.2.0/24\","
                           " \"2001:db8::/32\", \"0.0.0.0/0\", \"203.0.113.7/32\"],"
                           " \"assignment\": \"random\", \"quality\": {\"min_video_kbps\": 300,"
                           " \"min_width\": 640}}",
                           &p, &error));
    ASSERT(!error);
    ASSERT(p.recording == MD_RECORDING_REQUIRED && !p.require_device_cert);
    ASSERT_EQ(p.retention_days, 1825);
    ASSERT_EQ(p.max_file_mb, 20);
    ASSERT_STR_EQ(p.file_types[0], "image/jpeg");
    ASSERT_STR_EQ(p.file_types[1], "application/vnd.ms-excel");
    ASSERT(!p.file_types[2]);
    ASSERT_STR_EQ(p.min_tls, "1.2");
    ASSERT_STR_EQ(p.allowed_networks[1], "2001:db8::/32");
    ASSERT(!p.allowed_networks[4]);
    ASSERT(p.assignment == MD_ASSIGN_RANDOM);
    ASSERT(p.quality.min_video_kbps == 300 && p.quality.min_width == 640);
    md_policy_clear(&p);
    md_policy_clear(&p); /* clearing twice is harmless */

    /* Every policy in the sample parses. */
    json_t *doc = load_json("data/sample-registry.json");
    size_t i;
    json_t *m;
    json_array_foreach (json_object_get(doc, "municipalities"), i, m) {
        ASSERT_OK(md_policy_parse(json_object_get(m, "security_policy"), &p, NULL));
        md_policy_clear(&p);
    }
    json_decref(doc);
}

static void expect_policy_error(const char *text, const char *key)
{
    md_policy p = {.retention_days = 42};
    char *error = NULL;
    ASSERT_EQ(parse_policy(text, &p, &error), -MD_E_CONFIG);
    if (!error || strncmp(error, key, strlen(key)) != 0)
        MD_FAIL("%s: error \"%s\" does not name %s", text, error ? error : "(null)", key);
    ASSERT_EQ(p.retention_days, 42); /* untouched on failure */
    free(error);
}

static void test_policy_errors(void)
{
    expect_policy_error("{\"recordng\": \"off\"}", "recordng: unknown key");
    expect_policy_error("{\"recording\": \"sometimes\"}", "recording");
    expect_policy_error("{\"recording\": true}", "recording");
    expect_policy_error("{\"retention_days\": 0}", "retention_days");
    expect_policy_error("{\"retention_days\": 30.5}", "retention_days");
    expect_policy_error("{\"retention_days\": \"30\"}", "retention_days");
    expect_policy_error("{\"max_file_mb\": 1000}", "max_file_mb");
    expect_policy_error("{\"file_types\": \"image/png\"}", "file_types");
    expect_policy_error("{\"file_types\": [\"image\"]}", "file_types");
    expect_policy_error("{\"file_types\": [\"image/*\"]}", "file_types");
    expect_policy_error("{\"file_types\": [\"text/html; charset=utf-8\"]}", "file_types");
    expect_policy_error("{\"require_device_cert\": \"yes\"}", "require_device_cert");
    expect_policy_error("{\"min_tls\": \"1.1\"}", "min_tls");
    expect_policy_error("{\"min_tls\": 1.3}", "min_tls");
    expect_policy_error("{\"allowed_networks\": []}", "allowed_networks");
    expect_policy_error("{\"allowed_networks\": [\"10.0.0.0\"]}", "allowed_networks");
    expect_policy_error("{\"allowed_networks\": [\"10.0.0.0/33\"]}", "allowed_networks");
    expect_policy_error("{\"allowed_networks\": [\"10.0.0.1/8\"]}", "allowed_networks");
    expect_policy_error("{\"allowed_networks\": [\"10.0.0.0/08\"]}", "allowed_networks");
    expect_policy_error("{\"allowed_networks\": [\"300.0.0.0/8\"]}", "allowed_networks");
    expect_policy_error("{\"allowed_networks\": [\"2001:db8::/129\"]}", "allowed_networks");
    expect_policy_error("{\"allowed_networks\": [\"2001:db8::1/64\"]}", "allowed_networks");
    expect_policy_error("{\"allowed_networks\": [\"/24\"]}", "allowed_networks");
    expect_policy_error("{\"allowed_networks\": [\"10.0.0.0/-1\"]}", "allowed_networks");
    expect_policy_error("{\"assignment\": \"round_robin\"}", "assignment");
    expect_policy_error("{\"quality\": [1, 2]}", "quality");
    expect_policy_error("{\"quality\": {\"min_kbps\": 300}}", "quality: unknown threshold");
    expect_policy_error("{\"quality\": {\"min_width\": 640.5}}", "quality: \"min_width\"");
    expect_policy_error("{\"quality\": {\"max_loss_pct\": 0}}", "quality: \"max_loss_pct\"");
    expect_policy_error("{\"quality\": {\"max_rtt_ms\": \"x\"}}", "quality: \"max_rtt_ms\"");
    expect_policy_error("{\"recording\": \"off\", \"colour\": \"blue\"}", "colour");

    md_policy p;
    json_t *not_object = json_array();
    ASSERT_EQ(md_policy_parse(not_object, &p, NULL), -MD_E_CONFIG);
    json_decref(not_object);
}

/* ---- import ---- */

static void test_import_sample(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM municipality"), 3);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM post_office"), 4);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM designation"), 4);
    /* 17: PO-KIYOTAKI's includes mynumber.renewal, awaiting the terminal upgrade. */
    ASSERT_EQ(count(&f, "SELECT count(*) FROM designation_procedure"), 17);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM designation WHERE id = 'PO-NUKUTA/2019-07-29'"), 1);
    /* The contract-only designation keeps no resolution (Q&A Q4). */
    ASSERT_EQ(count(&f, "SELECT count(*) FROM designation WHERE id = 'PO-SAMPLE-KANI/2024-04-01'"
                        " AND resolution_date IS NULL"),
              1);
    /* One audit entry per entry, naming kind, id and action. */
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE event = 'registry_change'"), 11);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE event = 'registry_change' AND detail ="
                        " '{\"action\":\"create\",\"id\":\"PO-KIYOTAKI/2024-04-01\","
                        "\"kind\":\"designation\"}' AND post_office = 'PO-KIYOTAKI'"
                        " AND municipality = '092061'"),
              1);

    md_policy p;
    ASSERT_OK(md_registry_policy(f.st, "092061", &p));
    ASSERT(p.recording == MD_RECORDING_REQUIRED);
    ASSERT_EQ(p.max_file_mb, 10);
    md_policy_clear(&p);
    ASSERT_EQ(md_registry_policy(f.st, "131016", &p), -MD_E_MUNICIPALITY_UNKNOWN);
    fixture_close(&f);
}

static void test_import_idempotent(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    char *report = NULL;
    ASSERT_EQ(import_file(&f, "data/sample-registry.json", &report), 0);
    ASSERT_STR_EQ(report, "imported 3 municipalities, 4 post offices, 4 designations; refused 0\n");
    free(report);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM designation"), 4);
    /* 17: PO-KIYOTAKI's includes mynumber.renewal, awaiting the terminal upgrade. */
    ASSERT_EQ(count(&f, "SELECT count(*) FROM designation_procedure"), 17);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE detail LIKE '%\"unchanged\"%'"), 11);

    /* Re-importing a designation with fewer procedures replaces its set. */
    json_t *doc = load_json("data/sample-registry.json");
    json_t *kiyotaki = json_array_get(json_object_get(doc, "designations"), 1);
    json_object_set_new(kiyotaki, "procedures", json_pack("[s]", "mynumber.new"));
    ASSERT_EQ(md_registry_import(f.st, f.audit, f.procs, doc, "operator", NOW, NULL), 0);
    json_decref(doc);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM designation_procedure"
                        " WHERE designation = 'PO-KIYOTAKI/2024-04-01'"),
              1);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE detail = '{\"action\":\"update\","
                        "\"id\":\"PO-KIYOTAKI/2024-04-01\",\"kind\":\"designation\"}'"),
              1);
    fixture_close(&f);
}

static void test_import_simplified_refused(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    expect_report(&f, "registry-simplified-council", 1);
    /* The refusal is audited with its code; the contract designation stands unchanged. */
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE event = 'registry_refused' AND detail ="
                        " '{\"code\":\"post_office_simplified\",\"id\":"
                        "\"PO-SAMPLE-KANI/2024-04-01\",\"kind\":\"designation\"}'"),
              1);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM designation_procedure"
                        " WHERE designation = 'PO-SAMPLE-KANI/2024-04-01'"),
              1);
    fixture_close(&f);
}

static void test_import_missing_resolution(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    expect_report(&f, "registry-missing-resolution", 1);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM designation WHERE post_office = 'PO-KIYOTAKI'"), 1);
    fixture_close(&f);
}

static void test_import_refusals(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    expect_report(&f, "registry-refusals", 27);
    /* Nothing changed: PO-NUKUTA is still direct, PO-KIYOTAKI still in 092061. */
    ASSERT_EQ(count(&f, "SELECT count(*) FROM post_office WHERE id = 'PO-NUKUTA'"
                        " AND kind = 'direct'"),
              1);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM post_office WHERE id = 'PO-KIYOTAKI'"
                        " AND municipality = '092061'"),
              1);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM municipality"), 3);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM designation"), 4);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE event = 'registry_refused'"), 27);
    fixture_close(&f);
}

static void test_import_bad_document(void)
{
    struct fixture f = {0};
    fixture_open(&f, false);
    static const char *const docs[] = {
        "[]",
        "{\"municipality\": []}",
        "{\"designations\": {}}",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(docs); i++) {
        json_t *doc = json_loads(docs[i], 0, NULL);
        ASSERT_EQ(md_registry_import(f.st, f.audit, f.procs, doc, "operator", NOW, NULL),
                  -MD_E_SCHEMA);
        json_decref(doc);
    }
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit"), 0);
    fixture_close(&f);
}

/* ---- admission ---- */

static int check(struct fixture *f, const char *device, const char *procedure, int64_t now)
{
    md_request_scope scope = {0};
    int r = md_registry_check_request(f->st, f->procs, device, procedure, now, &scope);
    if (r >= 0) {
        ASSERT_STR_EQ(scope.device_id, device);
        ASSERT(scope.post_office && scope.municipality && scope.policy.min_tls);
    } else {
        ASSERT(!scope.device_id); /* untouched on failure */
    }
    md_request_scope_clear(&scope);
    return r;
}

static void register_devices(struct fixture *f)
{
    ASSERT_OK(md_device_register(f->st, f->audit, "TAB-NUKUTA", "PO-NUKUTA", "01ab", NULL,
                                 "operator", NOW));
    ASSERT_OK(md_device_register(f->st, f->audit, "TAB-KIYOTAKI", "PO-KIYOTAKI", "02", NULL,
                                 "operator", NOW));
    ASSERT_OK(md_device_register(f->st, f->audit, "TAB-AEON", "PO-MIYAKONOJO-AEON", NULL, NULL,
                                 "operator", NOW));
    ASSERT_OK(md_device_register(f->st, f->audit, "TAB-KANI", "PO-SAMPLE-KANI", "03", NULL,
                                 "operator", NOW));
}

static void test_check_request(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    register_devices(&f);

    md_request_scope scope = {0};
    ASSERT_OK(md_registry_check_request(f.st, f.procs, "TAB-NUKUTA", "mynumber.new", NOW, &scope));
    ASSERT_STR_EQ(scope.post_office, "PO-NUKUTA");
    ASSERT_STR_EQ(scope.municipality, "204111");
    ASSERT(scope.policy.recording == MD_RECORDING_OPTIONAL);
    ASSERT_EQ(scope.policy.retention_days, 1825);
    md_request_scope_clear(&scope);

    /* One tablet, several procedures (Q&A Q8). */
    ASSERT_OK(check(&f, "TAB-NUKUTA", "ecert.signature", NOW));
    ASSERT_OK(check(&f, "TAB-NUKUTA", "juminhyo.copy", NOW));
    ASSERT_OK(check(&f, "TAB-KIYOTAKI", "ecert.user_auth", NOW));

    ASSERT_EQ(check(&f, "TAB-NUKUTA", "mynumber.renewal", NOW), -MD_E_NOT_DESIGNATED);
    /* Designated in the demo data, but the terminal is not upgraded yet (Q&A Q2). */
    ASSERT_EQ(check(&f, "TAB-KIYOTAKI", "mynumber.renewal", NOW), -MD_E_AWAITING_UPGRADE);
    ASSERT_EQ(check(&f, "TAB-NUKUTA", "application_support", NOW), -MD_E_NOT_DESIGNATED);
    ASSERT_EQ(check(&f, "TAB-KIYOTAKI", "koseki.certificate", NOW), -MD_E_NOT_DESIGNATED);
    ASSERT_EQ(check(&f, "TAB-NUKUTA", "passport.new", NOW), -MD_E_UNKNOWN_PROCEDURE);

    /* PO-MIYAKONOJO-AEON's designation ends 2026-03-31, inclusive, in Japan. */
    ASSERT_EQ(check(&f, "TAB-AEON", "mynumber.new", NOW), -MD_E_DESIGNATION_EXPIRED);
    ASSERT_OK(check(&f, "TAB-AEON", "mynumber.new", at("2026-03-31T14:59:00Z")));
    ASSERT_OK(check(&f, "TAB-AEON", "application_support", at("2026-03-31T14:59:59Z")));
    ASSERT_EQ(check(&f, "TAB-AEON", "mynumber.new", at("2026-04-01")), -MD_E_DESIGNATION_EXPIRED);
    /* ... and begins 2024-02-21 00:00 JST. */
    ASSERT_EQ(check(&f, "TAB-AEON", "mynumber.new", at("2024-02-20T14:59:59Z")),
              -MD_E_DESIGNATION_NOT_YET);
    ASSERT_OK(check(&f, "TAB-AEON", "mynumber.new", at("2024-02-21")));

    /* Simplified office: never a direct_only procedure, a contract is fine (Q&A Q4, Q11). */
    ASSERT_EQ(check(&f, "TAB-KANI", "mynumber.new", NOW), -MD_E_SIMPLIFIED_OFFICE);
    ASSERT_EQ(check(&f, "TAB-KANI", "koseki.certificate", NOW), -MD_E_SIMPLIFIED_OFFICE);
    ASSERT_OK(check(&f, "TAB-KANI", "application_support", NOW));

    /* Devices. */
    ASSERT_EQ(check(&f, "TAB-NOBODY", "mynumber.new", NOW), -MD_E_DEVICE_UNKNOWN);
    ASSERT_OK(
        md_device_set_status(f.st, f.audit, "TAB-NUKUTA", MD_DEVICE_DISABLED, "operator", NOW));
    ASSERT_EQ(check(&f, "TAB-NUKUTA", "mynumber.new", NOW), -MD_E_DEVICE_DISABLED);
    ASSERT_OK(md_device_set_status(f.st, f.audit, "TAB-NUKUTA", MD_DEVICE_ACTIVE, "operator", NOW));
    ASSERT_OK(check(&f, "TAB-NUKUTA", "mynumber.new", NOW));
    ASSERT_OK(
        md_device_set_status(f.st, f.audit, "TAB-NUKUTA", MD_DEVICE_REVOKED, "operator", NOW));
    ASSERT_EQ(check(&f, "TAB-NUKUTA", "mynumber.new", NOW), -MD_E_DEVICE_REVOKED);

    /* The order: an unknown procedure is reported before an unknown device, a
     * device fault before the office, the office before the designation. */
    ASSERT_EQ(check(&f, "TAB-NOBODY", "passport.new", NOW), -MD_E_UNKNOWN_PROCEDURE);
    ASSERT_EQ(check(&f, "TAB-NUKUTA", "mynumber.renewal", NOW), -MD_E_DEVICE_REVOKED);
    ASSERT_EQ(check(&f, "TAB-KANI", "mynumber.renewal", NOW), -MD_E_SIMPLIFIED_OFFICE);

    ASSERT_EQ(md_registry_check_request(f.st, f.procs, NULL, "mynumber.new", NOW, &scope), -EINVAL);
    fixture_close(&f);
}

static void test_upgrade_and_not_yet(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    register_devices(&f);
    ASSERT_EQ(import_file(&f, "tests/data/registry-upgrade.json", NULL), 0);

    /* Designated, in period, but waiting for the terminal upgrade (Q&A Q2). */
    ASSERT_EQ(check(&f, "TAB-KIYOTAKI", "mynumber.renewal", NOW), -MD_E_AWAITING_UPGRADE);
    ASSERT_OK(check(&f, "TAB-KIYOTAKI", "mynumber.new", NOW)); /* the other designation */
    ASSERT_EQ(
        md_registry_enable_procedure(f.st, f.audit, f.procs, "mynumber.renewal", "operator", NOW),
        1);
    ASSERT_OK(check(&f, "TAB-KIYOTAKI", "mynumber.renewal", NOW));
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE event = 'procedure_enabled'"), 1);
    /* Enabling twice changes nothing and writes nothing. */
    ASSERT_EQ(
        md_registry_enable_procedure(f.st, f.audit, f.procs, "mynumber.renewal", "operator", NOW),
        0);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE event = 'procedure_enabled'"), 1);
    /* Enabling is per procedure, and only for the Q2 ones. */
    ASSERT_EQ(count(&f, "SELECT count(*) FROM procedure_enabled"), 1);
    ASSERT_EQ(md_registry_enable_procedure(f.st, f.audit, f.procs, "mynumber.new", "operator", NOW),
              -EINVAL);
    ASSERT_EQ(md_registry_enable_procedure(f.st, f.audit, f.procs, "passport.new", "operator", NOW),
              -MD_E_UNKNOWN_PROCEDURE);

    /* A contract that begins 2027-04-01. */
    ASSERT_EQ(check(&f, "TAB-NUKUTA", "application_support", NOW), -MD_E_DESIGNATION_NOT_YET);
    ASSERT_OK(check(&f, "TAB-NUKUTA", "application_support", at("2027-04-01")));
    fixture_close(&f);
}

/* ---- devices ---- */

static void test_devices(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    register_devices(&f);

    md_device d = {0};
    ASSERT_OK(md_device_lookup(f.st, "TAB-NUKUTA", &d));
    ASSERT_STR_EQ(d.post_office, "PO-NUKUTA");
    ASSERT_STR_EQ(d.municipality, "204111");
    ASSERT_STR_EQ(d.cert_serial, "01AB");
    ASSERT(d.status == MD_DEVICE_ACTIVE);
    /* Issue #11 item 6: the serial binds the device to its certificate. */
    ASSERT_OK(md_device_check_certificate(&d, "01AB", NULL));
    ASSERT_EQ(md_device_check_certificate(&d, "01AC", NULL), -MD_E_DEVICE_CERT_UNREGISTERED);
    ASSERT_EQ(md_device_check_certificate(&d, NULL, NULL), -MD_E_DEVICE_CERT_UNREGISTERED);
    md_device_clear(&d);
    /* With a fingerprint registered, both must match. */
    static const char fp[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    ASSERT_OK(md_device_register(f.st, f.audit, "TAB-FP", "PO-NUKUTA", "7F", fp, "op", NOW));
    ASSERT_OK(md_device_lookup(f.st, "TAB-FP", &d));
    ASSERT_OK(md_device_check_certificate(&d, "7F", fp));
    ASSERT_EQ(md_device_check_certificate(&d, "7F", "00"), -MD_E_DEVICE_CERT_UNREGISTERED);
    ASSERT_EQ(md_device_check_certificate(&d, "7F", NULL), -MD_E_DEVICE_CERT_UNREGISTERED);
    md_device_clear(&d);
    ASSERT_EQ(md_device_register(f.st, f.audit, "TAB-FP2", "PO-NUKUTA", "80", "00", "op", NOW),
              -EINVAL);
    /* A device registered without a certificate accepts none. */
    ASSERT_OK(md_device_lookup(f.st, "TAB-AEON", &d));
    ASSERT_EQ(md_device_check_certificate(&d, "01AB", NULL), -MD_E_DEVICE_CERT_UNREGISTERED);
    md_device_clear(&d);
    ASSERT_EQ(md_device_lookup(f.st, "TAB-NOBODY", &d), -MD_E_DEVICE_UNKNOWN);
    ASSERT(!d.id);

    ASSERT_EQ(md_device_register(f.st, f.audit, "TAB-NUKUTA", "PO-KIYOTAKI", NULL, NULL, "op", NOW),
              -EEXIST);
    ASSERT_EQ(
        md_device_register(f.st, f.audit, "TAB-OTHER", "PO-KIYOTAKI", "01AB", NULL, "op", NOW),
        -EEXIST);
    ASSERT_EQ(md_device_register(f.st, f.audit, "TAB-X", "PO-NOWHERE", NULL, NULL, "op", NOW),
              -MD_E_POST_OFFICE_UNKNOWN);
    ASSERT_EQ(md_device_register(f.st, f.audit, "TAB X", "PO-NUKUTA", NULL, NULL, "op", NOW),
              -EINVAL);
    ASSERT_EQ(md_device_register(f.st, f.audit, "TAB-Y", "PO-NUKUTA", "0x12", NULL, "op", NOW),
              -EINVAL);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM device"), 5);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE event = 'device_registered'"), 5);

    ASSERT_OK(md_device_set_status(f.st, f.audit, "TAB-KANI", MD_DEVICE_REVOKED, "op", NOW));
    ASSERT_OK(md_device_set_status(f.st, f.audit, "TAB-AEON", MD_DEVICE_REVOKED, "op", NOW));
    ASSERT_OK(md_device_set_status(f.st, f.audit, "TAB-KIYOTAKI", MD_DEVICE_DISABLED, "op", NOW));
    /* Revocation is final. */
    ASSERT_EQ(md_device_set_status(f.st, f.audit, "TAB-KANI", MD_DEVICE_ACTIVE, "op", NOW),
              -MD_E_DEVICE_REVOKED);
    ASSERT_EQ(md_device_set_status(f.st, f.audit, "TAB-NOBODY", MD_DEVICE_DISABLED, "op", NOW),
              -MD_E_DEVICE_UNKNOWN);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE event = 'device_status' AND detail ="
                        " '{\"device\":\"TAB-KANI\",\"from\":\"active\",\"to\":\"revoked\"}'"
                        " AND post_office = 'PO-SAMPLE-KANI' AND municipality = '204111'"),
              1);
    ASSERT_EQ(count(&f, "SELECT count(*) FROM audit WHERE event = 'device_status'"), 3);

    /* Only revoked devices with a certificate serial reach the CRL. */
    char **serials = NULL;
    ASSERT_OK(md_device_revoked_serials(f.st, &serials));
    ASSERT_EQ(g_strv_length(serials), 1);
    ASSERT_STR_EQ(serials[0], "03");
    g_strfreev(serials);
    fixture_close(&f);
}

/* ---- public listings ---- */

static json_t *find_designation(json_t *doc, const char *id)
{
    size_t i, j;
    json_t *m, *d;
    json_array_foreach (json_object_get(doc, "municipalities"), i, m) {
        json_array_foreach (json_object_get(m, "designations"), j, d) {
            if (strcmp(json_string_value(json_object_get(d, "id")), id) == 0)
                return d;
        }
    }
    return NULL;
}

static void test_publish_json(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    register_devices(&f);
    ASSERT_EQ(import_file(&f, "tests/data/registry-upgrade.json", NULL), 0);

    json_t *doc = NULL;
    ASSERT_OK(md_registry_designations_json(f.st, f.procs, NULL, md_date_jst(NOW), &doc));
    ASSERT_STR_EQ(json_string_value(json_object_get(doc, "as_of")), "2026-11-22");
    ASSERT_EQ(json_array_size(json_object_get(doc, "municipalities")), 3);

    json_t *d = find_designation(doc, "PO-NUKUTA/2019-07-29");
    ASSERT(d && json_is_true(json_object_get(d, "in_force")));
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(d, "post_office"), "name")),
                  "温田郵便局");
    ASSERT_STR_EQ(
        json_string_value(json_object_get(json_object_get(d, "council_resolution"), "number")),
        "議案第45号 (sample)");
    json_t *first = json_array_get(json_object_get(d, "procedures"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(first, "id")), "koseki.certificate");
    ASSERT(strstr(json_string_value(json_object_get(first, "ja")), "戸籍"));

    d = find_designation(doc, "PO-MIYAKONOJO-AEON/2024-02-21");
    ASSERT(d && !json_is_true(json_object_get(d, "in_force")));
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "status")), "expired");
    d = find_designation(doc, "PO-SAMPLE-KANI/2024-04-01");
    ASSERT(d && json_is_null(json_object_get(d, "council_resolution")));
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "basis")), "contract");
    d = find_designation(doc, "PO-NUKUTA/2027-04-01");
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "status")), "not_yet");
    d = find_designation(doc, "PO-KIYOTAKI/2024-10-01");
    first = json_array_get(json_object_get(d, "procedures"), 0);
    ASSERT(json_is_false(json_object_get(first, "available")));

    /* Nothing about devices, staff or sessions. */
    char *text = json_dumps(doc, 0);
    ASSERT(!strstr(text, "TAB-"));
    ASSERT(!strstr(text, "01AB"));
    ASSERT(!strstr(text, "policy"));
    free(text);
    json_decref(doc);

    ASSERT_OK(md_registry_designations_json(f.st, f.procs, "452025", md_date_jst(NOW), &doc));
    ASSERT_EQ(json_array_size(json_object_get(doc, "municipalities")), 1);
    json_decref(doc);
    doc = NULL;
    ASSERT_EQ(md_registry_designations_json(f.st, f.procs, "131016", md_date_jst(NOW), &doc),
              -MD_E_MUNICIPALITY_UNKNOWN);
    ASSERT(!doc);
    fixture_close(&f);
}

static void test_publish_html(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    register_devices(&f);
    ASSERT_EQ(import_file(&f, "tests/data/registry-hostile.json", NULL), 0);
    ASSERT_EQ(import_file(&f, "tests/data/registry-upgrade.json", NULL), 0);

    char *html = NULL;
    ASSERT_OK(md_registry_designations_html(f.st, f.procs, md_date_jst(NOW), &html));
    ASSERT(strstr(html, "<html lang=\"ja\">"));
    ASSERT(strstr(html, "<meta charset=\"utf-8\">"));
    ASSERT(strstr(html, "2026年11月22日現在"));
    ASSERT(strstr(html, "温田郵便局"));
    ASSERT(strstr(html, "2029年3月31日まで"));
    ASSERT(strstr(html, "議案第45号 (sample)"));
    ASSERT(strstr(html, "取扱期間終了"));                               /* PO-MIYAKONOJO-AEON */
    ASSERT(strstr(html, "委託契約による"));                             /* PO-SAMPLE-KANI */
    ASSERT(strstr(html, "取扱開始前"));                                 /* PO-NUKUTA from 2027 */
    ASSERT(strstr(html, "交付時来庁方式）（統合端末の改修後に開始）")); /* mynumber.renewal */
    /* The hostile names arrive escaped and nowhere raw. */
    ASSERT(strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;村"));
    ASSERT(strstr(html, "&quot;&amp;県"));
    ASSERT(strstr(html, "&lt;img src=x onerror=alert(1)&gt;郵便局"));
    ASSERT(strstr(html, "&lt;b&gt;第1号&lt;/b&gt;"));
    ASSERT(!strstr(html, "<script"));
    ASSERT(!strstr(html, "<img"));
    ASSERT(!strstr(html, "<b>"));
    ASSERT(!strstr(html, "TAB-"));
    ASSERT(g_utf8_validate(html, -1, NULL));
    free(html);
    fixture_close(&f);
}

static void test_print(void)
{
    struct fixture f = {0};
    fixture_open(&f, true);
    register_devices(&f);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ASSERT_OK(md_registry_print(f.st, f.procs, out));
    fclose(out);
    ASSERT(strstr(text, "municipality 204111 泰阜村 (長野県)"));
    ASSERT(strstr(text, "post office PO-SAMPLE-KANI 見本簡易郵便局 [simplified]"));
    ASSERT(strstr(text, "designation PO-NUKUTA/2019-07-29: 2019-07-29 .. 2029-03-31"));
    ASSERT(strstr(text, "device TAB-NUKUTA active serial 01AB"));
    ASSERT(strstr(text, "mynumber.renewal: not enabled"));
    free(text);
    fixture_close(&f);
}

int main(void)
{
    RUN(test_check_digit);
    RUN(test_procedures);
    RUN(test_policy_ok);
    RUN(test_policy_errors);
    RUN(test_import_sample);
    RUN(test_import_idempotent);
    RUN(test_import_simplified_refused);
    RUN(test_import_missing_resolution);
    RUN(test_import_refusals);
    RUN(test_import_bad_document);
    RUN(test_check_request);
    RUN(test_upgrade_and_not_yet);
    RUN(test_devices);
    RUN(test_publish_json);
    RUN(test_publish_html);
    RUN(test_print);
    return 0;
}
