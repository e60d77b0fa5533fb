/**
 * `airlock gateway --workers N` (issue 18, every core): a primary process forks N worker
 * processes (node:cluster) that share the listeners; the primary accepts and hands connections
 * round-robin to the workers, and serves nothing itself.
 *
 * Each worker is a gateway instance of its own on the shared PostgreSQL store: instance id
 * `<base>-w<i>` (the base is the gateway's own id, runtime/instance.ts), so its own audit chain,
 * its own local audit log (`<dataDir>/audit/<id>/`), its sessions marked with its id. What must
 * be shared between workers goes through the store exactly as between gateways (cluster.ts):
 * approvals decided on one release the statement held on another, revocations and kills reach
 * the holder, and a PostgreSQL CancelRequest handed to another worker than the one holding the
 * session is passed on by key digest. The API listener is shared too: any worker answers any
 * request, reading the store. All workers accept the one admin token the primary writes.
 *
 * The embedded store (SQLite or PGlite under the dataDir) belongs to one process: more than one
 * worker needs the PostgreSQL store (`store.url`), and is refused otherwise. The default is the
 * number of cores with a PostgreSQL store, one without.
 *
 * Workers start one after the other (the first start creates keys, migrates the store, writes
 * the instance id). A worker that dies is started again with the same index, so the same id:
 * it continues its own chain and closes its own lost sessions. SIGTERM to the primary drains
 * every worker (instance.drainTimeout); SIGINT stops them. Workers ignore a terminal's SIGINT
 * (the primary tells them), and take a SIGTERM sent to them alone as a drain of their own.
 */
import cluster, { type Worker } from "node:cluster";
import { mkdir } from "node:fs/promises";
import type { Writable } from "node:stream";
import { GatewayError } from "../core/errors.js";
import { newAdminToken, writeAdminToken } from "../identity/admin.js";
import { INSTANCE_ID_RE } from "../store/instances.js";
import type { Config } from "./config.js";
import { resolveInstanceId } from "./instance.js";

export interface WorkerIdentity {
  /** 1-based. */
  readonly index: number;
  readonly workers: number;
  readonly instanceId: string;
  readonly adminToken: string;
}

type Stop = "SIGINT" | "SIGTERM";

type ToWorker = { readonly t: "init"; readonly identity: WorkerIdentity } | { readonly t: "stop"; readonly signal: Stop };
type ToPrimary = { readonly t: "hello" } | { readonly t: "ready" };

/** How many workers: asked for, else the cores with a PostgreSQL store, else one. */
export function workerCount(config: Config, requested: number | undefined, cores: number): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1 || requested > 256) throw new GatewayError("GW_CONFIG", "--workers must be a whole number from 1 to 256");
    if (requested > 1 && config.store.url === undefined) {
      throw new GatewayError(
        "GW_CONFIG",
        `--workers ${requested} needs the PostgreSQL store (store.url): the embedded store belongs to one process. Use --workers 1, or set store.url`,
      );
    }
    return requested;
  }
  return config.store.url === undefined ? 1 : Math.max(1, cores);
}

export function workerInstanceId(base: string, index: number): string {
  const id = `${base}-w${index}`;
  if (!INSTANCE_ID_RE.test(id)) throw new GatewayError("GW_CONFIG", `instance id ${base} is too long to name its workers (${id}); use a shorter instance.id`);
  return id;
}

function isToWorker(m: unknown): m is ToWorker {
  return typeof m === "object" && m !== null && "t" in m && (m.t === "init" || m.t === "stop");
}

function isToPrimary(m: unknown): m is ToPrimary {
  return typeof m === "object" && m !== null && "t" in m && (m.t === "hello" || m.t === "ready");
}

export const isWorkerProcess = (): boolean => cluster.isWorker;

/** In a worker: ask the primary who this worker is (a message sent before anyone listens is lost). */
export function workerIdentity(): Promise<WorkerIdentity> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if (!isToWorker(m) || m.t !== "init") return;
      process.off("message", on);
      resolve(m.identity);
    };
    process.on("message", on);
    const hello: ToPrimary = { t: "hello" };
    process.send?.(hello);
  });
}

/** In a worker: tell the primary this worker serves. */
export function workerReady(): void {
  const m: ToPrimary = { t: "ready" };
  process.send?.(m);
}

/** In a worker, once closed: let go of the primary's channel (it would keep the process alive). */
export function workerDone(): void {
  if (process.connected) process.disconnect();
}

/**
 * In a worker: resolves with how to stop, when the primary says so (or on a SIGTERM sent to this
 * worker alone). A terminal's SIGINT reaches every process of the group: the primary relays it.
 */
export function workerStop(): Promise<Stop> {
  return new Promise((resolve) => {
    const ignore = (): void => undefined;
    const done = (signal: Stop): void => {
      process.off("message", onMessage);
      process.off("SIGTERM", onTerm);
      resolve(signal);
    };
    const onMessage = (m: unknown): void => {
      if (isToWorker(m) && m.t === "stop") done(m.signal);
    };
    const onTerm = (): void => done("SIGTERM");
    process.on("SIGINT", ignore);
    process.on("SIGTERM", onTerm);
    process.on("message", onMessage);
    // The primary gone (killed): stop too, rather than serve without anyone to restart us.
    process.once("disconnect", () => done("SIGTERM"));
  });
}

export interface PrimaryOptions {
  readonly config: Config;
  readonly workers: number;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: NodeJS.ProcessEnv;
  /** Resolves when the gateway should stop. */
  readonly until: Promise<Stop>;
}

/** Restart backoff for a worker that keeps dying: doubles from 500 ms up to 30 s, reset after a minute up. */
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;

interface Slot {
  readonly identity: WorkerIdentity;
  worker: Worker | undefined;
  startedAt: number;
  backoffMs: number;
}

/** The primary: forks, watches and stops the workers. Returns the exit code. */
export async function runPrimary(o: PrimaryOptions): Promise<number> {
  const { config } = o;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const base = await resolveInstanceId({ ...(config.instance.id === undefined ? {} : { configured: config.instance.id }), env: o.env, dataDir: config.dataDir });
  const adminToken = newAdminToken();
  await writeAdminToken(config.dataDir, adminToken);
  const slots: Slot[] = [];
  for (let i = 1; i <= o.workers; i++) {
    slots.push({ identity: { index: i, workers: o.workers, instanceId: workerInstanceId(base, i), adminToken }, worker: undefined, startedAt: 0, backoffMs: RESTART_MIN_MS });
  }
  let stopping: Stop | undefined;
  const exits = new Map<Worker, Promise<number>>();

  /** `again`: a restart (one that fails to start is retried with backoff; at first start it stops the gateway). */
  const fork = (slot: Slot, again = false): { ready: Promise<void>; exited: Promise<number> } => {
    const w = cluster.fork();
    slot.worker = w;
    slot.startedAt = Date.now();
    let becameReady = false;
    const ready = new Promise<void>((resolve, reject) => {
      w.on("message", (m: unknown) => {
        if (!isToPrimary(m)) return;
        switch (m.t) {
          case "hello": {
            const init: ToWorker = { t: "init", identity: slot.identity };
            w.send(init);
            return;
          }
          case "ready":
            becameReady = true;
            resolve();
            return;
        }
      });
      w.once("exit", (code: number | null, signal: string | null) => {
        if (!becameReady) reject(new GatewayError("GW_CONFIG", `worker ${slot.identity.index} exited while starting (${signal ?? String(code)})`));
      });
    });
    ready.catch(() => undefined);
    const exited = new Promise<number>((resolve) => {
      w.once("exit", (code: number | null, signal: string | null) => {
        // Killed by a signal: node reports code null (or 0 with the signal set).
        resolve(signal !== null ? 128 : (code ?? 1));
        exits.delete(w);
        if (slot.worker === w) slot.worker = undefined;
        if (stopping !== undefined || (!becameReady && !again)) return;
        // A worker that died on its own: start it again, same index, same instance id.
        const upFor = Date.now() - slot.startedAt;
        if (upFor > 60_000) slot.backoffMs = RESTART_MIN_MS;
        const delay = slot.backoffMs;
        slot.backoffMs = Math.min(slot.backoffMs * 2, RESTART_MAX_MS);
        o.stderr.write(`airlock: worker ${slot.identity.index} (${slot.identity.instanceId}, pid ${String(w.process.pid)}) exited (${signal ?? String(code)}); starting it again in ${delay} ms\n`);
        setTimeout(() => {
          if (stopping !== undefined) return;
          fork(slot, true).ready.then(
            () => o.stdout.write(`worker ${slot.identity.index} (${slot.identity.instanceId}) is serving again (pid ${String(slot.worker?.process.pid)})\n`),
            () => undefined,
          );
        }, delay).unref();
      });
    });
    exits.set(w, exited);
    return { ready, exited };
  };

  const stopAll = async (signal: Stop): Promise<number> => {
    stopping = signal;
    const waits: Promise<number>[] = [];
    for (const slot of slots) {
      const w = slot.worker;
      if (w === undefined) continue;
      const exited = exits.get(w) ?? Promise.resolve(0);
      waits.push(exited);
      const m: ToWorker = { t: "stop", signal };
      try {
        w.send(m);
      } catch {
        w.process.kill("SIGTERM");
      }
      // A worker that does not stop in time is killed (its sessions are closed as lost at its next start).
      const hard = setTimeout(() => w.process.kill("SIGKILL"), config.instance.drainTimeout + 20_000);
      hard.unref();
      void exited.finally(() => clearTimeout(hard));
    }
    const codes = await Promise.all(waits);
    return codes.every((c) => c === 0) ? 0 : 1;
  };

  // Started one after the other; a worker that cannot start stops the whole gateway.
  const stopEarly = o.until.then((s) => {
    stopping ??= s;
    return s;
  });
  for (const slot of slots) {
    const { ready } = fork(slot);
    const first = await Promise.race([ready.then(() => "ready" as const), stopEarly]).catch((e: unknown) => e);
    if (first === "ready") continue;
    if (first instanceof Error) o.stderr.write(`airlock: ${first.message}\n`);
    await stopAll(first === "SIGTERM" ? "SIGTERM" : "SIGINT");
    return first instanceof Error ? 1 : 0;
  }
  o.stdout.write(`Airlock gateway: ${o.workers} workers serving (${slots.map((s) => `${s.identity.instanceId} pid ${String(s.worker?.process.pid)}`).join(", ")}); primary pid ${process.pid}\n`);
  const signal = await stopEarly;
  return stopAll(signal);
}
