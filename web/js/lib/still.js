// Client library: the tablet's still capture. On the gateway's `still` {session, id} the tablet takes a photo at
// the camera's full resolution and offers it on the `file` channel as
// kind "still" with that id, its MIME type, width and height (DESIGN 4;
// docs/protocol.md, "Data channels").
//
// The photo comes from ImageCapture.takePhoto() where the browser has it, at
// the largest size the camera offers (getPhotoCapabilities()); where there
// is none or it fails, the track is drawn at its native size
// (track.getSettings()) to a canvas and encoded as JPEG. The offer's width
// and height are those of the image itself (decoded), which the gateway
// reads from the bytes too.
import { md } from './channels.js';

md.stills = [];  // {id, method, mime, width, height, size, error}
md.stillMethod = 'auto'; // a test may set 'canvas' to leave ImageCapture out

function decodeSize(blob) {
  return createImageBitmap(blob).then((b) => {
    const size = { width: b.width, height: b.height };
    b.close();
    return size;
  });
}

// The camera's own photo at its largest size: the resolution of a photo is
// the camera's, not the video track's (Chromium's fake camera shoots 640x480
// while its track is cropped to 640x360).
async function fromImageCapture(track) {
  const capture = new ImageCapture(track);
  let photoSettings = {};
  try {
    const caps = await capture.getPhotoCapabilities();
    if (caps.imageWidth && caps.imageHeight && caps.imageWidth.max && caps.imageHeight.max)
      photoSettings = { imageWidth: caps.imageWidth.max, imageHeight: caps.imageHeight.max };
  } catch {
    // no photo capabilities: take the photo as it comes
  }
  const blob = await capture.takePhoto(photoSettings);
  let camera = null;
  try {
    const s = await capture.getPhotoSettings();
    camera = { width: s.imageWidth, height: s.imageHeight };
  } catch {
    // not told: the decoded size is all there is
  }
  return { blob, size: await decodeSize(blob), camera };
}

async function fromCanvas(track, settings) {
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([track]);
  try {
    await video.play();
    if (!video.videoWidth) {
      await new Promise((resolve) => video.addEventListener('resize', resolve, { once: true }));
    }
    const width = settings.width || video.videoWidth;
    const height = settings.height || video.videoHeight;
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    canvas.getContext('2d').drawImage(video, 0, 0, width, height);
    const blob = await new Promise((resolve, reject) => canvas.toBlob(
      (b) => (b ? resolve(b) : reject(new Error('toBlob gave nothing'))), 'image/jpeg', 0.92));
    return { blob, size: { width, height } };
  } finally {
    video.pause();
    video.srcObject = null;
  }
}

// Takes a photo from `track`: {bytes, mime, width, height (decoded), method,
// fallback (why not ImageCapture), camera (the photo size the camera
// reports), trackWidth, trackHeight}.
export async function capture(track) {
  const settings = track.getSettings();
  let photo = null;
  let method = 'canvas';
  let fallback = null;
  if (typeof ImageCapture === 'function' && md.stillMethod !== 'canvas') {
    try {
      photo = await fromImageCapture(track);
      method = 'ImageCapture';
    } catch (e) {
      fallback = `takePhoto failed: ${e}`;
      console.warn(`${fallback}: drawing the track`);
    }
  } else {
    fallback = typeof ImageCapture === 'function' ? 'canvas asked for' : 'no ImageCapture';
  }
  if (!photo) photo = await fromCanvas(track, settings);
  const mime = photo.blob.type === 'image/png' ? 'image/png' : 'image/jpeg';
  return { bytes: new Uint8Array(await photo.blob.arrayBuffer()), mime,
           width: photo.size.width, height: photo.size.height, method, fallback,
           camera: photo.camera || null, trackWidth: settings.width, trackHeight: settings.height };
}

// The gateway's `still` {session, id}: capture and offer as kind "still".
export async function onStill(msg, track) {
  const entry = { id: msg.id, method: null, mime: null, width: null, height: null, size: null,
                  error: null };
  md.stills.push(entry);
  try {
    if (!track) throw new Error('no camera track');
    const photo = await capture(track);
    Object.assign(entry, { method: photo.method, fallback: photo.fallback, camera: photo.camera,
                           mime: photo.mime, width: photo.width,
                           height: photo.height, size: photo.bytes.length,
                           trackWidth: photo.trackWidth, trackHeight: photo.trackHeight });
    const ext = photo.mime === 'image/png' ? 'png' : 'jpg';
    md.sendFile({ id: msg.id, name: `${msg.id}.${ext}`, mime: photo.mime, kind: 'still',
                  bytes: photo.bytes, width: photo.width, height: photo.height });
  } catch (e) {
    entry.error = String(e && e.stack || e);
    console.error('still:', entry.error);
  }
}
