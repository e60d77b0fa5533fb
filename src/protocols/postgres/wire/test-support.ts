import { FrameReader, type FrameReaderOptions } from "./framer.js";

/**
 * Helpers for the wire tests (pure, no test framework). Not exported from index.ts.
 */

export interface CollectedFrame {
  readonly type: number;
  readonly bytes: Buffer;
  readonly body: Buffer;
}

/**
 * Push `chunks` one by one into a fresh FrameReader, draining it after each push, and return
 * every frame. With `untagged`, the reader switches to tagged framing after the first frame
 * (as the engine does after the startup packet).
 */
export function frameChunks(chunks: readonly Buffer[], options: FrameReaderOptions): CollectedFrame[] {
  const reader = new FrameReader(options);
  const frames: CollectedFrame[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let f = reader.next(); f !== undefined; f = reader.next()) {
      frames.push({ type: f.type, bytes: f.bytes, body: f.body });
      if (options.untagged === true && frames.length === 1) reader.setTagged();
    }
  }
  if (reader.buffered !== 0) throw new Error(`${reader.buffered} bytes left over`);
  return frames;
}

/** Every way to cut `bytes` in two: [[], whole], [first byte, rest], …, [whole, []]. */
export function* splitsInTwo(bytes: Buffer): Generator<Buffer[]> {
  for (let k = 0; k <= bytes.length; k++) yield [bytes.subarray(0, k), bytes.subarray(k)];
}

/** `bytes` as 1-byte chunks. */
export function byteChunks(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(bytes.subarray(i, i + 1));
  return out;
}

/** `bytes` cut at the given (sorted, in-range) offsets. */
export function cutAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const o of offsets) {
    out.push(bytes.subarray(prev, o));
    prev = o;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** Plain copies, so that frame comparisons compare contents, not views. */
export function plain(frames: readonly CollectedFrame[]): { type: number; bytes: string; body: string }[] {
  return frames.map((f) => ({ type: f.type, bytes: f.bytes.toString("hex"), body: f.body.toString("hex") }));
}
