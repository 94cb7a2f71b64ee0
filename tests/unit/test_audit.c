/*
 * The audit log: appends and checkpoints (by count, by time, at close), the
 * canonical form recomputed independently from md_audit.h's description,
 * verification after each kind of tampering done with raw SQLite on the file,
 * and export/query filters.
 */
#include "md_audit.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_test.h"

#include <errno.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

static char *tmpdir;
static char key_path[512], pub_path[512];

static const char *path_of(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof(buf[0]), "%s/%s", tmpdir, name);
    return p;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Entry i of the standard test log; fields vary so that every filter has something to pick. */
static int64_t append_nth(md_audit *a, int i)
{
    char post_office[16], session[16];
    snprintf(post_office, sizeof(post_office), "PO-%d", i % 3);
    snprintf(session, sizeof(session), "S-%d", i);
    json_t *detail = json_pack("{s:i, s:s}", "i", i, "code", i % 2 ? "odd" : "even");
    md_audit_entry e = {
        .actor = i % 2 ? "staff:alice" : "device:TAB-1",
        .event = i % 3 ? "request" : "accept",
        .municipality = i % 2 ? "131016" : "011002",
        .post_office = post_office,
        .session = i % 4 == 0 ? NULL : session,
        .detail = detail,
    };
    int64_t seq = md_audit_append(a, &e);
    json_decref(detail);
    return seq;
}

/* A closed log of n entries at name; gap_ms > 0 spaces the timestamps. */
static void make_log(const char *name, int n, int every, long gap_ms)
{
    md_store *st = NULL;
    md_audit *a = NULL;
    ASSERT_OK(md_store_open(path_of(name), &st));
    ASSERT_OK(md_audit_open(st, key_path, every, 3600, &a));
    for (int i = 1; i <= n; i++) {
        ASSERT_EQ(append_nth(a, i), i);
        if (gap_ms)
            sleep_ms(gap_ms);
    }
    md_audit_close(a);
    md_store_close(st);
}

static void raw_exec(const char *name, const char *sql)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    ASSERT_EQ(sqlite3_open_v2(path_of(name), &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        MD_FAIL("%s: %s", sql, err);
    sqlite3_close(db);
}

/* Runs verify on a log; returns its code, the bad seq (0 if none) and the report text. */
static int verify_log(const char *name, const char *pubkey, int64_t *bad_seq, char **report)
{
    md_store *st = NULL;
    size_t len = 0;
    FILE *f = open_memstream(report, &len);
    ASSERT(f);
    *bad_seq = 0;
    ASSERT_OK(md_store_open(path_of(name), &st));
    int r = md_audit_verify(st, pubkey, f, bad_seq);
    fclose(f);
    md_store_close(st);
    return r;
}

static void expect_broken(const char *name, int64_t seq, const char *why)
{
    int64_t bad;
    char *report = NULL;
    int r = verify_log(name, pub_path, &bad, &report);
    if (r != -MD_E_AUDIT_BROKEN || bad != seq || !strstr(report, why))
        MD_FAIL("%s: expected broken at %" PRId64 " (%s), got %d at %" PRId64 ":\n%s", name, seq,
                why, r, bad, report);
    free(report);
}

static void expect_intact(const char *name, const char *summary)
{
    int64_t bad;
    char *report = NULL;
    int r = verify_log(name, pub_path, &bad, &report);
    if (r != 0 || bad != 0 || !strstr(report, summary))
        MD_FAIL("%s: expected intact (%s), got %d at %" PRId64 ":\n%s", name, summary, r, bad,
                report);
    free(report);
}

static int on_seq(const md_row *row, void *userdata)
{
    char *list = userdata;
    size_t n = strlen(list);
    snprintf(list + n, 256 - n, "%s%" PRId64, n ? "," : "", md_row_int(row, 0));
    return 0;
}

/* The checkpointed seqs of a log as "5,10,12". */
static void checkpoints_of(md_store *st, char list[256])
{
    list[0] = '\0';
    ASSERT_OK(md_store_query(st, "SELECT seq FROM audit_checkpoint ORDER BY seq", MD_NO_PARAMS,
                             on_seq, list));
}

static void test_append_and_verify(void)
{
    md_store *st = NULL;
    char list[256];
    make_log("ok.db", 12, 5, 0);
    /* The key pair was generated on first use, the public half next to it. */
    ASSERT(access(pub_path, R_OK) == 0);

    ASSERT_OK(md_store_open(path_of("ok.db"), &st));
    checkpoints_of(st, list);
    ASSERT_STR_EQ(list, "5,10,12"); /* every 5, and the final one at close */
    md_store_close(st);
    expect_intact("ok.db", "OK: 12 entries, 3 checkpoints");

    /* The same verdict as data, without a report. */
    md_audit_summary sum;
    ASSERT_OK(md_store_open(path_of("ok.db"), &st));
    ASSERT_EQ(md_audit_verify_summary(st, pub_path, NULL, &sum), 0);
    ASSERT_EQ(sum.entries, 12);
    ASSERT_EQ(sum.checkpoints, 3);
    ASSERT_EQ(sum.last_checkpoint, 12);
    ASSERT_EQ(strlen(sum.last_checkpoint_hash), 64);
    ASSERT_EQ(sum.bad_seq, 0);
    ASSERT_STR_EQ(sum.reason, "");
    md_store_close(st);

    /* Reopening appends after the stored tail. */
    ASSERT_OK(md_store_open(path_of("ok.db"), &st));
    md_audit *a = NULL;
    ASSERT_OK(md_audit_open(st, key_path, 5, 3600, &a));
    ASSERT_EQ(append_nth(a, 13), 13);
    md_audit_close(a);
    md_store_close(st);
    expect_intact("ok.db", "OK: 13 entries, 4 checkpoints");
}

/* Recomputes hashes from `from` on, as a forger without the key would. */
static void rewrite_chain_from(const char *name, int64_t from)
{
    sqlite3 *db = NULL;
    char prev[65] = ZERO_HASH;
    ASSERT_EQ(sqlite3_open_v2(path_of(name), &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    for (int64_t seq = from;; seq++) {
        sqlite3_stmt *q = NULL, *u = NULL;
        if (seq > 1) {
            ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT hash FROM audit WHERE seq = ?", -1, &q, NULL),
                      SQLITE_OK);
            sqlite3_bind_int64(q, 1, seq - 1);
            ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
            snprintf(prev, sizeof(prev), "%s", (const char *)sqlite3_column_text(q, 0));
            sqlite3_finalize(q);
        }
        ASSERT_EQ(sqlite3_prepare_v2(db,
                                     "SELECT ts, actor, event, municipality, post_office, session,"
                                     " detail FROM audit WHERE seq = ?",
                                     -1, &q, NULL),
                  SQLITE_OK);
        sqlite3_bind_int64(q, 1, seq);
        if (sqlite3_step(q) != SQLITE_ROW) {
            sqlite3_finalize(q);
            break;
        }
        json_t *obj = json_pack(
            "{s:s, s:o, s:s, s:s?, s:s?, s:I, s:s?, s:I}", "actor", sqlite3_column_text(q, 1),
            "detail", json_loads((const char *)sqlite3_column_text(q, 6), 0, NULL), "event",
            sqlite3_column_text(q, 2), "municipality", sqlite3_column_text(q, 3), "post_office",
            sqlite3_column_text(q, 4), "seq", (json_int_t)seq, "session", sqlite3_column_text(q, 5),
            "ts", (json_int_t)sqlite3_column_int64(q, 0));
        ASSERT(obj);
        sqlite3_finalize(q);
        char *canonical = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        char input[1024], hash[65];
        int n = snprintf(input, sizeof(input), "%s\n%s", prev, canonical);
        ASSERT_OK(md_sha256_hex(input, (size_t)n, hash));
        free(canonical);
        json_decref(obj);
        ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?",
                                     -1, &u, NULL),
                  SQLITE_OK);
        sqlite3_bind_text(u, 1, prev, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(u, 2, hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(u, 3, seq);
        ASSERT_EQ(sqlite3_step(u), SQLITE_DONE);
        sqlite3_finalize(u);
    }
    sqlite3_close(db);
}

static void test_tampering(void)
{
    /* Each case on a fresh copy of the same 12-entry log: checkpoints at 5, 10, 12. */
    make_log("t-detail.db", 12, 5, 0);
    raw_exec("t-detail.db",
             "UPDATE audit SET detail = '{\"code\":\"even\",\"i\":70}' WHERE seq = 7");
    expect_broken("t-detail.db", 7, "hash does not match the entry's content");
    md_store *st = NULL;
    md_audit_summary sum;
    ASSERT_OK(md_store_open(path_of("t-detail.db"), &st));
    ASSERT_EQ(md_audit_verify_summary(st, pub_path, NULL, &sum), -MD_E_AUDIT_BROKEN);
    ASSERT_EQ(sum.bad_seq, 7);
    ASSERT_EQ(sum.entries, 6);
    ASSERT_EQ(sum.last_checkpoint, 5);
    ASSERT_STR_EQ(sum.reason, "hash does not match the entry's content");
    md_store_close(st);

    make_log("t-actor.db", 12, 5, 0);
    raw_exec("t-actor.db", "UPDATE audit SET actor = 'staff:mallory' WHERE seq = 1");
    expect_broken("t-actor.db", 1, "hash does not match");

    make_log("t-delete.db", 12, 5, 0);
    raw_exec("t-delete.db", "DELETE FROM audit WHERE seq = 7");
    expect_broken("t-delete.db", 7, "entry 7 is missing");

    make_log("t-delete-first.db", 12, 5, 0);
    raw_exec("t-delete-first.db", "DELETE FROM audit WHERE seq = 1");
    expect_broken("t-delete-first.db", 1, "entry 1 is missing");

    make_log("t-swap.db", 12, 5, 0);
    raw_exec("t-swap.db", "UPDATE audit SET seq = -1 WHERE seq = 3;"
                          "UPDATE audit SET seq = 3 WHERE seq = 8;"
                          "UPDATE audit SET seq = 8 WHERE seq = -1");
    expect_broken("t-swap.db", 3, "prev_hash is not the hash of entry 2");

    make_log("t-hash.db", 12, 5, 0);
    raw_exec("t-hash.db", "UPDATE audit SET hash = '" ZERO_HASH "' WHERE seq = 4");
    expect_broken("t-hash.db", 4, "hash does not match");

    make_log("t-prev.db", 12, 5, 0);
    raw_exec("t-prev.db", "UPDATE audit SET prev_hash = '" ZERO_HASH "' WHERE seq = 6");
    expect_broken("t-prev.db", 6, "prev_hash is not the hash of entry 5");

    make_log("t-bad-json.db", 12, 5, 0);
    raw_exec("t-bad-json.db", "UPDATE audit SET detail = '{\"i\":' WHERE seq = 2");
    expect_broken("t-bad-json.db", 2, "detail is not valid JSON");

    make_log("t-sig.db", 12, 5, 0);
    raw_exec("t-sig.db", "UPDATE audit_checkpoint SET signature ="
                         " (CASE substr(signature, 1, 1) WHEN '0' THEN '1' ELSE '0' END)"
                         " || substr(signature, 2) WHERE seq = 10");
    expect_broken("t-sig.db", 10, "signature is invalid");

    make_log("t-sig-short.db", 12, 5, 0);
    raw_exec("t-sig-short.db", "UPDATE audit_checkpoint SET signature = 'abc' WHERE seq = 5");
    expect_broken("t-sig-short.db", 5, "signature is malformed");

    make_log("t-cp-hash.db", 12, 5, 0);
    raw_exec("t-cp-hash.db", "UPDATE audit_checkpoint SET hash = '" ZERO_HASH "' WHERE seq = 5");
    expect_broken("t-cp-hash.db", 5, "checkpoint's hash differs");

    make_log("t-cp-key.db", 12, 5, 0);
    raw_exec("t-cp-key.db", "UPDATE audit_checkpoint SET key_id = '0000000000000000'");
    expect_broken("t-cp-key.db", 5, "key id is not that of public key");

    /* Removing the last entry leaves its checkpoint without an entry. */
    make_log("t-tail.db", 12, 5, 0);
    raw_exec("t-tail.db", "DELETE FROM audit WHERE seq = 12");
    expect_broken("t-tail.db", 12, "checkpoint 12 has no entry");

    /* A consistent rewrite from entry 7 on passes the chain but not the checkpoint at 10. */
    make_log("t-rewrite.db", 12, 5, 0);
    raw_exec("t-rewrite.db",
             "UPDATE audit SET detail = '{\"code\":\"odd\",\"i\":700}' WHERE seq = 7");
    rewrite_chain_from("t-rewrite.db", 7);
    expect_broken("t-rewrite.db", 10, "checkpoint's hash differs");

    /* The documented limit: cutting entries and checkpoints after the last surviving
     * checkpoint is not detectable from the table alone; the report names that checkpoint. */
    make_log("t-truncate.db", 12, 5, 0);
    raw_exec("t-truncate.db", "DELETE FROM audit_checkpoint WHERE seq > 10;"
                              "DELETE FROM audit WHERE seq > 10");
    expect_intact("t-truncate.db", "last checkpoint: seq 10");
}

static void test_forged_checkpoint(void)
{
    char other_key[512], other_pub[600], msg[256], sig_hex[129], sql[1024];
    md_sign_key *other = NULL;
    md_store *st = NULL;
    char *hash7 = NULL;
    uint8_t sig[64];

    snprintf(other_key, sizeof(other_key), "%s", path_of("other.key"));
    snprintf(other_pub, sizeof(other_pub), "%s.pub", other_key);
    ASSERT_OK(md_sign_key_generate(other_key, other_pub));
    ASSERT_OK(md_sign_key_load_private(other_key, &other));

    make_log("t-forged.db", 12, 5, 0);
    ASSERT_OK(md_store_open(path_of("t-forged.db"), &st));
    ASSERT_EQ(md_store_query_text(st, "SELECT hash FROM audit WHERE seq = 7", MD_NO_PARAMS, &hash7),
              1);
    char real_id[17] = {0};
    char *id = NULL;
    ASSERT_EQ(md_store_query_text(st, "SELECT key_id FROM audit_checkpoint WHERE seq = 5",
                                  MD_NO_PARAMS, &id),
              1);
    snprintf(real_id, sizeof(real_id), "%s", id);
    free(id);
    md_store_close(st);

    /* Right message, right key id, wrong key. */
    int n = snprintf(msg, sizeof(msg), "madoguchi-audit-checkpoint\n7\n%s", hash7);
    ASSERT_OK(md_sign(other, msg, (size_t)n, sig));
    md_hex_encode(sig, sizeof(sig), sig_hex);
    snprintf(sql, sizeof(sql),
             "INSERT INTO audit_checkpoint (seq, ts, hash, key_id, signature)"
             " VALUES (7, 0, '%s', '%s', '%s')",
             hash7, real_id, sig_hex);
    raw_exec("t-forged.db", sql);
    expect_broken("t-forged.db", 7, "signature is invalid");

    /* The whole log checked against someone else's public key fails at the first checkpoint. */
    make_log("t-other-key.db", 12, 5, 0);
    int64_t bad;
    char *report = NULL;
    ASSERT_EQ(verify_log("t-other-key.db", other_pub, &bad, &report), -MD_E_AUDIT_BROKEN);
    ASSERT_EQ(bad, 5);
    free(report);

    /* No key file: an error, not a verdict. */
    ASSERT(verify_log("t-other-key.db", path_of("missing.pub"), &bad, &report) < 0);
    ASSERT_EQ(bad, 0);
    free(report);

    free(hash7);
    md_sign_key_free(other);
}

static void test_checkpoint_every(void)
{
    md_store *st = NULL;
    md_audit *a = NULL;
    char list[256];
    ASSERT_OK(md_store_open(path_of("every.db"), &st));
    ASSERT_OK(md_audit_open(st, key_path, 3, 3600, &a));
    for (int i = 1; i <= 7; i++)
        ASSERT_EQ(append_nth(a, i), i);
    checkpoints_of(st, list);
    ASSERT_STR_EQ(list, "3,6");
    ASSERT_EQ(md_audit_tick(a), 0); /* the hour has not passed */
    md_audit_close(a);
    checkpoints_of(st, list);
    ASSERT_STR_EQ(list, "3,6,7");

    /* Nothing unsigned: closing again adds nothing. */
    ASSERT_OK(md_audit_open(st, key_path, 3, 3600, &a));
    md_audit_close(a);
    checkpoints_of(st, list);
    ASSERT_STR_EQ(list, "3,6,7");

    /* Unsigned entries left by a crash are signed at the next close. */
    ASSERT_OK(md_store_exec(st, "DELETE FROM audit_checkpoint WHERE seq = 7", MD_NO_PARAMS));
    ASSERT_OK(md_audit_open(st, key_path, 3, 3600, &a));
    md_audit_close(a);
    checkpoints_of(st, list);
    ASSERT_STR_EQ(list, "3,6,7");
    md_store_close(st);
    expect_intact("every.db", "OK: 7 entries, 3 checkpoints");
}

static void test_checkpoint_time(void)
{
    md_store *st = NULL;
    md_audit *a = NULL;
    char list[256];
    ASSERT_OK(md_store_open(path_of("time.db"), &st));
    ASSERT_OK(md_audit_open(st, key_path, 1000, 1, &a));
    ASSERT_EQ(md_audit_tick(a), 0); /* nothing to sign */
    ASSERT_EQ(append_nth(a, 1), 1);
    ASSERT_EQ(append_nth(a, 2), 2);
    ASSERT_EQ(md_audit_tick(a), 0); /* too early */
    checkpoints_of(st, list);
    ASSERT_STR_EQ(list, "");

    sleep_ms(1100);
    ASSERT_EQ(md_audit_tick(a), 1);
    checkpoints_of(st, list);
    ASSERT_STR_EQ(list, "2");
    ASSERT_EQ(md_audit_tick(a), 0); /* nothing new */

    /* The interval also applies to an append once it has passed. */
    ASSERT_EQ(append_nth(a, 3), 3);
    checkpoints_of(st, list);
    ASSERT_STR_EQ(list, "2");
    sleep_ms(1100);
    ASSERT_EQ(append_nth(a, 4), 4);
    checkpoints_of(st, list);
    ASSERT_STR_EQ(list, "2,4");
    md_audit_close(a);
    md_store_close(st);
    expect_intact("time.db", "OK: 4 entries, 2 checkpoints");
}

struct stored {
    int64_t ts;
    char hash[65];
};

static int on_stored(const md_row *row, void *userdata)
{
    struct stored *s = userdata;
    s->ts = md_row_int(row, 0);
    snprintf(s->hash, sizeof(s->hash), "%s", md_row_text(row, 1));
    return 1;
}

static struct stored stored_entry(md_store *st, int64_t seq)
{
    struct stored s = {0};
    ASSERT_EQ(md_store_query(st, "SELECT ts, hash FROM audit WHERE seq = ?",
                             MD_PARAMS(MD_P_INT(seq)), on_stored, &s),
              1);
    return s;
}

/* hash = SHA-256(prev_hash "\n" canonical), computed here from the documented string. */
static void expect_hash(const char *prev, const char *canonical, const char *stored)
{
    char input[2048], hash[65];
    int n = snprintf(input, sizeof(input), "%s\n%s", prev, canonical);
    ASSERT_OK(md_sha256_hex(input, (size_t)n, hash));
    ASSERT_STR_EQ(stored, hash);
}

static void test_canonical_form(void)
{
    md_store *st = NULL;
    md_audit *a = NULL;
    char canonical[1024];
    ASSERT_OK(md_store_open(path_of("canonical.db"), &st));
    ASSERT_OK(md_audit_open(st, key_path, 100, 3600, &a));

    /* Keys inserted out of order, nesting, a quote and non-ASCII text. */
    json_t *detail = json_pack("{s:s, s:{s:i, s:i}, s:i, s:s, s:b, s:n}", "z", "窓口", "a", "y", 2,
                               "b", 1, "n", 5, "q", "a\"b", "t", 1, "m");
    md_audit_entry e = {
        .actor = "staff:alice", .event = "login", .municipality = "131016", .detail = detail};
    ASSERT_EQ(md_audit_append(a, &e), 1);
    json_decref(detail);
    struct stored s1 = stored_entry(st, 1);
    snprintf(canonical, sizeof(canonical),
             "{\"actor\":\"staff:alice\",\"detail\":{\"a\":{\"b\":1,\"y\":2},\"m\":null,\"n\":5,"
             "\"q\":\"a\\\"b\",\"t\":true,\"z\":\"窓口\"},\"event\":\"login\","
             "\"municipality\":\"131016\",\"post_office\":null,\"seq\":1,\"session\":null,"
             "\"ts\":%" PRId64 "}",
             s1.ts);
    expect_hash(ZERO_HASH, canonical, s1.hash);

    /* No detail hashes as an empty object; the chain links to entry 1. */
    md_audit_entry e2 = {
        .actor = "system", .event = "boot", .post_office = "PO-1", .session = "S-9"};
    ASSERT_EQ(md_audit_append(a, &e2), 2);
    struct stored s2 = stored_entry(st, 2);
    snprintf(canonical, sizeof(canonical),
             "{\"actor\":\"system\",\"detail\":{},\"event\":\"boot\",\"municipality\":null,"
             "\"post_office\":\"PO-1\",\"seq\":2,\"session\":\"S-9\",\"ts\":%" PRId64 "}",
             s2.ts);
    expect_hash(s1.hash, canonical, s2.hash);

    /* The stored detail is the canonical text too. */
    char *stored_detail = NULL;
    ASSERT_EQ(md_store_query_text(st, "SELECT detail FROM audit WHERE seq = 1", MD_NO_PARAMS,
                                  &stored_detail),
              1);
    ASSERT_STR_EQ(stored_detail,
                  "{\"a\":{\"b\":1,\"y\":2},\"m\":null,\"n\":5,\"q\":\"a\\\"b\",\"t\":true,"
                  "\"z\":\"窓口\"}");
    free(stored_detail);
    md_audit_close(a);
    md_store_close(st);
}

static void test_append_refused(void)
{
    md_store *st = NULL;
    md_audit *a = NULL;
    int64_t n = -1;
    ASSERT_OK(md_store_open(path_of("refused.db"), &st));
    ASSERT_EQ(md_audit_open(st, key_path, 0, 60, &a), -EINVAL);
    ASSERT_EQ(md_audit_open(st, key_path, 10, 0, &a), -EINVAL);
    ASSERT(a == NULL);
    ASSERT_OK(md_audit_open(st, key_path, 10, 60, &a));

    json_t *array = json_array();
    json_t *big = json_object();
    char *filler = malloc(70000);
    memset(filler, 'x', 69999);
    filler[69999] = '\0';
    json_object_set_new(big, "x", json_string(filler));
    free(filler);

    md_audit_entry e = {.actor = "system", .event = "boot"};
    e.actor = NULL;
    ASSERT_EQ(md_audit_append(a, &e), -EINVAL);
    e.actor = "system";
    e.event = "";
    ASSERT_EQ(md_audit_append(a, &e), -EINVAL);
    e.event = "boot";
    e.detail = array;
    ASSERT_EQ(md_audit_append(a, &e), -EINVAL);
    e.detail = big;
    ASSERT_EQ(md_audit_append(a, &e), -E2BIG);
    e.detail = NULL;
    e.municipality = "\xff\xfe";
    ASSERT_EQ(md_audit_append(a, &e), -EINVAL);
    ASSERT_EQ(md_store_query_int(st, "SELECT COUNT(*) FROM audit", MD_NO_PARAMS, &n), 1);
    ASSERT_EQ(n, 0);

    /* A caller's open transaction makes the append fail rather than commit the caller's work. */
    e.municipality = NULL;
    ASSERT_OK(md_store_begin(st));
    ASSERT_EQ(md_audit_append(a, &e), -EBUSY);
    md_store_rollback(st);

    /* Failures left nothing behind: the next entry is seq 1. */
    ASSERT_EQ(md_audit_append(a, &e), 1);
    json_decref(array);
    json_decref(big);
    md_audit_close(a);
    md_store_close(st);
    expect_intact("refused.db", "OK: 1 entries, 1 checkpoints");
}

static void test_two_writers(void)
{
    md_store *st = NULL;
    md_audit *a1 = NULL, *a2 = NULL;
    ASSERT_OK(md_store_open(path_of("writers.db"), &st));
    ASSERT_OK(md_audit_open(st, key_path, 100, 3600, &a1));
    ASSERT_OK(md_audit_open(st, key_path, 100, 3600, &a2));
    for (int i = 1; i <= 3; i++)
        ASSERT_EQ(append_nth(a1, i), i);
    /* a2 appends behind a1's back; a1's cached tail is now stale. */
    ASSERT_EQ(append_nth(a2, 4), 4);
    ASSERT_EQ(append_nth(a1, 5), 5);
    ASSERT_EQ(append_nth(a2, 6), 6);
    md_audit_close(a2);
    md_audit_close(a1);
    md_store_close(st);
    expect_intact("writers.db", "OK: 6 entries");
}

/* Export lines, each checked on its own: the hash follows from prev_hash and the rest. */
struct lines {
    int n;
    int64_t seqs[64];
    char municipality[64][16];
    char post_office[64][16];
};

static void parse_export(char *text, struct lines *ls)
{
    char prev_line_hash[65] = "";
    ls->n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t err;
        json_t *obj = json_loads(line, 0, &err);
        ASSERT(obj);
        const char *prev = json_string_value(json_object_get(obj, "prev_hash"));
        char hash[65];
        snprintf(hash, sizeof(hash), "%s", json_string_value(json_object_get(obj, "hash")));
        json_int_t seq = json_integer_value(json_object_get(obj, "seq"));
        /* Lines of one unfiltered export chain to each other. */
        if (prev_line_hash[0] && ls->n > 0 && ls->seqs[ls->n - 1] == seq - 1)
            ASSERT_STR_EQ(prev, prev_line_hash);
        char prev_copy[65];
        snprintf(prev_copy, sizeof(prev_copy), "%s", prev);
        json_object_del(obj, "prev_hash");
        json_object_del(obj, "hash");
        char *canonical = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        expect_hash(prev_copy, canonical, hash);
        free(canonical);
        snprintf(prev_line_hash, sizeof(prev_line_hash), "%s", hash);
        ASSERT(ls->n < 64);
        ls->seqs[ls->n] = seq;
        const char *m = json_string_value(json_object_get(obj, "municipality"));
        const char *p = json_string_value(json_object_get(obj, "post_office"));
        snprintf(ls->municipality[ls->n], 16, "%s", m ? m : "");
        snprintf(ls->post_office[ls->n], 16, "%s", p ? p : "");
        ls->n++;
        json_decref(obj);
    }
}

static int export_lines(md_store *st, const md_audit_filter *filter, struct lines *ls)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ASSERT(f);
    int written = md_audit_export(st, filter, f);
    fclose(f);
    ASSERT_OK(written);
    parse_export(text, ls);
    free(text);
    ASSERT_EQ(ls->n, written);
    return written;
}

static void seqs_str(const struct lines *ls, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < ls->n; i++) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%" PRId64, i ? "," : "", ls->seqs[i]);
    }
}

static void test_export_and_query(void)
{
    md_store *st = NULL;
    struct lines ls;
    char got[256];
    make_log("export.db", 12, 5, 3); /* 3 ms apart: distinct timestamps */
    ASSERT_OK(md_store_open(path_of("export.db"), &st));

    ASSERT_EQ(export_lines(st, NULL, &ls), 12);
    seqs_str(&ls, got, sizeof(got));
    ASSERT_STR_EQ(got, "1,2,3,4,5,6,7,8,9,10,11,12");

    md_audit_filter f = {.municipality = "131016"};
    ASSERT_EQ(export_lines(st, &f, &ls), 6);
    for (int i = 0; i < ls.n; i++)
        ASSERT_STR_EQ(ls.municipality[i], "131016");
    seqs_str(&ls, got, sizeof(got));
    ASSERT_STR_EQ(got, "1,3,5,7,9,11");

    f = (md_audit_filter){.post_office = "PO-1"};
    export_lines(st, &f, &ls);
    seqs_str(&ls, got, sizeof(got));
    ASSERT_STR_EQ(got, "1,4,7,10");

    f = (md_audit_filter){.municipality = "131016", .post_office = "PO-1"};
    export_lines(st, &f, &ls);
    seqs_str(&ls, got, sizeof(got));
    ASSERT_STR_EQ(got, "1,7");

    f = (md_audit_filter){.session = "S-5"};
    export_lines(st, &f, &ls);
    seqs_str(&ls, got, sizeof(got));
    ASSERT_STR_EQ(got, "5");

    /* from is inclusive, until exclusive. */
    f = (md_audit_filter){.from_ms = stored_entry(st, 4).ts, .until_ms = stored_entry(st, 8).ts};
    export_lines(st, &f, &ls);
    seqs_str(&ls, got, sizeof(got));
    ASSERT_STR_EQ(got, "4,5,6,7");
    f = (md_audit_filter){.from_ms = stored_entry(st, 11).ts};
    export_lines(st, &f, &ls);
    seqs_str(&ls, got, sizeof(got));
    ASSERT_STR_EQ(got, "11,12");
    f = (md_audit_filter){.until_ms = stored_entry(st, 2).ts, .municipality = "131016"};
    export_lines(st, &f, &ls);
    seqs_str(&ls, got, sizeof(got));
    ASSERT_STR_EQ(got, "1");
    f = (md_audit_filter){.municipality = "999999"};
    ASSERT_EQ(export_lines(st, &f, &ls), 0);

    /* The same rows as a JSON array, capped by limit. */
    json_t *array = NULL;
    ASSERT_EQ(md_audit_query(st, NULL, 3, &array), 3);
    ASSERT_EQ(json_array_size(array), 3);
    ASSERT_EQ(json_integer_value(json_object_get(json_array_get(array, 0), "seq")), 1);
    ASSERT(json_is_string(json_object_get(json_array_get(array, 2), "hash")));
    json_decref(array);
    f = (md_audit_filter){.municipality = "011002"};
    ASSERT_EQ(md_audit_query(st, &f, 100, &array), 6);
    ASSERT_EQ(json_integer_value(json_object_get(json_array_get(array, 0), "seq")), 2);
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(array, 5), "municipality")),
                  "011002");
    json_decref(array);
    array = NULL;
    ASSERT_EQ(md_audit_query(st, NULL, 0, &array), -EINVAL);
    ASSERT(array == NULL);
    md_store_close(st);

    /* A row that no longer decodes fails the export instead of being skipped silently. */
    raw_exec("export.db", "UPDATE audit SET detail = 'nope' WHERE seq = 3");
    ASSERT_OK(md_store_open(path_of("export.db"), &st));
    FILE *null_out = fopen("/dev/null", "w");
    ASSERT(null_out);
    ASSERT_EQ(md_audit_export(st, NULL, null_out), -MD_E_AUDIT_BROKEN);
    fclose(null_out);
    md_store_close(st);
}

/* Issue #11 item 11: a missing signing key is not regenerated once it has
 * signed something, and a pinned key must match the signing key. */
static void test_key_missing_and_pinned(void)
{
    md_store *st = NULL;
    md_audit *a = NULL;
    char key2[512], pub2[512];
    snprintf(key2, sizeof(key2), "%s/other.key", tmpdir);
    snprintf(pub2, sizeof(pub2), "%s/other.key.pub", tmpdir);
    ASSERT_OK(md_sign_key_generate(key2, pub2));

    make_log("keys.db", 3, 100, 0); /* close signs a checkpoint */
    ASSERT_OK(md_store_open(path_of("keys.db"), &st));
    const char *gone = path_of("gone.key");
    ASSERT_EQ(md_audit_open(st, gone, 100, 3600, &a), -MD_E_AUDIT_KEY_MISSING);
    ASSERT(access(gone, F_OK) < 0);
    /* The pinned key, as a PEM path and as raw hex. */
    ASSERT_EQ(md_audit_open_pinned(st, key_path, pub2, 100, 3600, &a), -MD_E_AUDIT_KEY_MISMATCH);
    ASSERT(a == NULL);
    md_sign_key *pub = NULL;
    uint8_t raw[MD_ED25519_PUBLIC_LEN];
    char hex[2 * MD_ED25519_PUBLIC_LEN + 1];
    ASSERT_OK(md_sign_key_load_public(pub_path, &pub));
    ASSERT_OK(md_sign_key_raw_public(pub, raw));
    md_sign_key_free(pub);
    md_hex_encode(raw, sizeof(raw), hex);
    ASSERT_OK(md_audit_open_pinned(st, key_path, hex, 100, 3600, &a));
    md_audit_close(a);
    ASSERT_OK(md_audit_open_pinned(st, key_path, pub_path, 100, 3600, &a));
    md_audit_close(a);
    /* A pin also forbids making a key, even for a log never signed. */
    md_store_close(st);
    ASSERT_OK(md_store_open(path_of("fresh.db"), &st));
    ASSERT_EQ(md_audit_open_pinned(st, gone, hex, 100, 3600, &a), -MD_E_AUDIT_KEY_MISSING);
    ASSERT_OK(md_audit_open(st, gone, 100, 3600, &a)); /* nothing signed, nothing pinned */
    md_audit_close(a);
    md_store_close(st);

    md_audit_summary sum;
    ASSERT_OK(md_store_open(path_of("keys.db"), &st));
    ASSERT_OK(md_audit_verify_summary(st, hex, NULL, &sum));
    ASSERT_EQ(md_audit_verify_summary(st, pub2, NULL, &sum), -MD_E_AUDIT_BROKEN);
    md_store_close(st);
}

static void test_checkpoint_anchor(void)
{
    md_store *st = NULL;
    md_audit *a = NULL;
    md_sign_key *key = NULL;
    md_audit_checkpoint cp, back;
    md_audit_summary sum;

    make_log("anchor.db", 10, 4, 0); /* checkpoints at 4, 8 and 10 (close) */
    ASSERT_OK(md_sign_key_load_public(pub_path, &key));
    ASSERT_OK(md_store_open(path_of("anchor.db"), &st));
    ASSERT_OK(md_audit_checkpoint_latest(st, &cp));
    ASSERT_EQ(cp.seq, 10);
    ASSERT_EQ(md_audit_checkpoint_signed_by(&cp, key), 1);
    char *json = md_audit_checkpoint_to_json(&cp);
    ASSERT(json);
    ASSERT_OK(md_audit_checkpoint_parse(json, strlen(json), &back));
    ASSERT(memcmp(&cp, &back, sizeof(cp)) == 0);
    free(json);
    ASSERT_OK(md_audit_verify_checkpoint(st, key, &cp, NULL, &sum));

    /* The log grows: it still extends the anchor. */
    ASSERT_OK(md_audit_open(st, key_path, 4, 3600, &a));
    ASSERT_EQ(append_nth(a, 11), 11);
    md_audit_close(a);
    ASSERT_OK(md_audit_verify_checkpoint(st, key, &cp, NULL, &sum));
    md_store_close(st);

    /* A clean cut back to checkpoint 8 verifies alone, not against the anchor. */
    raw_exec("anchor.db", "DELETE FROM audit_checkpoint WHERE seq > 8; DELETE FROM audit WHERE"
                          " seq > 8");
    ASSERT_OK(md_store_open(path_of("anchor.db"), &st));
    ASSERT_OK(md_audit_verify_key(st, key, NULL, &sum));
    ASSERT_EQ(md_audit_verify_checkpoint(st, key, &cp, NULL, &sum), -MD_E_AUDIT_BROKEN);
    ASSERT_EQ(sum.bad_seq, 10);
    md_store_close(st);

    /* A history made anew with the same key: valid alone, not against the anchor. */
    raw_exec("anchor.db", "DELETE FROM audit_checkpoint; DELETE FROM audit");
    ASSERT_OK(md_store_open(path_of("anchor.db"), &st));
    ASSERT_OK(md_audit_open(st, key_path, 4, 3600, &a));
    for (int i = 1; i <= 12; i++)
        ASSERT_EQ(append_nth(a, i + 100), i);
    md_audit_close(a);
    ASSERT_OK(md_audit_verify_key(st, key, NULL, &sum));
    ASSERT_EQ(md_audit_verify_checkpoint(st, key, &cp, NULL, &sum), -MD_E_AUDIT_BROKEN);
    ASSERT_EQ(sum.bad_seq, 10);

    /* A checkpoint the trusted key did not sign is refused outright. */
    back = cp;
    back.signature[0] ^= 1;
    ASSERT_EQ(md_audit_verify_checkpoint(st, key, &back, NULL, &sum), -MD_E_AUDIT_CHECKPOINT);
    back = cp;
    back.hash[0] = back.hash[0] == 'a' ? 'b' : 'a';
    ASSERT_EQ(md_audit_verify_checkpoint(st, key, &back, NULL, &sum), -MD_E_AUDIT_CHECKPOINT);
    md_store_close(st);
    md_sign_key_free(key);

    /* The parser refuses what is not exactly a checkpoint. */
    static const char *const bad[] = {
        "",
        "[]",
        "{\"format\":\"madoguchi-audit-checkpoint/1\"}",
        "{\"format\":\"x\",\"seq\":1,\"ts\":1,\"hash\":\"" ZERO_HASH "\",\"key_id\":"
        "\"0123456789abcdef\",\"signature\":\"00\"}",
        "{\"format\":\"madoguchi-audit-checkpoint/1\",\"seq\":0,\"ts\":1,\"hash\":\"" ZERO_HASH
        "\",\"key_id\":\"0123456789abcdef\",\"signature\":\"00\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(md_audit_checkpoint_parse(bad[i], strlen(bad[i]), &back), -MD_E_AUDIT_CHECKPOINT);
}

int main(void)
{
    tmpdir = md_test_tmpdir();
    snprintf(key_path, sizeof(key_path), "%s/audit.key", tmpdir);
    snprintf(pub_path, sizeof(pub_path), "%s/audit.key.pub", tmpdir);
    RUN(test_append_and_verify);
    RUN(test_tampering);
    RUN(test_forged_checkpoint);
    RUN(test_checkpoint_every);
    RUN(test_checkpoint_time);
    RUN(test_canonical_form);
    RUN(test_append_refused);
    RUN(test_two_writers);
    RUN(test_export_and_query);
    RUN(test_key_missing_and_pinned);
    RUN(test_checkpoint_anchor);
    free(tmpdir);
    return 0;
}
