/*
 * Sealed columns (core/md_sealed.h): the format, binding to the row's
 * context, refusal of tampered or foreign values, and the migration that
 * seals plaintext rows of an older database.
 */
#include "md_crypto.h"
#include "md_err.h"
#include "md_sealed.h"
#include "md_store.h"
#include "md_test.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>

static const uint8_t KEY[MD_SEALED_KEY_LEN] = {0x11, 0x22, 0x33};
static const uint8_t OTHER_KEY[MD_SEALED_KEY_LEN] = {0x44};

static void test_round_trip(void)
{
    char *sealed = NULL, *plain = NULL;
    const char *note = "本人確認書類が不鮮明のため中止";
    ASSERT_OK(md_sealed_seal(KEY, "verification_session.outcome_note:S1", note, &sealed));
    ASSERT(md_sealed_is_sealed(sealed));
    ASSERT(strstr(sealed, note) == NULL);
    /* prefix + hex of nonce, ciphertext and tag */
    ASSERT_EQ(strlen(sealed), 8 + 2 * (12 + strlen(note) + 16));
    ASSERT_OK(md_sealed_open(KEY, "verification_session.outcome_note:S1", sealed, &plain));
    ASSERT_STR_EQ(plain, note);
    free(plain);
    plain = NULL;

    /* Another row, another key, a flipped bit, a cut: all refused. */
    ASSERT_EQ(md_sealed_open(KEY, "verification_session.outcome_note:S2", sealed, &plain),
              -MD_E_EVIDENCE_CORRUPT);
    ASSERT_EQ(md_sealed_open(OTHER_KEY, "verification_session.outcome_note:S1", sealed, &plain),
              -MD_E_EVIDENCE_CORRUPT);
    char *copy = strdup(sealed);
    copy[20] = copy[20] == '0' ? '1' : '0';
    ASSERT_EQ(md_sealed_open(KEY, "verification_session.outcome_note:S1", copy, &plain),
              -MD_E_EVIDENCE_CORRUPT);
    strcpy(copy, sealed);
    copy[strlen(copy) - 2] = '\0';
    ASSERT_EQ(md_sealed_open(KEY, "verification_session.outcome_note:S1", copy, &plain),
              -MD_E_EVIDENCE_CORRUPT);
    free(copy);
    static const char *const bad[] = {"plain text", "sealed1:", "sealed1:zz", "sealed1:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(md_sealed_open(KEY, "c", bad[i], &plain), -MD_E_EVIDENCE_CORRUPT);
    ASSERT(plain == NULL);

    /* Two seals of one value differ (random nonce). */
    char *again = NULL;
    ASSERT_OK(md_sealed_seal(KEY, "verification_session.outcome_note:S1", note, &again));
    ASSERT(strcmp(again, sealed) != 0);
    free(again);
    free(sealed);

    ASSERT_OK(md_sealed_seal(KEY, "c", "", &sealed));
    ASSERT_OK(md_sealed_open(KEY, "c", sealed, &plain));
    ASSERT_STR_EQ(plain, "");
    free(plain);
    free(sealed);
    char big[MD_SEALED_MAX_PLAIN + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ASSERT_EQ(md_sealed_seal(KEY, "c", big, &sealed), -E2BIG);
}

static void test_store_and_migrate(void)
{
    g_autofree char *dir = md_test_tmpdir();
    g_autofree char *db = g_build_filename(dir, "m.db", NULL);
    md_store *st = NULL;
    char *sealed = NULL, *plain = NULL;

    ASSERT_OK(md_store_open(db, &st));
    ASSERT_EQ(md_store_seal(st, "c", "x", &sealed), -MD_E_EVIDENCE_KEY);
    ASSERT_EQ(md_sealed_migrate(st), -MD_E_EVIDENCE_KEY);
    /* Rows as an older version wrote them. */
    ASSERT_OK(md_store_exec(st,
                            "INSERT INTO staff (username, role, password_hash, totp_secret,"
                            " created_at) VALUES ('alice', 'admin', 'h', 'JBSWY3DPEHPK3PXP', 1)",
                            MD_NO_PARAMS));
    ASSERT_OK(md_store_exec(st,
                            "INSERT INTO verification_session (id, municipality, post_office,"
                            " device, procedure, state, outcome_note, requested_at) VALUES"
                            " ('S1', 'm', 'p', 'd', 'x', 'ended', 'a note', 1),"
                            " ('S2', 'm', 'p', 'd', 'x', 'ended', NULL, 1)",
                            MD_NO_PARAMS));
    ASSERT_OK(md_store_exec(st,
                            "INSERT INTO evidence (session_id, file_id, leg, kind, name, mime,"
                            " size, sha256, created_at) VALUES ('S1', 'f1', 'tablet', 'file',"
                            " 'Ausweis.png', 'image/png', 1, 'h', 1)",
                            MD_NO_PARAMS));
    md_store_set_field_key(st, KEY);
    ASSERT_EQ(md_sealed_migrate(st), 3);
    ASSERT_EQ(md_sealed_migrate(st), 0); /* idempotent */

    ASSERT_EQ(md_store_query_text(st, "SELECT totp_secret FROM staff", MD_NO_PARAMS, &sealed), 1);
    ASSERT_OK(md_store_unseal(st, "staff.totp_secret:alice", sealed, &plain));
    ASSERT_STR_EQ(plain, "JBSWY3DPEHPK3PXP");
    free(plain);
    free(sealed);
    ASSERT_EQ(md_store_query_text(st,
                                  "SELECT outcome_note FROM verification_session WHERE id"
                                  " = 'S1'",
                                  MD_NO_PARAMS, &sealed),
              1);
    ASSERT_OK(md_store_unseal(st, "verification_session.outcome_note:S1", sealed, &plain));
    ASSERT_STR_EQ(plain, "a note");
    free(plain);
    free(sealed);
    ASSERT_EQ(md_store_query_text(st,
                                  "SELECT outcome_note FROM verification_session WHERE id"
                                  " = 'S2'",
                                  MD_NO_PARAMS, &sealed),
              1);
    ASSERT(sealed == NULL); /* NULL stays NULL */
    ASSERT_EQ(md_store_query_text(st, "SELECT name FROM evidence", MD_NO_PARAMS, &sealed), 1);
    ASSERT_OK(md_store_unseal(st, "evidence.name:S1/f1", sealed, &plain));
    ASSERT_STR_EQ(plain, "Ausweis.png");
    free(plain);
    free(sealed);
    md_store_close(st);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_store_and_migrate);
    return 0;
}
