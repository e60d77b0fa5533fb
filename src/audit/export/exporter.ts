/**
 * Audit export (issue 20): every sink follows the audit chain on its own cursor, so that a
 * receiver's outage loses nothing and a gateway restart resumes where the sink stopped.
 *
 * Each sink reads the committed records from the store in seq order after its cursor, keeps the
 * ones its filter selects (event types, decisions, connections), renders them, and delivers them
 * in batches; only once a delivery succeeded is the cursor advanced and written to
 * `<dir>/<sink>.cursor` (atomically: a temporary file renamed over it). A failed delivery is
 * retried with exponential backoff (capped), the same batch again: delivery is at least once,
 * in order, and receivers can drop duplicates by `seq`.
 *
 * The chain head (`seq`, `hash` of the newest record read) is sent to every sink periodically
 * as an `audit.head` record, so that records later deleted from the gateway's own store can be
 * proven missing from outside (`airlock audit verify` checks the chain; the heads a SIEM holds
 * say how far it reached).
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { Glob } from "../../policy/glob.js";
import type { Store } from "../../store/types.js";
import type { AuditRecord } from "../types.js";
import { GATEWAY_VERSION } from "../../observability/version.js";
import { ocsfHead, toOcsf } from "./ocsf.js";
import type { ExportedRecord, Sink } from "./sinks.js";

/** How a sink's records are shaped: Airlock's own record, or OCSF 1.8 events (ocsf.ts). */
export type ExportFormat = "airlock" | "ocsf";

export interface SinkFilter {
  /** Event types (`db.query`, `auth.failure`, …); absent = all. */
  readonly types?: readonly string[];
  /** Decisions; absent = all (records without a decision pass only when absent). */
  readonly decisions?: readonly ("allow" | "deny")[];
  /** Connection globs; absent = all (records without a connection pass only when absent). */
  readonly connections?: readonly string[];
}

export interface ExportSink {
  readonly name: string;
  readonly filter: SinkFilter;
  readonly sink: Sink;
  /** Default `airlock`. */
  readonly format?: ExportFormat;
}

export interface ExporterOptions {
  readonly store: Store;
  /** Where the cursors live. */
  readonly dir: string;
  readonly sinks: readonly ExportSink[];
  readonly logger: Logger;
  readonly batch?: number;
  readonly pollMs?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** How often the chain head is published (default 60 s). */
  readonly headEveryMs?: number;
  /** How long close() keeps delivering what is left (default 5 s). */
  readonly closeTimeoutMs?: number;
}

/** Syslog severities (RFC 5424): warning for refusals and failures, informational otherwise. */
function severityOf(r: AuditRecord): number {
  if (r.decision === "deny" || r.type === "auth.failure") return 4;
  return 6;
}


export function renderRecord(r: AuditRecord, format: ExportFormat = "airlock"): ExportedRecord {
  const body = format === "ocsf" ? toOcsf(r, GATEWAY_VERSION) : { ...r };
  return { body, severity: severityOf(r), msgid: r.type, time: r.time };
}

export function headRecord(r: AuditRecord, format: ExportFormat = "airlock"): ExportedRecord {
  const now = new Date();
  const time = now.toISOString();
  const body =
    format === "ocsf"
      ? ocsfHead({ seq: r.seq, hash: r.hash, recordTime: r.time }, GATEWAY_VERSION, now)
      : { type: "audit.head", time, seq: r.seq, hash: r.hash, recordTime: r.time };
  return { body, severity: 6, msgid: "audit.head", time };
}

export function selects(filter: SinkFilter, r: AuditRecord): boolean {
  if (filter.types !== undefined && !filter.types.includes(r.type)) return false;
  if (filter.decisions !== undefined && (r.decision === undefined || !filter.decisions.includes(r.decision))) return false;
  if (filter.connections !== undefined) {
    const c = r.connection;
    if (c === undefined || !filter.connections.some((g) => new Glob(g).test(c))) return false;
  }
  return true;
}

class SinkLoop {
  cursor = 0;
  #lastHead = 0;
  #head: AuditRecord | undefined;
  readonly #path: string;

  constructor(
    readonly s: ExportSink,
    readonly o: ExporterOptions,
  ) {
    this.#path = join(o.dir, `${s.name}.cursor`);
  }

  async load(): Promise<void> {
    const text = await readFile(this.#path, "utf8").catch(() => undefined);
    if (text === undefined) return;
    const v = JSON.parse(text) as { seq?: unknown };
    if (typeof v.seq === "number" && Number.isSafeInteger(v.seq) && v.seq >= 0) this.cursor = v.seq;
  }

  async #save(): Promise<void> {
    const tmp = `${this.#path}.tmp`;
    await writeFile(tmp, JSON.stringify({ seq: this.cursor }), { mode: 0o600 });
    await rename(tmp, this.#path);
  }

  /** One step: deliver the next batch (or the head when it is due). False when there was nothing to do. */
  async step(): Promise<boolean> {
    const records = await this.o.store.readAudit(this.cursor, this.o.batch ?? 500);
    const last = records[records.length - 1];
    if (last === undefined) {
      await this.#maybeHead(false);
      return false;
    }
    const out = records.filter((r) => selects(this.s.filter, r)).map((r) => renderRecord(r, this.s.format));
    if (out.length > 0) await this.s.sink.deliver(out);
    this.cursor = last.seq;
    this.#head = last;
    await this.#save();
    await this.#maybeHead(false);
    return true;
  }

  async #maybeHead(force: boolean): Promise<void> {
    const head = this.#head;
    if (head === undefined) return;
    if (!force && Date.now() - this.#lastHead < (this.o.headEveryMs ?? 60_000)) return;
    await this.s.sink.deliver([headRecord(head, this.s.format)]);
    this.#lastHead = Date.now();
  }

  publishHead(): Promise<void> {
    return this.#maybeHead(true);
  }
}

export class AuditExporter {
  readonly #o: ExporterOptions;
  readonly #loops: SinkLoop[];
  #stopped = false;
  /** Loops sleeping until the next poll; notify() and close() wake them. */
  readonly #sleepers = new Set<() => void>();
  readonly #running: Promise<void>[] = [];

  constructor(o: ExporterOptions) {
    this.#o = o;
    this.#loops = o.sinks.map((s) => new SinkLoop(s, o));
  }

  async start(): Promise<void> {
    if (this.#loops.length === 0) return;
    await mkdir(this.#o.dir, { recursive: true, mode: 0o700 });
    for (const l of this.#loops) {
      await l.load();
      this.#running.push(this.#run(l));
    }
  }

  /** New records were committed: look now rather than at the next poll. */
  notify(): void {
    const woken = [...this.#sleepers];
    this.#sleepers.clear();
    for (const w of woken) w();
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#stopped) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.#sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#sleepers.add(done);
    });
  }

  async #run(l: SinkLoop): Promise<void> {
    const min = this.#o.retryMinMs ?? 500;
    const max = this.#o.retryMaxMs ?? 60_000;
    let delay = min;
    while (!this.#stopped) {
      try {
        const worked = await l.step();
        delay = min;
        if (!worked) await this.#sleep(this.#o.pollMs ?? 500);
      } catch (e) {
        this.#o.logger.warn({ err: e, sink: l.s.name, cursor: l.cursor, retryInMs: delay }, "audit export to a sink failed; retrying");
        await this.#sleep(delay);
        delay = Math.min(max, delay * 2);
      }
    }
  }

  /** Seq each sink has delivered through (for tests and the API). */
  cursors(): Record<string, number> {
    return Object.fromEntries(this.#loops.map((l) => [l.s.name, l.cursor]));
  }

  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.notify();
    await Promise.allSettled(this.#running);
    // What the audit log shipped while closing goes out too (bounded: a receiver that is down
    // keeps its cursor, and the next start resumes there).
    const until = Date.now() + (this.#o.closeTimeoutMs ?? 5_000);
    await Promise.allSettled(
      this.#loops.map(async (l) => {
        while (Date.now() < until && (await l.step())) {
          // next batch
        }
      }),
    );
    // A last head, best effort: the receivers learn how far the chain reached at shutdown.
    await Promise.allSettled(this.#loops.map((l) => l.publishHead()));
    await Promise.allSettled(this.#o.sinks.map((s) => s.sink.close()));
  }
}
