/**
 * Gateways as real processes (issue 18): the CLI compiled into a private directory (a test must
 * not depend on dist/), `airlock gateway` spawned with a config file per gateway, and the small
 * API and client helpers the multi-process tests share.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const repo = join(import.meta.dirname, "..", "..");

/** Compile the CLI (and the runtime it loads lazily) with the worker scripts beside it; returns main.js and a cleanup. */
export async function buildCli(): Promise<{ cli: string; remove: () => void }> {
  mkdirSync(join(repo, ".airlock"), { recursive: true });
  const buildDir = mkdtempSync(join(repo, ".airlock", "gw-procs-"));
  const tsconfig = join(buildDir, "tsconfig.json");
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(repo, "tsconfig.build.json"),
      compilerOptions: { outDir: join(buildDir, "out"), rootDir: repo, incremental: false },
      include: [],
      files: [join(repo, "src/cli/main.ts"), join(repo, "src/runtime/run.ts")],
    }),
  );
  await promisify(execFile)(join(repo, "node_modules/.bin/tsc"), ["-p", tsconfig], { cwd: repo });
  for (const e of readdirSync(join(repo, "src"), { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith(".mjs") || e.name.includes(".test.")) continue;
    const to = join(buildDir, "out", "src", relative(join(repo, "src"), join(e.parentPath, e.name)));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(join(e.parentPath, e.name), to);
  }
  return { cli: join(buildDir, "out", "src", "cli", "main.js"), remove: () => rmSync(buildDir, { recursive: true, force: true }) };
}

export async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface GwProc {
  readonly name: string;
  readonly dataDir: string;
  readonly apiPort: number;
  readonly pgPort: number;
  readonly configPath: string;
  proc: ChildProcess | undefined;
  output: string;
}

export function newGwProc(name: string, dataDir: string, ports: { api: number; pg: number }, config: Record<string, unknown>, keysFrom?: GwProc): GwProc {
  if (keysFrom !== undefined) cpSync(join(keysFrom.dataDir, "keys"), join(dataDir, "keys"), { recursive: true });
  const configPath = join(dataDir, "airlock.json.yaml");
  writeFileSync(configPath, JSON.stringify({ dataDir, ...config, listen: { api: `127.0.0.1:${ports.api}`, postgres: `127.0.0.1:${ports.pg}` } }));
  return { name, dataDir, apiPort: ports.api, pgPort: ports.pg, configPath, proc: undefined, output: "" };
}

export function tempDataDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `airlock-procs-${name}-`));
}

/** Spawn `airlock gateway` and wait for /readyz (or its exit, with its output). */
export async function startGwProc(cli: string, g: GwProc, extraArgs: readonly string[] = []): Promise<void> {
  g.output = "";
  const proc = spawn(process.execPath, [cli, "gateway", ...extraArgs, "--config", g.configPath], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (d: Buffer) => (g.output += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (g.output += d.toString()));
  g.proc = proc;
  const exited = new Promise<never>((_, reject) => proc.once("exit", (code) => reject(new Error(`gateway ${g.name} exited (${String(code)}): ${g.output.slice(-2000)}`))));
  exited.catch(() => undefined);
  const ready = until(`gateway ${g.name} ready`, async () => ((await fetch(`http://127.0.0.1:${g.apiPort}/readyz`)).status === 200 ? true : undefined), 90_000).catch((e: unknown) => {
    throw new Error(`${String(e)}: ${g.output.slice(-3000)}`);
  });
  await Promise.race([exited, ready]);
}

export function stopGwProc(g: GwProc, signal: NodeJS.Signals): Promise<number | null> {
  const p = g.proc;
  g.proc = undefined;
  if (p === undefined || p.exitCode !== null) return Promise.resolve(p?.exitCode ?? null);
  return new Promise((resolve) => {
    p.once("exit", (code) => resolve(code));
    p.kill(signal);
  });
}

export function adminToken(g: GwProc): string {
  return readFileSync(join(g.dataDir, "admin.token"), "utf8").trim();
}

export async function gwApi(g: GwProc, path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${g.apiPort}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { authorization: `Bearer ${adminToken(g)}`, ...(init.body === undefined ? {} : { "content-type": "application/json" }) },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}

export async function mintOn(g: GwProc, serviceAccount = "agent"): Promise<string> {
  const r = await gwApi(g, "/v1/tokens", { body: { serviceAccount, ttl: "1h" } });
  if (r.status !== 201) throw new Error(`mint: ${r.status} ${JSON.stringify(r.body)}`);
  return String(r.body["token"]);
}

export interface PgClient {
  readonly c: pg.Client;
  readonly errors: Error[];
}

export function pgClient(g: GwProc, token: string, database = "orders"): PgClient {
  const c = new pg.Client({ host: "127.0.0.1", port: g.pgPort, database, user: "agent", password: token });
  const errors: Error[] = [];
  c.on("error", (e) => errors.push(e));
  return { c, errors };
}

export interface SessionJson {
  id: string;
  gateway?: string;
  live: boolean;
  endReason?: string;
  statements?: number;
  endDetail?: string;
}

export async function sessionsOf(g: GwProc): Promise<SessionJson[]> {
  const r = await gwApi(g, "/v1/sessions?limit=200");
  return r.body["sessions"] as SessionJson[];
}
