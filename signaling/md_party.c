/*
 * Parties and what is sent to them (see md_party.h).
 */
#include "md_party.h"
#include "md_crypto.h"
#include "md_err.h"
#include "md_log.h"
#include "md_proto.h"
#include "md_server_private.h"

#include <stdlib.h>
#include <string.h>

md_party *md_party_new(md_conn *conn, unsigned role)
{
    md_party *p = g_new0(md_party, 1);
    p->conn = conn;
    p->role = role;
    return p;
}

void md_party_free(md_party *p)
{
    g_free(p->actor);
    g_free(p->device_id);
    g_free(p->post_office);
    g_free(p->municipality);
    g_free(p->username);
    if (p->login_token)
        md_wipe(p->login_token, strlen(p->login_token));
    g_free(p->login_token);
    g_free(p);
}

void md_party_send_latest(md_party *p, int key, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!text)
        return;
    if (key)
        md_conn_send_latest(p->conn, key, text, strlen(text));
    else
        md_conn_send(p->conn, text, strlen(text));
    free(text);
}

void md_party_send(md_party *p, json_t *msg)
{
    md_party_send_latest(p, 0, msg);
}

void md_party_send_error(md_party *p, int err, const char *detail, const char *re,
                         const char *session)
{
    md_party_send(p, md_proto_error(err, detail, re, session));
}

void md_party_login_ended(md_party *p, int err)
{
    if (p->login_gone)
        return;
    p->login_gone = true;
    md_party_send_error(p, err, NULL, NULL, NULL);
    md_conn_close(p->conn, 1008, md_err_code(err));
    md_info("signaling", "staff_socket_closed", "{s:s, s:s}", "actor", p->actor, "code",
            md_err_code(err));
}

void md_party_close_login(md_server *srv, const char *token, int err)
{
    for (guint i = 0; token && i < srv->parties->len; i++) {
        md_party *p = g_ptr_array_index(srv->parties, i);
        if (p->login_token && strcmp(p->login_token, token) == 0)
            md_party_login_ended(p, err);
    }
}
