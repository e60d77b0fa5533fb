/**
 * Collects frames to write in one go. Adjacent slices of the same input chunk are merged back
 * into one view, so forwarding a chunk of many small messages unchanged costs one write of
 * the original bytes, not one write per message ("forward original bytes; never copy what
 * you can slice").
 */
export class OutBuffer {
  #parts: Buffer[] = [];
  #bytes = 0;

  add(b: Buffer): void {
    this.#bytes += b.length;
    const last = this.#parts[this.#parts.length - 1];
    if (last !== undefined && last.buffer === b.buffer && last.byteOffset + last.length === b.byteOffset) {
      this.#parts[this.#parts.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + b.length);
      return;
    }
    this.#parts.push(b);
  }

  get length(): number {
    return this.#bytes;
  }

  /**
   * Hand the collected parts to a writer in one write; returns false if the writer asked to
   * back off. Several parts (rewritten rows between forwarded slices) are joined first: one
   * copy of a chunk costs far less than a socket write per part.
   */
  flushTo(write: (b: Buffer) => boolean): boolean {
    const parts = this.#parts;
    const total = this.#bytes;
    this.#parts = [];
    this.#bytes = 0;
    if (parts.length === 0) return true;
    const only = parts[0];
    if (parts.length === 1 && only !== undefined) return write(only);
    return write(Buffer.concat(parts, total));
  }
}
