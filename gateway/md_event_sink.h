/*
 * The event sink: how the media plane's threads hand md_media_events to the
 * control thread (internal to gateway/).  It sits below both md_media.c (the
 * control-thread face, which creates it and receives what it delivers) and
 * the worker code (md_bridge*.c, md_quality_tick.c) and recorder threads that
 * post to it; neither side calls into the other through it.
 *
 * Threads:
 *   - md_event_sink_new() and md_event_sink_close(): the control thread, the
 *     one running the control context.
 *   - md_event_sink_post(), _ref(), _unref(): any thread.  post() copies the
 *     event (strings, the file, the recording, a deep copy of stats) and
 *     attaches the copy as an idle source to the control context.
 *   - The deliver callback: the control thread, once per posted event, in
 *     the order they were posted, with the poster's serial.
 *
 * Lifetime: the sink is reference counted; its creator holds the first
 * reference, each holder that posts (a worker's host, a recording awaiting
 * its end) takes its own, and every posted event holds one until it is
 * delivered or dropped.  The last unref, from any thread, frees the sink and
 * drops its reference on the control context.  md_event_sink_close() cuts
 * the sink from its owner: events still queued and posted later are dropped
 * without calling deliver, so the owner may be freed as soon as close
 * returns, while workers still hold the sink.
 */
#ifndef MD_EVENT_SINK_H
#define MD_EVENT_SINK_H

#include "md_media.h"

#include <glib.h>
#include <stdint.h>

typedef struct md_event_sink md_event_sink;

/* Control thread; pointers in ev are valid during the call only. */
typedef void (*md_event_sink_deliver_cb)(const md_media_event *ev, uint64_t serial, void *owner);

/* Control thread: a sink delivering on control (referenced) to deliver(ev,
 * serial, owner).  The caller holds the one reference. */
md_event_sink *md_event_sink_new(GMainContext *control, md_event_sink_deliver_cb deliver,
                                 void *owner);
/* Control thread: nothing is delivered from here on (see above). */
void md_event_sink_close(md_event_sink *sink);
md_event_sink *md_event_sink_ref(md_event_sink *sink);
void md_event_sink_unref(md_event_sink *sink); /* NULL: no-op */
/* Any thread: copies ev and queues it for the control thread. */
void md_event_sink_post(md_event_sink *sink, const md_media_event *ev, uint64_t serial);

/* An owned copy of an md_media_file, as events, commands and a leg's file
 * queue carry it across threads. */
typedef struct md_owned_file {
    char *id, *name, *mime, *sha256;
    uint64_t size;
    bool still;
    uint32_t width, height;
} md_owned_file;
void md_owned_file_copy(md_owned_file *dst, const md_media_file *f);
md_media_file md_owned_file_view(const md_owned_file *f);
void md_owned_file_clear(md_owned_file *f);

#endif
