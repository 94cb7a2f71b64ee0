/*
 * Which browser origins may talk to each listener (md_server_private.h):
 * the lists are made once at start-up from auth.allowed_origins and the
 * device listener's addresses, and read by md_server.c when a WebSocket
 * opens and by md_http_api.c for every POST.  Control thread only.
 */
#include "md_server_private.h"

#include <gio/gio.h>
#include <string.h>

bool md_server_origin_allowed(md_server *srv, md_listener listener, const char *origin)
{
    char **list = listener == MD_LISTENER_DEVICE ? srv->device_origins : srv->staff_origins;
    size_t n = origin ? strlen(origin) : 0;
    if (n && origin[n - 1] == '/')
        n--;
    for (char **o = list; n && o && *o; o++)
        if (strlen(*o) == n && strncmp(*o, origin, n) == 0)
            return true;
    return false;
}

/* "https://host:8443/" -> "https://host:8443"; NULL if not an http(s) origin. */
static char *origin_of(const char *url, int port_override)
{
    GUri *u = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
    if (!u)
        return NULL;
    char *out = NULL;
    const char *scheme = g_uri_get_scheme(u);
    const char *host = g_uri_get_host(u);
    if (host && (strcmp(scheme, "https") == 0 || strcmp(scheme, "http") == 0)) {
        int port = port_override ? port_override : g_uri_get_port(u);
        bool v6 = strchr(host, ':') != NULL;
        out = port > 0 ? g_strdup_printf("%s://%s%s%s:%d", scheme, v6 ? "[" : "", host,
                                         v6 ? "]" : "", port)
                       : g_strdup_printf("%s://%s%s%s", scheme, v6 ? "[" : "", host, v6 ? "]" : "");
    }
    g_uri_unref(u);
    return out;
}

/* auth.allowed_origins for the staff listener; for tablets' pages the same
 * hosts with the device listener's port, and the device listener's own
 * configured addresses.  Nothing is derived from a request's Host header. */
void md_server_load_origins(md_server *srv)
{
    g_auto(GStrv) list = g_strsplit_set(srv->cfg->auth.allowed_origins, " ,", -1);
    GPtrArray *staff = g_ptr_array_new(), *device = g_ptr_array_new();
    for (char **o = list; *o; o++) {
        if (!**o)
            continue;
        char *s = origin_of(*o, 0);
        char *d = origin_of(*o, srv->cfg->device_listen.port);
        if (s)
            g_ptr_array_add(staff, s);
        if (d)
            g_ptr_array_add(device, d);
    }
    /* A tablet page is also loaded from the device listener's own address
     * (the listener is its own origin), unless that is a wildcard. */
    g_auto(GStrv) addresses = md_config_addresses(srv->cfg->device_listen.address);
    for (char **addr = addresses; *addr; addr++) {
        GInetAddress *ia = g_inet_address_new_from_string(*addr);
        if (ia && !g_inet_address_get_is_any(ia)) {
            bool v6 = g_inet_address_get_family(ia) == G_SOCKET_FAMILY_IPV6;
            g_ptr_array_add(device, g_strdup_printf("https://%s%s%s:%d", v6 ? "[" : "", *addr,
                                                    v6 ? "]" : "", srv->cfg->device_listen.port));
        }
        if (ia)
            g_object_unref(ia);
    }
    g_ptr_array_add(staff, NULL);
    g_ptr_array_add(device, NULL);
    srv->staff_origins = (char **)g_ptr_array_free(staff, FALSE);
    srv->device_origins = (char **)g_ptr_array_free(device, FALSE);
}
