/* Configuration: defaults, overrides, bounds and unknown keys. */
#include "md_config.h"
#include "md_err.h"
#include "md_test.h"

#include <glib.h>

static char *write_tmp(const char *text)
{
    char *dir = md_test_tmpdir();
    char *path = g_build_filename(dir, "config.json", NULL);
    ASSERT(g_file_set_contents(path, text, -1, NULL));
    free(dir);
    return path;
}

static void test_defaults(void)
{
    md_config cfg;
    ASSERT_OK(md_config_load(NULL, &cfg, NULL));
    ASSERT_EQ(cfg.staff_listen.port, 8443);
    ASSERT_EQ(cfg.device_listen.port, 8444);
    ASSERT_STR_EQ(cfg.tls.min_version, "1.3");
    ASSERT_STR_EQ(cfg.database, "var/madoguchi.db");
    ASSERT_STR_EQ(cfg.tls.cert, "var/certs/server.crt");
    ASSERT(cfg.media.ice_tcp);
    md_config_clear(&cfg);
}

static void test_overrides(void)
{
    char *path = write_tmp("{\"data_dir\": \"/srv/md\", \"staff_listen\": {\"port\": 9443},"
                           " \"tls\": {\"min_version\": \"1.2\", \"cert\": \"/etc/x.crt\"},"
                           " \"media\": {\"ice_tcp\": false}}");
    md_config cfg;
    ASSERT_OK(md_config_load(path, &cfg, NULL));
    ASSERT_EQ(cfg.staff_listen.port, 9443);
    ASSERT_STR_EQ(cfg.tls.min_version, "1.2");
    ASSERT_STR_EQ(cfg.tls.cert, "/etc/x.crt");
    ASSERT_STR_EQ(cfg.tls.key, "/srv/md/certs/server.key");
    ASSERT_STR_EQ(cfg.database, "/srv/md/madoguchi.db");
    ASSERT(!cfg.media.ice_tcp);
    ASSERT_STR_EQ(cfg.audit.public_key, ""); /* not pinned */
    md_config_clear(&cfg);
    g_free(path);

    /* audit.public_key: a raw key stays as it is, a relative path is resolved. */
    static const char hex[] = "1e0974aa24853f122b9aa847f7215a3e453c3cc292d0f0621c2b81b8b1858e06";
    g_autofree char *text =
        g_strdup_printf("{\"data_dir\": \"/srv/md\", \"audit\": {\"public_key\": \"%s\"}}", hex);
    path = write_tmp(text);
    ASSERT_OK(md_config_load(path, &cfg, NULL));
    ASSERT_STR_EQ(cfg.audit.public_key, hex);
    md_config_clear(&cfg);
    g_free(path);
    path = write_tmp("{\"data_dir\": \"/srv/md\", \"audit\": {\"public_key\": \"pin.pub\"}}");
    ASSERT_OK(md_config_load(path, &cfg, NULL));
    ASSERT_STR_EQ(cfg.audit.public_key, "/srv/md/pin.pub");
    md_config_clear(&cfg);
    g_free(path);
}

static void expect_error(const char *text, const char *needle)
{
    char *path = write_tmp(text);
    md_config cfg;
    char *err = NULL;
    ASSERT_EQ(md_config_load(path, &cfg, &err), -MD_E_CONFIG);
    ASSERT(err && strstr(err, needle));
    g_free(err);
    g_free(path);
}

static void test_errors(void)
{
    expect_error("{\"staff_listen\": {\"prot\": 1}}", "staff_listen.prot");
    expect_error("{\"staff_listen\": {\"port\": 70000}}", "from 0 to 65535");
    expect_error("{\"tls\": {\"min_version\": \"1.1\"}}", "min_version");
    expect_error("{\"log_level\": 3}", "must be a string");
    expect_error("{\"media\": {\"ice_tcp\": 1}}", "must be true or false");
    expect_error("{", "config.json");
    /* one port cannot be both listeners (different TLS policies) */
    expect_error("{\"staff_listen\": {\"port\": 9000}, \"device_listen\": {\"port\": 9000}}",
                 "must not share a port");
    /* a NACK store kept longer at least than at most */
    expect_error("{\"media\": {\"nack_buffer_min_ms\": 500, \"nack_buffer_max_ms\": 400}}",
                 "nack_buffer_min_ms");
    /* a misspelt section is an error even when empty */
    expect_error("{\"limtis\": {}}", "limtis");
}

/* docs/configuration.md and the parser agree: every key the parser takes is
 * in the document, and every key the document's tables name under a
 * section the parser knows is one the parser takes. */
static void test_documented_keys(void)
{
    const char *root = getenv("MD_SOURCE_ROOT");
    ASSERT(root);
    char *path = g_build_filename(root, "docs", "configuration.md", NULL);
    char *doc = NULL;
    ASSERT(g_file_get_contents(path, &doc, NULL, NULL));
    GHashTable *known = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTable *sections = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (size_t i = 0; md_config_key(i); i++) {
        const char *key = md_config_key(i);
        g_hash_table_add(known, (gpointer)key);
        const char *dot = strchr(key, '.');
        if (dot)
            g_hash_table_add(sections, g_strndup(key, (size_t)(dot - key)));
        char *quoted = g_strdup_printf("`%s`", key);
        if (!strstr(doc, quoted))
            MD_FAIL("%s is not in docs/configuration.md", key);
        g_free(quoted);
    }
    /* The first cell of each table row: `a.b`, `a.c`. */
    char **lines = g_strsplit(doc, "\n", -1);
    for (char **l = lines; *l; l++) {
        if (!g_str_has_prefix(*l, "| `"))
            continue;
        char *end = strchr(*l + 2, '|');
        char *cell = g_strndup(*l + 2, end ? (size_t)(end - *l - 2) : strlen(*l + 2));
        char **parts = g_strsplit(cell, "`", -1);
        for (size_t i = 1; parts[i]; i += 2) {
            const char *dot = strchr(parts[i], '.');
            if (!dot)
                continue;
            char *section = g_strndup(parts[i], (size_t)(dot - parts[i]));
            if (g_hash_table_contains(sections, section) && !g_hash_table_contains(known, parts[i]))
                MD_FAIL("docs/configuration.md names %s, which the parser does not take", parts[i]);
            g_free(section);
        }
        g_strfreev(parts);
        g_free(cell);
    }
    g_strfreev(lines);
    g_hash_table_destroy(sections);
    g_hash_table_destroy(known);
    g_free(doc);
    g_free(path);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_overrides);
    RUN(test_errors);
    RUN(test_documented_keys);
    return 0;
}
