/*
 * Message schemas and validation (see md_proto.h).  Each message type is a
 * row of `schemas`: its name, who may send it, and its fields with type,
 * presence, length cap and allowed values.  A message is accepted only if
 * every key is known, so a misspelt field is an error rather than a silently
 * ignored instruction.
 */
#include "md_proto.h"
#include "md_err.h"

#include <glib.h>
#include <stdbool.h>
#include <string.h>

enum field_type {
    FT_STRING,         /* non-empty string */
    FT_STRING_OR_NULL, /* string (may be empty) or null */
    FT_BOOL,           /* true or false */
};

/* Where a string field's length cap comes from: the schema itself, or the
 * limits the caller passes (each cap is set in one place: the config, or the
 * media plane that parses the value). */
enum field_cap {
    CAP_SCHEMA,
    CAP_SDP,       /* md_proto_limits.sdp_bytes: media.max_sdp_bytes */
    CAP_CANDIDATE, /* md_proto_limits.candidate_bytes: MD_MEDIA_MAX_CANDIDATE_BYTES */
};

struct field {
    const char *name;
    enum field_type type;
    bool required;
    size_t max_len;            /* CAP_SCHEMA */
    const char *const *values; /* NULL-terminated allowed values, or NULL */
    enum field_cap cap;
};

#define MAX_FIELDS 4

struct schema {
    const char *type;
    unsigned senders;
    struct field fields[MAX_FIELDS];
};

#define SESSION_FIELD                                                                              \
    {                                                                                              \
        "session", FT_STRING, true, 64, NULL                                                       \
    }
#define PARTIES (MD_SENDER_TABLET | MD_SENDER_VERIFIER)

static const char *const outcome_values[] = {"verified", "not_verified", "aborted", NULL};
static const char *const record_actions[] = {"start", "stop", NULL};

static const struct schema schemas[MD_MSG__COUNT] = {
    [MD_MSG_REQUEST] = {"request", MD_SENDER_TABLET, {{"procedure", FT_STRING, true, 64, NULL}}},
    [MD_MSG_CANCEL] = {"cancel", MD_SENDER_TABLET, {SESSION_FIELD}},
    [MD_MSG_ACCEPT] = {"accept", MD_SENDER_VERIFIER, {SESSION_FIELD}},
    [MD_MSG_OUTCOME] = {"outcome",
                        MD_SENDER_VERIFIER,
                        {SESSION_FIELD,
                         {"result", FT_STRING, true, 16, outcome_values},
                         {"reason", FT_STRING, false, 256, NULL}}},
    [MD_MSG_OFFER] = {"offer",
                      PARTIES,
                      {SESSION_FIELD, {"sdp", FT_STRING, true, 0, NULL, CAP_SDP}}},
    [MD_MSG_RESTART] = {"restart",
                        PARTIES,
                        {SESSION_FIELD, {"sdp", FT_STRING, true, 0, NULL, CAP_SDP}}},
    [MD_MSG_CANDIDATE] = {"candidate",
                          PARTIES,
                          {SESSION_FIELD,
                           {"candidate", FT_STRING_OR_NULL, true, 0, NULL, CAP_CANDIDATE},
                           {"mid", FT_STRING_OR_NULL, false, 32, NULL}}},
    [MD_MSG_HANGUP] = {"hangup", PARTIES, {SESSION_FIELD}},
    [MD_MSG_STILL] = {"still", MD_SENDER_VERIFIER, {SESSION_FIELD}},
    [MD_MSG_RECORD] = {"record",
                       MD_SENDER_VERIFIER,
                       {SESSION_FIELD, {"action", FT_STRING, true, 8, record_actions}}},
    [MD_MSG_CONSENT] = {"consent",
                        MD_SENDER_TABLET,
                        {SESSION_FIELD, {"given", FT_BOOL, true, 0, NULL}}},
};

const char *md_proto_type_name(md_msg_type type)
{
    return type < MD_MSG__COUNT ? schemas[type].type : "?";
}

static const struct field *find_field(const struct schema *s, const char *name)
{
    for (int i = 0; i < MAX_FIELDS && s->fields[i].name; i++)
        if (strcmp(s->fields[i].name, name) == 0)
            return &s->fields[i];
    return NULL;
}

static bool in_values(const char *const *values, const char *v)
{
    for (; *values; values++)
        if (strcmp(*values, v) == 0)
            return true;
    return false;
}

static int check_field(const struct field *f, const md_proto_limits *lim, json_t *v,
                       char **ret_detail)
{
    if (f->type == FT_STRING_OR_NULL && json_is_null(v))
        return 0;
    if (f->type == FT_BOOL) {
        if (json_is_boolean(v))
            return 0;
        *ret_detail = g_strdup_printf("\"%s\" must be true or false", f->name);
        return -MD_E_SCHEMA;
    }
    if (!json_is_string(v)) {
        *ret_detail = g_strdup_printf("\"%s\" must be a string", f->name);
        return -MD_E_SCHEMA;
    }
    size_t len = json_string_length(v);
    size_t max = f->cap == CAP_SDP         ? lim->sdp_bytes
                 : f->cap == CAP_CANDIDATE ? lim->candidate_bytes
                                           : f->max_len;
    if ((f->type == FT_STRING && len == 0) || len > max) {
        *ret_detail = g_strdup_printf("\"%s\" must have 1 to %zu bytes", f->name, max);
        return -MD_E_SCHEMA;
    }
    if (f->values && !in_values(f->values, json_string_value(v))) {
        *ret_detail = g_strdup_printf("\"%s\" has an unknown value", f->name);
        return -MD_E_SCHEMA;
    }
    return 0;
}

static int check_schema(const struct schema *s, const md_proto_limits *lim, json_t *msg,
                        char **ret_detail)
{
    const char *key;
    json_t *v;
    json_object_foreach (msg, key, v) {
        if (strcmp(key, "type") == 0 || strcmp(key, "id") == 0)
            continue;
        const struct field *f = find_field(s, key);
        if (!f) {
            *ret_detail = g_strdup_printf("unknown field \"%.64s\"", key);
            return -MD_E_SCHEMA;
        }
        int r = check_field(f, lim, v, ret_detail);
        if (r < 0)
            return r;
    }
    for (int i = 0; i < MAX_FIELDS && s->fields[i].name; i++)
        if (s->fields[i].required && !json_object_get(msg, s->fields[i].name)) {
            *ret_detail = g_strdup_printf("\"%s\" is required", s->fields[i].name);
            return -MD_E_SCHEMA;
        }
    return 0;
}

int md_proto_parse(const char *text, size_t len, unsigned sender, const md_proto_limits *lim,
                   md_proto_result *ret)
{
    memset(ret, 0, sizeof(*ret));
    json_error_t jerr;
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!msg || !json_is_object(msg)) {
        ret->detail = g_strdup(msg ? "a message must be a JSON object" : jerr.text);
        json_decref(msg);
        return -MD_E_BAD_JSON;
    }

    json_t *id = json_object_get(msg, "id");
    if (id) {
        if (!json_is_string(id) || json_string_length(id) == 0 ||
            json_string_length(id) > MD_PROTO_ID_MAX) {
            ret->detail = g_strdup("\"id\" must be a string of 1 to 64 bytes");
            json_decref(msg);
            return -MD_E_SCHEMA;
        }
        ret->id = g_strdup(json_string_value(id));
    }

    const char *type = json_string_value(json_object_get(msg, "type"));
    int found = -1;
    for (int i = 0; type && i < MD_MSG__COUNT; i++)
        if (strcmp(schemas[i].type, type) == 0)
            found = i;
    if (found < 0) {
        ret->detail = g_strdup(type ? "unknown \"type\"" : "\"type\" is missing");
        json_decref(msg);
        return -MD_E_UNKNOWN_TYPE;
    }
    const struct schema *s = &schemas[found];
    if (!(s->senders & sender)) {
        ret->detail = g_strdup_printf("\"%s\" is not for your role", s->type);
        json_decref(msg);
        return -MD_E_FORBIDDEN;
    }
    int r = check_schema(s, lim, msg, &ret->detail);
    if (r < 0) {
        json_decref(msg);
        return r;
    }
    ret->type = (md_msg_type)found;
    ret->msg = msg;
    return 0;
}

void md_proto_result_clear(md_proto_result *r)
{
    json_decref(r->msg);
    g_free(r->id);
    g_free(r->detail);
    memset(r, 0, sizeof(*r));
}

json_t *md_proto_error(int err, const char *detail, const char *re, const char *session)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", "error", "code", md_err_code(err), "message",
                          md_strerror(err));
    if (detail)
        json_object_set_new(j, "detail", json_string(detail));
    if (re)
        json_object_set_new(j, "re", json_string(re));
    if (session)
        json_object_set_new(j, "session", json_string(session));
    return j;
}
