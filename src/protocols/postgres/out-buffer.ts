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

  /** Hand the collected parts to a writer; returns false if the writer asked to back off. */
  flushTo(write: (b: Buffer) => boolean): boolean {
    let ok = true;
    for (const p of this.#parts) ok = write(p) && ok;
    this.#parts = [];
    this.#bytes = 0;
    return ok;
  }
}
