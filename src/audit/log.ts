/**
 * The local audit log: the hot path every decision goes through before it is forwarded.
 *
 * Write path (group commit). `append()` builds the record synchronously — seq, time, prevHash
 * and hash are assigned in call order by this single writer — and queues its line. Every line
 * queued while no write is in flight goes out in ONE write (plus fdatasync when `fsync`) on the
 * next turn of the event loop; lines queued during a write form the next batch, written as soon
 * as the current one finishes. Each append's promise resolves when its batch is on disk (in the
 * OS, or on the device with fsync).
 *
 * Fail closed. If a write fails, that batch's appends and every later append reject with
 * GW_AUDIT_UNAVAILABLE, and the log stays failed until the process restarts: the sequence
 * numbers handed out can no longer be trusted to be on disk, and continuing would put a hole
 * in the chain.
 *
 * Shipping. A background loop copies committed records to the store in batches of up to 500,
 * reading them back from the file at a tracked byte offset (memory stays bounded however far
 * the store falls behind) and retrying with exponential backoff while the store is down. The
 * data path never waits for the store.
 *
 * Head anchoring. The file's last record and the store's last record anchor each other:
 * `verifyAudit` in verify.ts checks that neither copy ends before the other, which is how
 * removal of the newest records (undetectable from one chain alone) is caught.
 *
 * Restart. The chain continues from the file's last record (which must parse and verify with
 * the key; a torn or foreign last line refuses start-up), or from the store's last record when
 * the file is missing or empty. A store AHEAD of the file means the file was rolled back or
 * another gateway writes the same store: start-up is refused rather than forking the chain.
 */
import { writeSync } from "node:fs";
import { mkdir, open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { GatewayError } from "../core/errors.js";
import type { Store } from "../store/types.js";
import { canonicalKnownRecord, ChainHasher, computeHash, GENESIS_HASH, storableString, type AuditRecordWithoutHash } from "./chain.js";
import { parseRecordLine, parseShippedLine, readAuditFileHead, readLines } from "./file.js";
import type { AuditEventInput, AuditLog, AuditRecord } from "./types.js";

export const AUDIT_FILE_NAME = "audit.log";
export const SHIP_BATCH = 2000;
/** Records are shipped in batches at most this often (or sooner when a batch is full or on flush). */
export const SHIP_INTERVAL_MS = 250;
/**
 * Committed records kept in memory for the shipper (as written, by byte range of the file), so
 * a store that keeps up gets them without the file being read back and parsed again. Beyond
 * this many the memory is dropped and the shipper reads the file, as after a restart.
 */
export const SHIP_MEMORY_RECORDS = 20_000;

/** One committed batch: its records and where its lines are in the file. */
interface CommittedBatch {
  readonly records: readonly AuditRecord[];
  readonly start: number;
  readonly end: number;
}

/** Where the log's bytes go. Injectable so tests can count writes and inject failures. */
export interface AuditWriter {
  /** Append all of `data` (the default implementation loops over short writes). */
  write(data: Buffer): Promise<void>;
  /**
   * The same, synchronously. Used for group commits without fsync: an append to the page
   * cache takes microseconds, while a round trip through the thread pool costs an event-loop
   * turn on every statement's critical path.
   */
  writeSync?(data: Buffer): void;
  datasync(): Promise<void>;
  close(): Promise<void>;
}

export interface LocalAuditLogOptions {
  readonly dir: string;
  readonly key: Buffer;
  readonly store: Store;
  readonly fsync: boolean;
  readonly logger?: Logger;
  /** Default: append to `<dir>/audit.log` (created 0600). */
  readonly openWriter?: (path: string) => Promise<AuditWriter>;
  /** Store retry backoff (ms): first delay and cap. Defaults 200 and 30 000. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** How long close() keeps trying to ship before giving up (records stay in the file). Default 5 000. */
  readonly closeTimeoutMs?: number;
}

async function defaultWriter(path: string): Promise<AuditWriter> {
  const fh: FileHandle = await open(path, "a", 0o600);
  // The mode above applies only on creation; tighten a file created by something else.
  await fh.chmod(0o600);
  return {
    async write(data) {
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await fh.write(data, off, data.length - off);
        if (bytesWritten <= 0) throw new Error("audit log write made no progress");
        off += bytesWritten;
      }
    },
    writeSync(data) {
      let off = 0;
      while (off < data.length) {
        const n = writeSync(fh.fd, data, off, data.length - off);
        if (n <= 0) throw new Error("audit log write made no progress");
        off += n;
      }
    },
    datasync: () => fh.datasync(),
    close: () => fh.close(),
  };
}

interface Batch {
  readonly lines: string[];
  /** The records of `lines`, in order (kept for shipping without reading them back). */
  readonly records: AuditRecord[];
  lastSeq: number;
  readonly done: Promise<void>;
  resolve(): void;
  reject(e: GatewayError): void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (e: GatewayError) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The batch promise itself is never awaited by callers (they get derived promises);
  // without this a failed batch would be reported as an unhandled rejection.
  done.catch(() => undefined);
  return { lines: [], records: [], lastSeq: 0, done, resolve, reject };
}

interface FlushWaiter {
  readonly target: number;
  resolve(): void;
  reject(e: GatewayError): void;
}

const s = storableString;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Build the record (without hash) from the caller's input: copy only the contract's fields
 * (callers may pass wider objects, whose extra fields must not reach the log) and make strings
 * storable. Throws TypeError for a value the chain cannot encode.
 */
function buildRecord(input: AuditEventInput, seq: number, time: string, prevHash: string): Mutable<AuditRecordWithoutHash> {
  const out: Mutable<AuditRecordWithoutHash> = { type: input.type, seq, time, prevHash };
  if (input.sessionId !== undefined) out.sessionId = s(input.sessionId);
  if (input.principal !== undefined) out.principal = { id: s(input.principal.id), kind: input.principal.kind, name: s(input.principal.name) };
  if (input.connection !== undefined) out.connection = s(input.connection);
  if (input.protocol !== undefined) out.protocol = s(input.protocol);
  if (input.clientAddress !== undefined) out.clientAddress = s(input.clientAddress);
  if (input.decision !== undefined) out.decision = input.decision;
  if (input.code !== undefined) out.code = input.code;
  if (input.rule !== undefined) out.rule = s(input.rule);
  if (input.message !== undefined) out.message = s(input.message);
  if (input.statement !== undefined) out.statement = s(input.statement);
  if (input.details !== undefined) {
    const d: Record<string, string | number | boolean | null> = {};
    // Checked at run time too: callers' objects are not always what their types claim.
    for (const [k, v] of Object.entries(input.details)) {
      const value: unknown = v;
      if (value === undefined) continue;
      if (typeof value === "string") d[s(k)] = s(value);
      else if (typeof value === "number") {
        if (!Number.isFinite(value)) throw new TypeError(`details.${k} is not a finite number`);
        d[s(k)] = value;
      } else if (typeof value === "boolean" || value === null) d[s(k)] = value;
      else throw new TypeError(`details.${k} is not a string, number, boolean or null`);
    }
    out.details = d;
  }
  return out;
}

export class LocalAuditLog implements AuditLog {
  readonly path: string;
  private readonly hasher: ChainHasher;
  private readonly store: Store;
  private readonly fsync: boolean;
  private readonly logger: Logger | undefined;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly closeTimeoutMs: number;
  private writer: AuditWriter;

  // Chain head as handed out (may be ahead of what is on disk).
  private seq: number;
  private headHash: string;

  // Durable state: bytes and records known to be written.
  private committedSeq: number;
  private committedOffset: number;

  private pending: Batch | undefined;
  /** The last seq handed out by queue() (settle() makes it durable). */
  private queuedSeq = 0;
  private writing = false;
  private scheduled = false;
  private failure: GatewayError | undefined;
  private closing = false;
  private closePromise: Promise<void> | undefined;

  // Shipping.
  private shippedSeq = -1; // unknown until the shipper learns the store's head
  private shipOffset = 0;
  private shipStopped = false;
  private shipLoopDone: Promise<void> = Promise.resolve();
  private wakeOnCommit: (() => void) | undefined;
  private wakeOnInterval: (() => void) | undefined;
  private wakeOnStop: (() => void) | undefined;
  private flushWaiters: FlushWaiter[] = [];
  /** Committed batches not yet shipped, oldest first (see SHIP_MEMORY_RECORDS). */
  private shipMemory: CommittedBatch[] = [];
  private shipMemoryRecords = 0;
  private shipFailure: GatewayError | undefined;
  /** The seq of the file's first line when it was opened (locating unshipped records). */
  private readonly fileFirstSeq: number | undefined;

  private constructor(
    options: LocalAuditLogOptions,
    writer: AuditWriter,
    head: { seq: number; hash: string },
    fileSize: number,
    fileFirstSeq: number | undefined,
  ) {
    this.path = join(options.dir, AUDIT_FILE_NAME);
    this.hasher = new ChainHasher(options.key);
    this.store = options.store;
    this.fsync = options.fsync;
    this.logger = options.logger;
    this.retryMinMs = options.retryMinMs ?? 200;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
    this.writer = writer;
    this.seq = head.seq;
    this.headHash = head.hash;
    this.committedSeq = head.seq;
    this.committedOffset = fileSize;
    this.fileFirstSeq = fileFirstSeq;
  }

  static async open(options: LocalAuditLogOptions): Promise<LocalAuditLog> {
    if (options.key.length < 16) throw new GatewayError("GW_CONFIG", "the audit key is too short");
    const path = join(options.dir, AUDIT_FILE_NAME);
    try {
      await mkdir(options.dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new GatewayError("GW_AUDIT_UNAVAILABLE", `cannot create the audit directory ${options.dir}`, { cause: e });
    }

    const fileHead = await readAuditFileHead(path);
    let storeHead: AuditRecord | undefined;
    let storeError: unknown;
    try {
      storeHead = await options.store.lastAudit();
    } catch (e) {
      storeError = e;
    }

    let head: { seq: number; hash: string };
    let fileFirstSeq: number | undefined;
    if (fileHead !== undefined) {
      if (computeHash(options.key, fileHead.prevHash, fileHead) !== fileHead.hash) {
        throw new GatewayError(
          "GW_AUDIT_UNAVAILABLE",
          `the last record of ${path} (seq ${fileHead.seq}) does not verify with the audit key: the key file was replaced or the log was edited`,
        );
      }
      if (storeHead !== undefined && storeHead.seq > fileHead.seq) {
        throw new GatewayError(
          "GW_AUDIT_UNAVAILABLE",
          `the store holds audit records up to seq ${storeHead.seq} but ${path} ends at seq ${fileHead.seq}: ` +
            "the local log was rolled back, or another gateway writes to the same store; refusing to fork the audit chain",
        );
      }
      head = { seq: fileHead.seq, hash: fileHead.hash };
      fileFirstSeq = await firstSeqOf(path);
    } else {
      if (storeError !== undefined) {
        throw new GatewayError("GW_AUDIT_UNAVAILABLE", "the local audit log is empty and the store cannot be read to continue the chain", {
          cause: storeError,
        });
      }
      if (storeHead !== undefined && computeHash(options.key, storeHead.prevHash, storeHead) !== storeHead.hash) {
        throw new GatewayError(
          "GW_AUDIT_UNAVAILABLE",
          `the store's last audit record (seq ${storeHead.seq}) does not verify with the audit key: wrong key file, or the store was edited`,
        );
      }
      head = storeHead === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: storeHead.seq, hash: storeHead.hash };
    }

    let writer: AuditWriter;
    let size: number;
    try {
      writer = await (options.openWriter ?? defaultWriter)(path);
      const fh = await open(path, "r");
      try {
        size = (await fh.stat()).size;
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw new GatewayError("GW_AUDIT_UNAVAILABLE", `cannot open the audit log ${path}`, { cause: e });
    }
    const log = new LocalAuditLog(options, writer, head, size, fileFirstSeq);
    log.startShipper(storeError === undefined ? (storeHead?.seq ?? 0) : undefined);
    return log;
  }

  /** The last seq handed out. */
  get headSeq(): number {
    return this.seq;
  }

  /** The last seq known to be in the store (-1 while unknown). */
  get storedSeq(): number {
    return this.shippedSeq;
  }

  append(input: AuditEventInput): Promise<AuditRecord> {
    let queued: { record: AuditRecord; batch: Batch };
    try {
      queued = this.enqueue(input);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit record could not be queued"));
    }
    return queued.batch.done.then(() => queued.record);
  }

  /**
   * See AuditLog.queue: only without fsync (the batch is then written synchronously, so
   * `settle()` can make it durable on the spot); undefined otherwise.
   */
  queue(input: AuditEventInput): AuditRecord | undefined {
    if (this.fsync || this.writer.writeSync === undefined) return undefined;
    const { record } = this.enqueue(input);
    this.queuedSeq = record.seq;
    return record;
  }

  /** See AuditLog.settle. */
  settle(seq: number = this.queuedSeq): boolean {
    if (this.committedSeq >= seq) return true;
    if (this.pending !== undefined && !this.writing) this.writeNext();
    return this.failure === undefined && this.committedSeq >= seq;
  }

  /** Build, chain and queue a record (synchronous). Throws GatewayError GW_AUDIT_UNAVAILABLE. */
  private enqueue(input: AuditEventInput): { record: AuditRecord; batch: Batch } {
    if (this.failure !== undefined) throw this.failure;
    if (this.closing) throw new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit log is closed");
    let record: AuditRecord;
    let line: string;
    try {
      const base = buildRecord(input, this.seq + 1, new Date().toISOString(), this.headHash);
      const canonical = canonicalKnownRecord(base);
      const hash = this.hasher.hash(this.headHash, canonical);
      record = Object.assign(base, { hash });
      // Key order inside a line does not matter (verification re-canonicalises); putting the
      // hash first lets the line reuse the canonical text instead of serialising again.
      line = `{"hash":"${hash}",${canonical.slice(1)}\n`;
    } catch (e) {
      // A record that cannot be encoded is never written; the caller must not proceed either.
      throw new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit record could not be encoded", { cause: e });
    }
    this.seq = record.seq;
    this.headHash = record.hash;
    const batch = (this.pending ??= newBatch());
    batch.lines.push(line);
    batch.records.push(record);
    batch.lastSeq = record.seq;
    if (!this.writing && !this.scheduled) {
      this.scheduled = true;
      setImmediate(this.writeNext);
    }
    return { record, batch };
  }

  private readonly writeNext = (): void => {
    this.scheduled = false;
    const batch = this.pending;
    if (batch === undefined || this.writing) return;
    this.pending = undefined;
    if (!this.fsync && this.writer.writeSync !== undefined) {
      this.writeBatchSync(batch, this.writer.writeSync.bind(this.writer));
      return;
    }
    this.writing = true;
    void this.writeBatch(batch);
  };

  private writeBatchSync(batch: Batch, write: (data: Buffer) => void): void {
    const data = Buffer.from(batch.lines.join(""), "utf8");
    try {
      write(data);
    } catch (e) {
      this.fail(e);
      batch.reject(this.failure ?? new GatewayError("GW_AUDIT_UNAVAILABLE", "audit log write failed"));
      return;
    }
    this.remember(batch, data.length);
    this.committedOffset += data.length;
    this.committedSeq = batch.lastSeq;
    batch.resolve();
    this.wakeOnCommit?.();
  }

  private async writeBatch(batch: Batch): Promise<void> {
    const data = Buffer.from(batch.lines.join(""), "utf8");
    try {
      await this.writer.write(data);
      if (this.fsync) await this.writer.datasync();
    } catch (e) {
      this.fail(e);
      batch.reject(this.failure ?? new GatewayError("GW_AUDIT_UNAVAILABLE", "audit log write failed"));
      this.writing = false;
      return;
    }
    this.remember(batch, data.length);
    this.committedOffset += data.length;
    this.committedSeq = batch.lastSeq;
    this.writing = false;
    batch.resolve();
    this.wakeOnCommit?.();
    if (this.pending !== undefined) this.writeNext();
  }

  /** Keep a batch just written (at committedOffset, `bytes` long) for the shipper. */
  private remember(batch: Batch, bytes: number): void {
    if (this.shipMemoryRecords + batch.records.length > SHIP_MEMORY_RECORDS) {
      // The store is far behind: read from the file instead (memory stays bounded).
      this.shipMemory = [];
      this.shipMemoryRecords = 0;
      return;
    }
    this.shipMemory.push({ records: batch.records, start: this.committedOffset, end: this.committedOffset + bytes });
    this.shipMemoryRecords += batch.records.length;
  }

  private fail(cause: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit log cannot be written; refusing further actions until restart", { cause });
    this.logger?.error({ err: cause, path: this.path }, "audit log write failed: failing closed");
    const queued = this.pending;
    this.pending = undefined;
    queued?.reject(this.failure);
    this.settleFlushWaiters();
  }

  // --- shipping -----------------------------------------------------------------------------

  flush(): Promise<void> {
    const target = this.seq;
    if (this.shippedSeq >= target) return Promise.resolve();
    const stuck = this.flushBlocker(target);
    if (stuck !== undefined) return Promise.reject(stuck);
    return new Promise<void>((resolve, reject) => {
      this.flushWaiters.push({ target, resolve, reject });
      // Ship now rather than at the next interval.
      this.wakeOnInterval?.();
    });
  }

  /** Why records up to `target` can never reach the store, if so. */
  private flushBlocker(target: number): GatewayError | undefined {
    if (this.shipFailure !== undefined) return this.shipFailure;
    if (this.failure !== undefined && target > this.committedSeq) return this.failure;
    if (this.shipStopped) return new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit log was closed before its records reached the store");
    return undefined;
  }

  private settleFlushWaiters(): void {
    if (this.flushWaiters.length === 0) return;
    const keep: FlushWaiter[] = [];
    for (const w of this.flushWaiters) {
      if (this.shippedSeq >= w.target) {
        w.resolve();
        continue;
      }
      const blocker = this.flushBlocker(w.target);
      if (blocker !== undefined) w.reject(blocker);
      else keep.push(w);
    }
    this.flushWaiters = keep;
  }

  private startShipper(storeSeq: number | undefined): void {
    this.shipLoopDone = this.shipLoop(storeSeq).catch((e: unknown) => {
      this.shipFailure = new GatewayError("GW_AUDIT_UNAVAILABLE", "audit shipping stopped", { cause: e });
      this.logger?.error({ err: e }, "audit shipper stopped unexpectedly");
      this.settleFlushWaiters();
    });
  }

  /**
   * Sleep until `ms` elapse, close() is called, or (when `onCommit`) a batch is committed.
   * Backoff sleeps ignore commits, so a busy gateway does not hammer a store that is down.
   */
  private idle(ms: number | undefined, onCommit: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        this.wakeOnCommit = undefined;
        this.wakeOnStop = undefined;
        this.wakeOnInterval = undefined;
        resolve();
      };
      if (ms !== undefined) {
        timer = setTimeout(done, ms);
        this.wakeOnInterval = done;
      }
      if (onCommit) this.wakeOnCommit = done;
      this.wakeOnStop = done;
    });
  }

  private async shipLoop(initialStoreSeq: number | undefined): Promise<void> {
    let backoff = this.retryMinMs;
    const state = { outage: false };
    const failed = async (e: unknown, what: string): Promise<void> => {
      if (!state.outage) this.logger?.warn({ err: e }, `audit shipping: ${what}; retrying`);
      state.outage = true;
      await this.idleUnlessStopped(backoff);
      backoff = Math.min(this.retryMaxMs, backoff * 2);
    };

    // 1. Learn the store's head and find the first record it lacks in the file.
    let storeSeq = initialStoreSeq;
    while (storeSeq === undefined) {
      if (this.shipStopped) return;
      try {
        storeSeq = (await this.store.lastAudit())?.seq ?? 0;
      } catch (e) {
        await failed(e, "the store is unavailable");
      }
    }
    if (storeSeq > this.committedSeq) {
      throw new GatewayError("GW_AUDIT_UNAVAILABLE", `the store is ahead of the local audit log (store ${storeSeq}, local ${this.committedSeq})`);
    }
    this.shippedSeq = storeSeq;
    this.shipOffset = storeSeq >= this.committedSeq ? this.committedOffset : await this.offsetOf(storeSeq + 1);
    this.settleFlushWaiters();

    // 2. Ship committed records as they come.
    while (!this.shipStopped) {
      if (this.shipOffset >= this.committedOffset) {
        await this.idle(undefined, true);
        continue;
      }
      // Let records accumulate into one larger batch: shipping each group commit on its own
      // costs the store (and the CPU the data path shares with it) far more per record.
      if (this.flushWaiters.length === 0 && this.committedSeq - this.shippedSeq < SHIP_BATCH) {
        await this.idle(SHIP_INTERVAL_MS, false);
      }
      const batch = await this.readBatch();
      try {
        await this.store.appendAudit(batch.records);
      } catch (e) {
        await failed(e, "the store refused a batch");
        continue;
      }
      if (state.outage) this.logger?.info({ seq: batch.lastSeq }, "audit shipping resumed");
      state.outage = false;
      backoff = this.retryMinMs;
      this.shippedSeq = batch.lastSeq;
      this.shipOffset = batch.nextOffset;
      this.settleFlushWaiters();
    }
  }

  private async idleUnlessStopped(ms: number): Promise<void> {
    if (!this.shipStopped) await this.idle(ms, false);
  }

  /** Byte offset of the line holding `seq` (the file's lines are consecutive seqs). */
  private async offsetOf(seq: number): Promise<number> {
    const first = this.fileFirstSeq ?? (await firstSeqOf(this.path));
    if (first === undefined || seq <= first) return 0;
    let index = 0;
    const wanted = seq - first;
    for await (const line of readLines(this.path)) {
      if (line.offset >= this.committedOffset) break;
      if (index === wanted) return line.offset;
      index++;
    }
    return this.committedOffset;
  }

  private async readBatch(): Promise<{ records: AuditRecord[]; lastSeq: number; nextOffset: number }> {
    // Batches remembered at commit, when they continue exactly where shipping stands.
    while (this.shipMemory.length > 0 && (this.shipMemory[0]?.end ?? 0) <= this.shipOffset) {
      this.shipMemoryRecords -= this.shipMemory.shift()?.records.length ?? 0;
    }
    if (this.shipMemory[0]?.start === this.shipOffset) {
      const records: AuditRecord[] = [];
      let nextOffset = this.shipOffset;
      for (const b of this.shipMemory) {
        if (b.start !== nextOffset || b.end > this.committedOffset || records.length + b.records.length > SHIP_BATCH) break;
        records.push(...b.records);
        nextOffset = b.end;
      }
      const last = records[records.length - 1];
      if (last !== undefined) return { records, lastSeq: last.seq, nextOffset };
    }
    return this.readBatchFromFile();
  }

  private async readBatchFromFile(): Promise<{ records: AuditRecord[]; lastSeq: number; nextOffset: number }> {
    const records: AuditRecord[] = [];
    let nextOffset = this.shipOffset;
    const limit = this.committedOffset;
    for await (const line of readLines(this.path, this.shipOffset)) {
      if (line.offset >= limit || line.torn) break;
      const r = parseShippedLine(line.text);
      if (r === undefined) {
        throw new GatewayError("GW_AUDIT_UNAVAILABLE", `the audit log ${this.path} holds an unreadable record at byte ${line.offset}`);
      }
      records.push(r);
      nextOffset = line.next;
      if (records.length >= SHIP_BATCH) break;
    }
    const last = records[records.length - 1];
    if (last === undefined) throw new GatewayError("GW_AUDIT_UNAVAILABLE", "the audit log is shorter than what was written");
    return { records, lastSeq: last.seq, nextOffset };
  }

  // --- shutdown -----------------------------------------------------------------------------

  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    // 1. Let queued appends reach the file.
    // Invariant: a pending batch is always either scheduled or chained after the write in flight.
    while (this.writing || this.pending !== undefined || this.scheduled) {
      await new Promise<void>((r) => setImmediate(r));
    }
    // 2. Give the shipper a bounded time to drain; what is left ships at the next start.
    if (this.shipFailure === undefined) {
      const target = this.committedSeq;
      const drained = new Promise<void>((resolve) => {
        if (this.shippedSeq >= target) resolve();
        else this.flushWaiters.push({ target, resolve, reject: () => resolve() });
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((r) => (timer = setTimeout(r, this.closeTimeoutMs)));
      await Promise.race([drained, timeout]);
      clearTimeout(timer);
    }
    this.shipStopped = true;
    this.wakeOnStop?.();
    await this.shipLoopDone;
    this.settleFlushWaiters();
    try {
      await this.writer.close();
    } catch (e) {
      this.logger?.warn({ err: e }, "closing the audit log file failed");
    }
  }
}

/** The seq of the first record in the file, if it has one. */
async function firstSeqOf(path: string): Promise<number | undefined> {
  try {
    for await (const line of readLines(path)) {
      return parseRecordLine(line.text)?.seq;
    }
  } catch {
    return undefined;
  }
  return undefined;
}
