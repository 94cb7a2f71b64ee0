/*
 * The recorder: the one adapter over GStreamer (DESIGN 6,
 * docs/internals/recorder.md).  Nothing else includes GStreamer headers.
 *
 * Per recorded session one md_recorder: four bounded single-producer queues
 * (tablet/verifier x audio/video) that a media worker fills with decrypted
 * RTP packets, a feeder thread that drains them into one pipeline
 *
 *   appsrc (RTP caps) ! rtpjitterbuffer ! depayloader [! parser] \
 *      ! matroskamux/webmmux streamable=true (short clusters) ! appsink
 *
 * and the appsink's bytes are sealed into the recording's encrypted file
 * (md_evidence_rec: a chunk at least once a second, each fsynced).  Every
 * packet is stamped with its arrival time on the gateway's monotonic clock,
 * which is the pipeline's clock: all four streams share one timeline, and
 * the jitter buffers map RTP time onto it (DTX gaps keep their length,
 * timestamp jumps and wrap-around resynchronise on arrival time).
 *
 * Threads: md_recorder_new/stop/stall from any one thread (the media
 * worker); md_recorder_push only from the one producer thread (the worker)
 * and it never blocks: a full queue drops the packet and counts it.  The
 * done callback runs on the recorder's own thread.
 */
#ifndef MD_RECORDER_H
#define MD_RECORDER_H

#include "md_evidence.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { MD_RECORDER_TABLET = 0, MD_RECORDER_VERIFIER = 1 };
enum { MD_RECORDER_AUDIO = 0, MD_RECORDER_VIDEO = 1 }; /* as MD_KIND_* in gateway/ */

typedef struct md_recorder md_recorder;

typedef struct md_recorder_stream {
    bool present;        /* the party sends this stream; absent ones get no track */
    uint8_t pt;          /* payload type as received */
    uint32_t clock_rate; /* 48000 Opus, 90000 video */
} md_recorder_stream;

typedef struct md_recorder_options {
    const char *recording_id;
    const char *video_codec;          /* "VP8" or "H264" (-MD_E_SDP_UNSUPPORTED otherwise) */
    md_recorder_stream streams[2][2]; /* [party][kind] */
    unsigned queue_packets;           /* per stream; 0: 1024 */
    unsigned flush_ms;                /* seal and fsync at least this often; 0: 1000 */
} md_recorder_options;

/* What a finished recorder reports (strings valid during the callback). */
typedef struct md_recorder_result {
    const char *recording_id;
    const char *state;   /* "complete", or "cut" when the pipeline or file failed */
    int error;           /* 0, or why it was cut */
    const char *sha256;  /* hex of the ciphertext file; "" if unknown */
    uint64_t bytes;      /* ciphertext size */
    int64_t duration_ms; /* media time muxed: last timestamp - first */
    uint64_t packets;    /* taken from the queues */
    uint64_t dropped;    /* dropped at full queues */
} md_recorder_result;
typedef void (*md_recorder_done_cb)(const md_recorder_result *res, void *userdata);

/* Creates the recorder and its thread, which loads GStreamer (once per
 * process) and builds and starts the pipeline; cheap and GStreamer-free
 * itself, so the media worker never waits for plugin loading.
 * Takes the writer in every case.  The timeline's zero is "now": packets
 * pushed from here on are on it, and wait in the queues until the pipeline
 * runs.  A pipeline that cannot be built (a missing element:
 * -MD_E_RECORDER) ends the recording "cut" when it is stopped.  -EINVAL,
 * -MD_E_SDP_UNSUPPORTED (codec). */
int md_recorder_new(const md_recorder_options *opt, md_evidence_rec *file, md_recorder **ret);

/* Producer thread: copies one decrypted RTP packet of party/kind that
 * arrived at arrival_us (g_get_monotonic_time()).  Never blocks. */
void md_recorder_push(md_recorder *r, int party, int kind, const uint8_t *rtp, size_t len,
                      int64_t arrival_us);

/* Counters, readable from any thread at any time. */
uint64_t md_recorder_dropped(const md_recorder *r);
uint64_t md_recorder_packets(const md_recorder *r);

/* Ends the recording: the queues are drained, EOS runs through the muxer,
 * the file gets its final chunk; then done runs once, on the recorder's
 * thread, and the recorder frees itself.  r must not be used after this
 * call.  A muxer that does not finish within a few seconds (a stalled
 * pipeline) is torn down and the recording ends "cut" at its last flush. */
void md_recorder_stop(md_recorder *r, md_recorder_done_cb done, void *userdata);

/* Test hook (tests/recorder): true blocks the appsink, so the whole
 * pipeline backs up, as a muxer that cannot keep up would; false releases. */
void md_recorder_test_stall(md_recorder *r, bool stalled);

/* Blocks until every stopped recorder has finished (md_media_free). */
void md_recorder_wait_all(void);

/* Export: decrypts the recording (reader, sequentially) and remuxes it,
 * without transcoding, to out_path: WebM for VP8, MP4 for H.264, every
 * track kept (tablet video, tablet audio, verifier video, verifier audio,
 * those present).  A cut recording exports up to the cut.  ret_container
 * (nullable) gets "webm" or "mp4"; ret_duration_ms (nullable) the
 * exported duration.  -MD_E_RECORDING_EXPORT with a debug log of GStreamer's
 * message, -MD_E_EVIDENCE_CORRUPT from the reader. */
int md_recorder_export(md_evidence_rec_reader *rd, const char *out_path, const char **ret_container,
                       int64_t *ret_duration_ms);

#endif
