/**
 * Records what happens on an sftp channel as file operations with sizes and SHA-256 hashes
 * (best effort: an observer, not a proxy — the bytes are forwarded untouched whatever it
 * concludes). Hashes are over the bytes in the order they crossed the gateway, which is the
 * file's hash for the sequential transfers sftp and scp make; `sequential: false` says when
 * offsets jumped. If the stream cannot be framed (a bug or a non-v3 peer) observation stops.
 *
 * File data is hashed as slices of the chunks that cross the gateway (SftpStreamFramer): WRITE
 * and DATA packets are never reassembled or copied, which keeps the observer's cost on the data
 * path to the SHA-256 itself.
 */
import { createHash, type Hash } from "node:crypto";
import { FXP, SftpReader, SftpStreamFramer, type SftpFrame } from "./wire/sftp.js";

export interface SftpOperation {
  readonly text: string;
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

interface OpenFile {
  readonly path: string;
  read: number;
  written: number;
  readonly readHash: Hash;
  readonly writeHash: Hash;
  nextReadOffset: number;
  nextWriteOffset: number;
  sequential: boolean;
}

const MAX_TRACKED = 4096;

export class SftpObserver {
  readonly #emit: (op: SftpOperation) => void;
  readonly #client = new SftpStreamFramer(FXP.WRITE);
  readonly #server = new SftpStreamFramer(FXP.DATA);
  /** The file the WRITE (client) / DATA (server) being streamed belongs to, if tracked. */
  #writing: OpenFile | undefined;
  #reading: OpenFile | undefined;
  readonly #pendingOpen = new Map<number, string>();
  readonly #pendingRead = new Map<number, Buffer>();
  readonly #files = new Map<string, OpenFile>();
  #broken = false;

  constructor(emit: (op: SftpOperation) => void) {
    this.#emit = emit;
  }

  fromClient(chunk: Buffer): void {
    this.#safely(() => {
      for (const f of this.#client.push(chunk)) this.#clientFrame(f);
    });
  }

  fromServer(chunk: Buffer): void {
    this.#safely(() => {
      for (const f of this.#server.push(chunk)) this.#serverFrame(f);
    });
  }

  #clientFrame(fr: SftpFrame): void {
    switch (fr.kind) {
      case "packet":
        this.#clientPacket(fr.packet);
        return;
      case "start": {
        // WRITE: uint32 id, string handle, uint64 offset, string data (draft-02 §6.4)
        const f = fr.handle === undefined ? undefined : this.#files.get(fr.handle.toString("hex"));
        this.#writing = f;
        if (f === undefined) return;
        if (fr.offset !== f.nextWriteOffset) f.sequential = false;
        f.nextWriteOffset = fr.offset + fr.length;
        return;
      }
      case "data":
        if (this.#writing === undefined) return;
        this.#writing.written += fr.data.length;
        this.#writing.writeHash.update(fr.data);
        return;
    }
  }

  #serverFrame(fr: SftpFrame): void {
    switch (fr.kind) {
      case "packet":
        this.#serverPacket(fr.packet);
        return;
      case "start": {
        // DATA: uint32 id, string data (draft-02 §7), the answer to a READ
        const handle = this.#pendingRead.get(fr.id);
        this.#pendingRead.delete(fr.id);
        this.#reading = handle === undefined ? undefined : this.#files.get(handle.toString("hex"));
        return;
      }
      case "data":
        if (this.#reading === undefined) return;
        this.#reading.read += fr.data.length;
        this.#reading.readHash.update(fr.data);
        return;
    }
  }

  /** The channel closed: files still open are reported as they are. */
  close(): void {
    for (const [handle, f] of this.#files) {
      this.#report(f, "closed with the channel");
      this.#files.delete(handle);
    }
  }

  #safely(fn: () => void): void {
    if (this.#broken) return;
    try {
      fn();
    } catch {
      this.#broken = true;
      this.#emit({ text: "(sftp: the stream could not be followed; further operations are not recorded)", details: { op: "observer_stopped" } });
    }
  }

  #clientPacket(p: Buffer): void {
    const r = new SftpReader(p);
    const type = r.byte();
    if (type === FXP.INIT) return;
    const id = r.u32();
    switch (type) {
      case FXP.OPEN:
        if (this.#pendingOpen.size < MAX_TRACKED) this.#pendingOpen.set(id, r.string());
        return;
      case FXP.READ: {
        const handle = r.bytes();
        const offset = r.u64();
        const f = this.#files.get(handle.toString("hex"));
        if (f !== undefined && offset !== f.nextReadOffset) f.sequential = false;
        if (f !== undefined) f.nextReadOffset = offset + r.u32();
        if (this.#pendingRead.size < MAX_TRACKED) this.#pendingRead.set(id, handle);
        return;
      }
      case FXP.CLOSE: {
        const handle = r.bytes().toString("hex");
        const f = this.#files.get(handle);
        if (f !== undefined) {
          this.#files.delete(handle);
          this.#report(f, "closed");
        }
        return;
      }
      case FXP.REMOVE:
        this.#emit({ text: `sftp remove ${r.string()}`, details: { op: "remove" } });
        return;
      case FXP.MKDIR:
        this.#emit({ text: `sftp mkdir ${r.string()}`, details: { op: "mkdir" } });
        return;
      case FXP.RMDIR:
        this.#emit({ text: `sftp rmdir ${r.string()}`, details: { op: "rmdir" } });
        return;
      case FXP.RENAME: {
        const from = r.string();
        const to = r.string();
        this.#emit({ text: `sftp rename ${from} -> ${to}`, details: { op: "rename" } });
        return;
      }
      case FXP.SYMLINK: {
        const a = r.string();
        const b = r.string();
        this.#emit({ text: `sftp symlink ${a} ${b}`, details: { op: "symlink" } });
        return;
      }
      case FXP.SETSTAT:
        this.#emit({ text: `sftp setstat ${r.string()}`, details: { op: "setstat" } });
        return;
      default:
        return;
    }
  }

  #serverPacket(p: Buffer): void {
    const r = new SftpReader(p);
    const type = r.byte();
    if (type === FXP.VERSION) return;
    const id = r.u32();
    switch (type) {
      case FXP.HANDLE: {
        const path = this.#pendingOpen.get(id);
        this.#pendingOpen.delete(id);
        if (path === undefined || this.#files.size >= MAX_TRACKED) return;
        this.#files.set(r.bytes().toString("hex"), {
          path,
          read: 0,
          written: 0,
          readHash: createHash("sha256"),
          writeHash: createHash("sha256"),
          nextReadOffset: 0,
          nextWriteOffset: 0,
          sequential: true,
        });
        return;
      }
      case FXP.STATUS:
        this.#pendingOpen.delete(id);
        this.#pendingRead.delete(id);
        return;
      default:
        return;
    }
  }

  #report(f: OpenFile, how: string): void {
    const details: Record<string, string | number | boolean> = { op: "file", path: f.path, bytesRead: f.read, bytesWritten: f.written, sequential: f.sequential };
    if (f.read > 0) details["sha256Read"] = f.readHash.digest("hex");
    if (f.written > 0) details["sha256Written"] = f.writeHash.digest("hex");
    const what = f.written > 0 ? `wrote ${f.written} bytes` : f.read > 0 ? `read ${f.read} bytes` : "opened";
    this.#emit({ text: `sftp ${what}: ${f.path} (${how})`, details });
  }
}
