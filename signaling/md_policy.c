/*
 * A municipality's security policy (Q&A Q9: the system must fit each
 * municipality's own policy), parsed from the "security_policy" object of the
 * registry.
 *
 * Parsing is strict: every key is in the table below, unknown keys are
 * refused with their name, and every value is range-checked, because a
 * misspelt "recordng" silently falling back to a default would change what
 * the gateway does with applicants' video.  Keys not given take the defaults
 * set in policy_defaults(); those lean to the side of collecting less
 * (recording off) and of the stronger setting (TLS 1.3, device certificate
 * required).  A parsed md_policy owns all its memory; it is a plain value
 * that any thread may read once built.
 */
#include "md_err.h"
#include "md_registry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <string.h>

#define RETENTION_DAYS_MAX 3650 /* ten years; longer is not a retention limit */
#define MAX_FILE_MB_MAX 100
#define CHAT_MAX_BYTES_MAX 16000 /* under the 16 KiB cap of one data-channel control message */
#define FILE_TYPES_MAX 32
#define NETWORKS_MAX 256
#define MIME_NAME_MAX 127 /* RFC 6838 4.2 */

typedef int (*policy_key_parser)(json_t *value, md_policy *p, const char **ret_why);

static const char *const default_file_types[] = {"image/jpeg", "image/png", "application/pdf"};

static void policy_defaults(md_policy *p)
{
    *p = (md_policy){
        .recording = MD_RECORDING_OFF,
        .retention_days = 365,
        .max_file_mb = 10,
        .chat_max_bytes = 2000,
        .require_device_cert = true,
        .min_tls = g_strdup("1.3"),
        .assignment = MD_ASSIGN_PICK,
    };
    p->file_types = g_new0(char *, G_N_ELEMENTS(default_file_types) + 1);
    for (size_t i = 0; i < G_N_ELEMENTS(default_file_types); i++)
        p->file_types[i] = g_strdup(default_file_types[i]);
}

static int parse_int_range(json_t *v, int min, int max, int *ret)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return -MD_E_CONFIG;
    *ret = (int)json_integer_value(v);
    return 0;
}

static int parse_recording(json_t *v, md_policy *p, const char **ret_why)
{
    static const char *const names[] = {[MD_RECORDING_OFF] = "off",
                                        [MD_RECORDING_OPTIONAL] = "optional",
                                        [MD_RECORDING_REQUIRED] = "required"};
    const char *s = json_string_value(v);
    for (size_t i = 0; s && i < G_N_ELEMENTS(names); i++)
        if (strcmp(s, names[i]) == 0) {
            p->recording = (enum md_recording_policy)i;
            return 0;
        }
    *ret_why = "must be \"off\", \"optional\" or \"required\"";
    return -MD_E_CONFIG;
}

static int parse_retention_days(json_t *v, md_policy *p, const char **ret_why)
{
    *ret_why = "must be an integer from 1 to 3650";
    return parse_int_range(v, 1, RETENTION_DAYS_MAX, &p->retention_days);
}

static int parse_max_file_mb(json_t *v, md_policy *p, const char **ret_why)
{
    *ret_why = "must be an integer from 1 to 100";
    return parse_int_range(v, 1, MAX_FILE_MB_MAX, &p->max_file_mb);
}

/* RFC 6838 4.2 restricted-name. */
static bool valid_mime_name(const char *s, size_t n)
{
    if (n == 0 || n > MIME_NAME_MAX || !g_ascii_isalnum(s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && !strchr("!#$&-^_.+", s[i]))
            return false;
    return true;
}

static bool valid_mime_type(const char *s)
{
    const char *slash = strchr(s, '/');
    return slash && valid_mime_name(s, (size_t)(slash - s)) &&
           valid_mime_name(slash + 1, strlen(slash + 1));
}

static bool valid_cidr(const char *s)
{
    const char *slash = strchr(s, '/');
    unsigned char addr[16];
    char host[INET6_ADDRSTRLEN];
    size_t hlen = slash ? (size_t)(slash - s) : 0;
    if (!slash || hlen == 0 || hlen >= sizeof(host))
        return false;
    memcpy(host, s, hlen);
    host[hlen] = '\0';

    int family = strchr(host, ':') ? AF_INET6 : AF_INET;
    int bits = family == AF_INET6 ? 128 : 32;
    if (inet_pton(family, host, addr) != 1)
        return false;

    /* Decimal without sign or leading zeros, so "/024" is not read as 24. */
    const char *d = slash + 1;
    size_t dlen = strlen(d);
    if (dlen == 0 || dlen > 3 || (dlen > 1 && d[0] == '0'))
        return false;
    int prefix = 0;
    for (size_t i = 0; i < dlen; i++) {
        if (!g_ascii_isdigit(d[i]))
            return false;
        prefix = prefix * 10 + (d[i] - '0');
    }
    if (prefix > bits)
        return false;

    /* Host bits set ("10.0.0.1/8") is almost always a typo for a different network. */
    for (int b = prefix; b < bits; b++)
        if (addr[b / 8] & (0x80 >> (b % 8)))
            return false;
    return true;
}

/* A JSON array of 1..max strings accepted by valid(), copied (lowercased when asked). */
static int parse_string_list(json_t *v, size_t min, size_t max, bool (*valid)(const char *),
                             bool lowercase, char ***ret)
{
    if (!json_is_array(v) || json_array_size(v) < min || json_array_size(v) > max)
        return -MD_E_CONFIG;
    size_t i;
    json_t *item;
    json_array_foreach (v, i, item) {
        const char *s = json_string_value(item);
        if (!s || !valid(s))
            return -MD_E_CONFIG;
    }
    char **list = g_new0(char *, json_array_size(v) + 1);
    json_array_foreach (v, i, item) {
        const char *s = json_string_value(item);
        list[i] = lowercase ? g_ascii_strdown(s, -1) : g_strdup(s);
    }
    g_strfreev(*ret);
    *ret = list;
    return 0;
}

static int parse_file_types(json_t *v, md_policy *p, const char **ret_why)
{
    /* An empty list is allowed: a municipality may refuse every file. */
    *ret_why = "must be a list of at most 32 MIME types such as \"image/jpeg\"";
    return parse_string_list(v, 0, FILE_TYPES_MAX, valid_mime_type, true, &p->file_types);
}

static int parse_allowed_networks(json_t *v, md_policy *p, const char **ret_why)
{
    /* Empty would lock every tablet out; leaving the key out means "any". */
    *ret_why = "must be a non-empty list of at most 256 CIDR networks such as \"192.0.2.0/24\"";
    return parse_string_list(v, 1, NETWORKS_MAX, valid_cidr, false, &p->allowed_networks);
}

static int parse_bool(json_t *v, bool *ret, const char **ret_why)
{
    *ret_why = "must be true or false";
    if (!json_is_boolean(v))
        return -MD_E_CONFIG;
    *ret = json_is_true(v);
    return 0;
}

static int parse_require_device_cert(json_t *v, md_policy *p, const char **ret_why)
{
    return parse_bool(v, &p->require_device_cert, ret_why);
}

static int parse_require_srtp_gcm(json_t *v, md_policy *p, const char **ret_why)
{
    return parse_bool(v, &p->require_srtp_gcm, ret_why);
}

static int parse_min_tls(json_t *v, md_policy *p, const char **ret_why)
{
    const char *s = json_string_value(v);
    *ret_why = "must be \"1.2\" or \"1.3\"";
    if (!s || (strcmp(s, "1.2") != 0 && strcmp(s, "1.3") != 0))
        return -MD_E_CONFIG;
    g_free(p->min_tls);
    p->min_tls = g_strdup(s);
    return 0;
}

static int parse_assignment(json_t *v, md_policy *p, const char **ret_why)
{
    const char *s = json_string_value(v);
    *ret_why = "must be \"pick\" or \"random\"";
    if (s && strcmp(s, "pick") == 0)
        p->assignment = MD_ASSIGN_PICK;
    else if (s && strcmp(s, "random") == 0)
        p->assignment = MD_ASSIGN_RANDOM;
    else
        return -MD_E_CONFIG;
    return 0;
}

static int parse_quality(json_t *v, md_policy *p, const char **ret_why)
{
    return md_quality_thresholds_parse(v, &p->quality, ret_why);
}

static int parse_chat_max_bytes(json_t *v, md_policy *p, const char **ret_why)
{
    *ret_why = "must be an integer from 1 to 16000";
    return parse_int_range(v, 1, CHAT_MAX_BYTES_MAX, &p->chat_max_bytes);
}

static const struct policy_key {
    const char *name;
    policy_key_parser parse;
} policy_keys[] = {
    {"recording", parse_recording},
    {"retention_days", parse_retention_days},
    {"max_file_mb", parse_max_file_mb},
    {"chat_max_bytes", parse_chat_max_bytes},
    {"file_types", parse_file_types},
    {"require_device_cert", parse_require_device_cert},
    {"require_srtp_gcm", parse_require_srtp_gcm},
    {"min_tls", parse_min_tls},
    {"allowed_networks", parse_allowed_networks},
    {"assignment", parse_assignment},
    {"quality", parse_quality},
};

static const struct policy_key *find_key(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(policy_keys); i++)
        if (strcmp(policy_keys[i].name, name) == 0)
            return &policy_keys[i];
    return NULL;
}

int md_policy_parse(json_t *obj, md_policy *ret, char **ret_error)
{
    md_policy p;
    char *error = NULL;
    int r = 0;

    if (!ret)
        return -EINVAL;
    if (!json_is_object(obj)) {
        if (ret_error)
            *ret_error = g_strdup("security_policy: must be an object");
        return -MD_E_CONFIG;
    }

    policy_defaults(&p);
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value) {
        const struct policy_key *k = find_key(key);
        const char *why = NULL;
        if (!k) {
            error = g_strdup_printf("%s: unknown key", key);
            r = -MD_E_CONFIG;
            goto out;
        }
        r = k->parse(value, &p, &why);
        if (r < 0) {
            error = g_strdup_printf("%s: %s", key, r == -ENOMEM ? md_strerror(r) : why);
            goto out;
        }
    }
    *ret = p;
    r = 0;
out:
    if (r < 0) {
        md_policy_clear(&p);
        /* g_malloc is malloc since GLib 2.46, so the caller may free() this. */
        if (ret_error)
            *ret_error = error;
        else
            g_free(error);
    }
    return r;
}

void md_policy_clear(md_policy *p)
{
    if (!p)
        return;
    g_strfreev(p->file_types);
    g_strfreev(p->allowed_networks);
    g_free(p->min_tls);
    *p = (md_policy){0};
}
