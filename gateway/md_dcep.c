/*
 * DCEP wire format (RFC 8832 5).  Every length is checked against the
 * buffer before it is read and the total must match exactly, so a message
 * with trailing bytes or a short label is refused rather than guessed at.
 * Label and protocol are copied into fixed buffers of the caller's struct;
 * nothing is allocated.  Stateless: any thread.
 */
#include "md_dcep.h"
#include "md_err.h"

#include "md_bytes.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

static bool known_channel_type(uint8_t t)
{
    switch (t) {
    case MD_DCEP_RELIABLE:
    case MD_DCEP_RELIABLE_UNORDERED:
    case MD_DCEP_PARTIAL_RELIABLE_REXMIT:
    case MD_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED:
    case MD_DCEP_PARTIAL_RELIABLE_TIMED:
    case MD_DCEP_PARTIAL_RELIABLE_TIMED_UNORDERED:
        return true;
    default:
        return false;
    }
}

/* UTF-8 without NUL (RFC 8832 5.1: label and protocol are UTF-8 strings). */
static bool text_ok(const uint8_t *p, size_t len)
{
    return memchr(p, 0, len) == NULL && g_utf8_validate_len((const char *)p, len, NULL);
}

int md_dcep_message_type(const uint8_t *buf, size_t len)
{
    if (!buf || len == 0)
        return -MD_E_DC_PROTOCOL;
    if (buf[0] == MD_DCEP_OPEN || buf[0] == MD_DCEP_ACK)
        return buf[0];
    return -MD_E_DC_PROTOCOL;
}

int md_dcep_parse_open(const uint8_t *buf, size_t len, md_dcep_open *ret)
{
    md_dcep_open o;

    if (!buf || len < MD_DCEP_HEADER_LEN || buf[0] != MD_DCEP_OPEN)
        return -MD_E_DC_PROTOCOL;
    size_t label_len = md_get_u16(buf + 8), protocol_len = md_get_u16(buf + 10);
    if (len != MD_DCEP_HEADER_LEN + label_len + protocol_len)
        return -MD_E_DC_PROTOCOL;
    if (!known_channel_type(buf[1]))
        return -MD_E_DC_PROTOCOL;
    const uint8_t *label = buf + MD_DCEP_HEADER_LEN, *protocol = label + label_len;
    if (!text_ok(label, label_len) || !text_ok(protocol, protocol_len))
        return -MD_E_DC_PROTOCOL;
    if (label_len > MD_DCEP_MAX_LABEL || protocol_len > MD_DCEP_MAX_PROTOCOL)
        return -MD_E_DC_REFUSED;

    o.channel_type = buf[1];
    o.priority = md_get_u16(buf + 2);
    /* RFC 8832 5.1: ignored by the receiver for reliable channels. */
    o.reliability = (buf[1] & 0x7f) == 0 ? 0 : md_get_u32(buf + 4);
    memcpy(o.label, label, label_len);
    o.label[label_len] = '\0';
    memcpy(o.protocol, protocol, protocol_len);
    o.protocol[protocol_len] = '\0';
    *ret = o;
    return 0;
}

int md_dcep_parse_ack(const uint8_t *buf, size_t len)
{
    return buf && len == 1 && buf[0] == MD_DCEP_ACK ? 0 : -MD_E_DC_PROTOCOL;
}

int md_dcep_build_open(const md_dcep_open *o, uint8_t *out, size_t cap)
{
    if (!o || !out || !known_channel_type(o->channel_type))
        return -EINVAL;
    size_t label_len = strnlen(o->label, sizeof(o->label));
    size_t protocol_len = strnlen(o->protocol, sizeof(o->protocol));
    if (label_len > MD_DCEP_MAX_LABEL || protocol_len > MD_DCEP_MAX_PROTOCOL ||
        !g_utf8_validate_len(o->label, label_len, NULL) ||
        !g_utf8_validate_len(o->protocol, protocol_len, NULL))
        return -EINVAL;
    size_t len = MD_DCEP_HEADER_LEN + label_len + protocol_len;
    if (cap < len)
        return -ENOBUFS;
    out[0] = MD_DCEP_OPEN;
    out[1] = o->channel_type;
    md_put_u16(out + 2, o->priority);
    md_put_u32(out + 4, (o->channel_type & 0x7f) == 0 ? 0 : o->reliability);
    md_put_u16(out + 8, (uint16_t)label_len);
    md_put_u16(out + 10, (uint16_t)protocol_len);
    memcpy(out + MD_DCEP_HEADER_LEN, o->label, label_len);
    memcpy(out + MD_DCEP_HEADER_LEN + label_len, o->protocol, protocol_len);
    return (int)len;
}

int md_dcep_build_ack(uint8_t *out, size_t cap)
{
    if (!out)
        return -EINVAL;
    if (cap < 1)
        return -ENOBUFS;
    out[0] = MD_DCEP_ACK;
    return 1;
}

bool md_dcep_ordered(uint8_t channel_type)
{
    return (channel_type & 0x80) == 0;
}

int md_dcep_pr_policy(uint8_t channel_type)
{
    return channel_type & 0x03;
}

bool md_dcep_stream_is_local(uint16_t stream, bool dtls_client)
{
    return (stream % 2 == 0) == dtls_client;
}

int md_dcep_check_remote_stream(uint16_t stream, bool dtls_client)
{
    if (stream == 65535 || md_dcep_stream_is_local(stream, dtls_client))
        return -MD_E_DC_REFUSED;
    return 0;
}

uint16_t md_dcep_first_local_stream(bool dtls_client)
{
    return dtls_client ? 0 : 1;
}
