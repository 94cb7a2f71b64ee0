// Reads the frame counter that tests/browser/aiortc_tablet.py paints into its
// video: an 8 x 4 grid of blocks over the whole frame, white = 1, black = 0.
// The first 16 blocks (row-major) are the counter's bits, least significant
// first; the next 16 are the same bits inverted, so a frame that is not read
// cleanly (a block between black and white) is rejected instead of misread.
// Large blocks and a threshold at mid-grey survive VP8/H.264 compression.

export const COLS = 8;
export const ROWS = 4;

// Decodes the counter from RGBA pixels of a w x h image; null if unreadable.
export function decode(rgba, w, h) {
  const bits = [];
  const cw = w / COLS;
  const ch = h / ROWS;
  for (let i = 0; i < COLS * ROWS; i++) {
    const x0 = Math.floor((i % COLS) * cw + cw / 4);
    const y0 = Math.floor(Math.floor(i / COLS) * ch + ch / 4);
    const x1 = Math.floor(x0 + cw / 2);
    const y1 = Math.floor(y0 + ch / 2);
    let sum = 0;
    let n = 0;
    for (let y = y0; y < y1; y += 2) {
      for (let x = x0; x < x1; x += 2) {
        const p = (y * w + x) * 4;
        sum += 0.299 * rgba[p] + 0.587 * rgba[p + 1] + 0.114 * rgba[p + 2];
        n++;
      }
    }
    const mean = sum / n;
    if (mean > 96 && mean < 160) return null; // neither black nor white
    bits.push(mean >= 128 ? 1 : 0);
  }
  let value = 0;
  for (let i = 0; i < 16; i++) {
    if (bits[i] === bits[16 + i]) return null;
    value |= bits[i] << i;
  }
  return value;
}

// Samples `video` on every frame it shows (or every 30 ms) and records each
// change of the decoded value in state.reads.
export function watch(video, canvas, state) {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  Object.assign(state, { reads: [], samples: 0, unreadable: 0, decreases: 0, last: null });
  const sample = () => {
    if (video.readyState >= 2 && video.videoWidth > 0) {
      ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
      const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
      const value = decode(img.data, canvas.width, canvas.height);
      state.samples++;
      if (value === null) {
        state.unreadable++;
      } else if (value !== state.last) {
        if (state.last !== null && value < state.last) state.decreases++;
        state.last = value;
        if (state.reads.length < 5000) state.reads.push(value);
        const e = document.getElementById('counter');
        if (e) e.textContent = String(value);
      }
    }
  };
  if (video.requestVideoFrameCallback) {
    const onFrame = () => { sample(); video.requestVideoFrameCallback(onFrame); };
    video.requestVideoFrameCallback(onFrame);
  } else {
    setInterval(sample, 30);
  }
}
