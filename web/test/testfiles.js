// Test pages only (docs/internals/browser-tests.md): deterministic file
// contents for the file-transfer tests. The gateway checks a file's type by
// its magic bytes alone (docs/internals/datachannels.md, "Type by content"),
// so a test PDF is "%PDF-1.4\n" and a test PNG is the PNG signature plus an
// IHDR chunk, each followed by pseudo-random bytes from a seed. The page
// makes the bytes it sends from (type, size, seed) and the Node test makes the
// same bytes to hash them, so no megabytes cross the automation protocol.
// No DOM here: the Node tests import this file too.

// CRC-32 (ISO 3309, as PNG chunks use it).
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// Fills `buf` (a Uint8Array) with xorshift32 output from `seed`.
export function fillPseudoRandom(buf, seed) {
  let x = (seed >>> 0) || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= buf.length; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    buf[i] = x; buf[i + 1] = x >>> 8; buf[i + 2] = x >>> 16; buf[i + 3] = x >>> 24;
  }
  for (; i < buf.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    buf[i] = x;
  }
  return buf;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

// The PNG signature and an IHDR chunk (width x height, 8-bit RGB): 33 bytes.
function pngHead(width, height) {
  const head = new Uint8Array(33);
  head.set(PNG_SIGNATURE, 0);
  const dv = new DataView(head.buffer);
  dv.setUint32(8, 13);                                 // chunk length
  head.set([0x49, 0x48, 0x44, 0x52], 12);              // "IHDR"
  dv.setUint32(16, width);
  dv.setUint32(20, height);
  head.set([8, 2, 0, 0, 0], 24);                       // depth, colour type, methods
  dv.setUint32(29, crc32(head.subarray(12, 29)));      // CRC of type + data
  return head;
}

// {type: 'pdf' | 'png' | 'bin', size, seed} -> Uint8Array of exactly `size`
// bytes: the type's magic bytes, then pseudo-random bytes.
export function makeTestFile({ type, size, seed }) {
  const head = type === 'pdf' ? new TextEncoder().encode('%PDF-1.4\n')
    : type === 'png' ? pngHead(1024, 768)
    : new Uint8Array(0);
  if (size < head.length) throw new Error(`a ${type} test file needs ${head.length} bytes at least`);
  const out = new Uint8Array(size);
  out.set(head, 0);
  fillPseudoRandom(out.subarray(head.length), seed);
  return out;
}
