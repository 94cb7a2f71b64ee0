/*
 * libFuzzer harness for the chat/file protocol (md_dc_proto): the first
 * byte picks the channel, the rest is parsed as a control message; an
 * accepted message must build and parse again to the same type and id.  The
 * same bytes are also fed to a file receiver as chunks (split on the first
 * byte's value) so chunk framing, order and sniffing see hostile input.
 * Replayed from tests/fuzz/datachannel/corpus/dc_proto by the test suite.
 */
#include "md_dc_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void control(const uint8_t *data, size_t size)
{
    md_dc_channel ch = data[0] & 1 ? MD_DC_CHANNEL_FILE : MD_DC_CHANNEL_CHAT;
    md_dc_msg m, back;
    char *json = NULL;

    if (md_dc_parse(ch, (const char *)data + 1, size - 1, NULL, &m) < 0)
        return;
    if (md_dc_build(&m, &json) < 0)
        abort();
    if (md_dc_parse(ch, json, strlen(json), NULL, &back) < 0 || back.type != m.type ||
        strcmp(back.id, m.id) != 0)
        abort();
    if (m.type == MD_DC_CHAT && strcmp(back.text, m.text) != 0)
        abort();
    md_dc_msg_clear(&back);
    md_dc_msg_clear(&m);
    free(json);
}

static void chunks(const uint8_t *data, size_t size)
{
    static const char *const mimes[] = {"image/jpeg", "image/png", "application/pdf"};
    md_dc_msg offer;
    md_dc_file_rx *rx;

    memset(&offer, 0, sizeof(offer));
    offer.type = MD_DC_FILE_OFFER;
    strcpy(offer.id, "f");
    offer.index = 1;
    offer.size = 1 + data[0] * 97u;
    strcpy(offer.mime, mimes[data[0] % 3]);
    memset(offer.sha256, 'a', MD_SHA256_HEX_LEN);
    if (md_dc_file_rx_new(&offer, NULL, &rx) < 0)
        return;
    size_t step = MD_DC_CHUNK_HEADER + 1 + data[0] % 40;
    for (size_t off = 1; off < size; off += step) {
        const uint8_t *p;
        size_t n;
        if (md_dc_file_rx_chunk(rx, data + off, size - off < step ? size - off : step, &p, &n) < 0)
            break;
    }
    (void)md_dc_sniff_mime(data, size);
    (void)md_dc_file_rx_finish(rx, NULL);
    md_dc_file_rx_free(rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    control(data, size);
    chunks(data, size);
    return 0;
}
