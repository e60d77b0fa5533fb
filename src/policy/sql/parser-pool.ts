/**
 * A pool of parser threads (parser-worker.mjs), each with its own libpg-query WASM instance:
 * the gateway's data path parses statements it has not cached here, off the event loop.
 *
 * Invariants:
 * - parse() never rejects and always settles: with the tree, with PostgreSQL's syntax error, or
 *   refused (fail closed) with a message naming the bound that was hit;
 * - the limits (limits.ts) are checked before any text is handed to a worker;
 * - a worker that reports a fault (its WASM instance may be damaged), exceeds the time budget,
 *   crashes or exits is terminated and replaced; the parse it was running is refused, the
 *   others stay queued for the replacement. A damaged instance is never asked again;
 * - the queue is bounded in length and in waiting time: under a flood, a statement is refused
 *   at once ("parser busy") rather than waiting behind it without bound;
 * - workers are unref'd while idle, so an idle pool does not keep the process alive.
 */
import { Worker } from "node:worker_threads";
import { z } from "zod";
import { checkParseLimits, DEFAULT_PARSE_LIMITS, type ParseLimits } from "./limits.js";

export interface ParserPoolOptions {
  /** Worker threads (default 2). */
  readonly size?: number;
  /** Statements waiting for a worker beyond which a new one is refused (default 64). */
  readonly maxQueue?: number;
  /** Budget per parse in a worker, and for the wait in the queue (ms, default 5000). */
  readonly timeoutMs?: number;
  readonly limits?: ParseLimits;
  /** The worker script (tests); default parser-worker.mjs beside this module. */
  readonly workerUrl?: URL;
  /**
   * Start the threads at the first parse (or `ready()`) instead of now: a gateway whose
   * statements are all cached, or that serves no SQL, does not carry their WASM heaps (issue 13,
   * idle RSS). A statement queued while the threads start waits for them on top of its budget.
   */
  readonly lazy?: boolean;
}

export type ParseOutcome =
  | { readonly ok: true; readonly tree: unknown }
  /** PostgreSQL's parser rejected the text; `cursorPosition` is 0-based, in characters. */
  | { readonly ok: false; readonly syntax: true; readonly message: string; readonly cursorPosition?: number }
  /** Refused without a verdict from the parser: a limit, a timeout, a full queue, a fault. */
  | { readonly ok: false; readonly syntax: false; readonly message: string };

export interface ParserPoolStats {
  readonly workers: number;
  readonly busy: number;
  readonly queued: number;
  /** Workers terminated and replaced (fault, timeout, crash). */
  readonly replaced: number;
  readonly timeouts: number;
  readonly faults: number;
  readonly refusedLimits: number;
  readonly refusedBusy: number;
}

const reply = z.union([
  z.object({ ready: z.literal(true) }),
  z.object({ id: z.number(), ok: z.literal(true), json: z.string() }),
  z.object({ id: z.number(), ok: z.literal(false), message: z.string(), cursorPosition: z.number().optional() }),
  z.object({ id: z.number(), fault: z.string() }),
]);

interface Job {
  readonly id: number;
  readonly sql: string;
  readonly resolve: (o: ParseOutcome) => void;
  timer: NodeJS.Timeout | undefined;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | undefined;
  /** Set once the slot is being replaced: its late messages and exit are ignored. */
  dead: boolean;
}

/** Delay before starting a worker again after one died before it was ready (a broken install
 * must not become a spawn loop). */
const RESPAWN_BACKOFF_MS = 1_000;
/** How long a statement may wait, beyond its budget, for lazily started threads to load. */
const STARTUP_ALLOWANCE_MS = 30_000;

function refused(message: string): ParseOutcome {
  return { ok: false, syntax: false, message };
}

export class ParserPool {
  readonly #size: number;
  readonly #maxQueue: number;
  readonly #timeoutMs: number;
  readonly #limits: ParseLimits;
  readonly #url: URL;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #started = false;
  #closed = false;
  #replaced = 0;
  #timeouts = 0;
  #faults = 0;
  #refusedLimits = 0;
  #refusedBusy = 0;

  constructor(options: ParserPoolOptions = {}) {
    this.#size = Math.max(1, options.size ?? 2);
    this.#maxQueue = Math.max(0, options.maxQueue ?? 64);
    this.#timeoutMs = Math.max(1, options.timeoutMs ?? 5_000);
    this.#limits = options.limits ?? DEFAULT_PARSE_LIMITS;
    this.#url = options.workerUrl ?? new URL("./parser-worker.mjs", import.meta.url);
    if (options.lazy !== true) this.#start();
  }

  /** Spawn the threads (once; replacements are spawned by #replace). */
  #start(): void {
    if (this.#started) return;
    this.#started = true;
    for (let k = 0; k < this.#size; k++) this.#slots.push(this.#spawn());
  }

  get limits(): ParseLimits {
    return this.#limits;
  }

  /**
   * Resolves once every worker has loaded its parser and parsed a statement (startup, tests):
   * the time a worker takes to start does not count against the parse budget here.
   */
  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (!this.#closed) this.#start();
    while (!this.#closed && this.#slots.some((s) => !s.ready)) {
      if (Date.now() > deadline) throw new Error("the SQL parser threads did not start");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const outcome = await this.parse("select 1");
    if (!outcome.ok) throw new Error(`the SQL parser pool is not working: ${outcome.message}`);
  }

  parse(sql: string): Promise<ParseOutcome> {
    if (this.#closed) return Promise.resolve(refused("the SQL parser is shut down"));
    const over = checkParseLimits(sql, this.#limits);
    if (over !== undefined) {
      this.#refusedLimits++;
      return Promise.resolve(refused(over.message));
    }
    if (this.#queue.length >= this.#maxQueue && this.#idleSlot() === undefined) {
      this.#refusedBusy++;
      return Promise.resolve(refused("the SQL parser is busy (too many statements waiting)"));
    }
    this.#start();
    // While no thread has loaded yet (a lazy start, or every one being replaced), the wait
    // includes the load, which is not the statement's fault.
    const wait = this.#slots.some((slot) => slot.ready) ? this.#timeoutMs : this.#timeoutMs + STARTUP_ALLOWANCE_MS;
    return new Promise((resolve) => {
      const job: Job = { id: this.#nextId++, sql, resolve, timer: undefined };
      job.timer = setTimeout(() => {
        // Still queued after the whole budget: the workers are saturated.
        const at = this.#queue.indexOf(job);
        if (at < 0) return;
        this.#queue.splice(at, 1);
        this.#refusedBusy++;
        resolve(refused(`the SQL parser is busy (no parser free within ${wait} ms)`));
      }, wait);
      job.timer.unref();
      this.#queue.push(job);
      this.#dispatch();
    });
  }

  stats(): ParserPoolStats {
    return {
      workers: this.#slots.length,
      busy: this.#slots.filter((s) => s.job !== undefined).length,
      queued: this.#queue.length,
      replaced: this.#replaced,
      timeouts: this.#timeouts,
      faults: this.#faults,
      refusedLimits: this.#refusedLimits,
      refusedBusy: this.#refusedBusy,
    };
  }

  /** Terminates the workers; pending and later parses are refused. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const job of this.#queue.splice(0)) this.#settle(job, refused("the SQL parser is shut down"));
    const slots = this.#slots.splice(0);
    for (const s of slots) {
      s.dead = true;
      if (s.job !== undefined) this.#settle(s.job, refused("the SQL parser is shut down"));
      s.job = undefined;
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  #spawn(): Slot {
    const worker = new Worker(this.#url);
    worker.unref();
    const slot: Slot = { worker, ready: false, job: undefined, dead: false };
    worker.on("message", (m: unknown) => {
      this.#onMessage(slot, m);
    });
    worker.on("error", () => {
      // An uncaught exception in the worker (it exits next): same as a fault.
      this.#replace(slot, "the SQL parser failed on this statement");
    });
    worker.on("messageerror", () => {
      this.#replace(slot, "the SQL parser's answer could not be read");
    });
    worker.on("exit", () => {
      this.#replace(slot, "the SQL parser stopped while parsing this statement");
    });
    return slot;
  }

  #onMessage(slot: Slot, m: unknown): void {
    if (slot.dead) return;
    const r = reply.safeParse(m);
    if (!r.success) {
      this.#replace(slot, "the SQL parser's answer could not be read");
      return;
    }
    const msg = r.data;
    if ("ready" in msg) {
      slot.ready = true;
      this.#dispatch();
      return;
    }
    const job = slot.job;
    if (job === undefined || job.id !== msg.id) {
      this.#replace(slot, "the SQL parser answered out of turn");
      return;
    }
    if ("fault" in msg) {
      this.#faults++;
      this.#replace(slot, "the SQL parser failed on this statement");
      return;
    }
    slot.job = undefined;
    slot.worker.unref();
    if (msg.ok) {
      let tree: unknown;
      try {
        tree = JSON.parse(msg.json);
      } catch {
        this.#settle(job, refused("the SQL parser's answer could not be read"));
        this.#dispatch();
        return;
      }
      this.#settle(job, { ok: true, tree });
    } else
      this.#settle(
        job,
        msg.cursorPosition === undefined
          ? { ok: false, syntax: true, message: msg.message }
          : { ok: false, syntax: true, message: msg.message, cursorPosition: msg.cursorPosition },
      );
    this.#dispatch();
  }

  #idleSlot(): Slot | undefined {
    return this.#slots.find((s) => s.ready && !s.dead && s.job === undefined);
  }

  #dispatch(): void {
    for (;;) {
      if (this.#queue.length === 0) return;
      const slot = this.#idleSlot();
      if (slot === undefined) return;
      const job = this.#queue.shift();
      if (job === undefined) return;
      clearTimeout(job.timer);
      slot.job = job;
      slot.worker.ref();
      job.timer = setTimeout(() => {
        if (slot.job !== job) return;
        this.#timeouts++;
        this.#replace(slot, `statement took too long to parse (limit ${this.#timeoutMs} ms)`);
      }, this.#timeoutMs);
      job.timer.unref();
      slot.worker.postMessage({ id: job.id, sql: job.sql });
    }
  }

  /** Terminates the slot's worker (its WASM heap goes with it), refuses its job, starts another. */
  #replace(slot: Slot, why: string): void {
    if (slot.dead) return;
    slot.dead = true;
    const job = slot.job;
    slot.job = undefined;
    if (job !== undefined) this.#settle(job, refused(why));
    void slot.worker.terminate();
    if (this.#closed) return;
    this.#replaced++;
    const at = this.#slots.indexOf(slot);
    const start = (): void => {
      if (this.#closed) return;
      const next = this.#spawn();
      const k = this.#slots.indexOf(slot);
      if (k >= 0) this.#slots[k] = next;
      else this.#slots.push(next);
      this.#dispatch();
    };
    if (at < 0) return;
    if (slot.ready) start();
    else {
      // Died before it could parse anything: the script or the WASM can't load. Refuse what
      // waits (nothing would serve it soon) and try again later.
      for (const j of this.#queue.splice(0)) this.#settle(j, refused("the SQL parser is unavailable"));
      setTimeout(start, RESPAWN_BACKOFF_MS).unref();
    }
  }

  #settle(job: Job, outcome: ParseOutcome): void {
    clearTimeout(job.timer);
    job.resolve(outcome);
  }
}
