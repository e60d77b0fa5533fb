/**
 * Many gateways, one PostgreSQL store (issue 18): three `airlock gateway` processes (the compiled
 * CLI, each with its own config file and dataDir, sharing keys/) on one harness PostgreSQL store
 * database, a real target database, node-postgres clients.
 *
 * Covered: both start (a second gateway on the store used to be refused); a statement held on A
 * is released by an approval made through B's API (latency printed, not asserted); a token
 * revoked through B ends A's session; an operator kill through B ends A's session; B lists A's
 * sessions; `kill -9` of A mid-session: B closes A's sessions as lost with their statement
 * counts; A restarts on the same instance id; `audit verify` passes over both chains, and fails
 * naming A's chain when one of its stored records is edited. With C: an approval through C
 * releases A's held statement, C lists A's and B's sessions, and a CancelRequest sent to B for
 * A's session cancels A's statement (passed on through the store).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { connect } from "node:net";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { freePort } from "./harness/ports.js";

const repo = join(import.meta.dirname, "..");
let buildDir: string;
let cli: string;
let server: PgServer;
let storeUrl: string;

interface Gw {
  readonly name: string;
  readonly dataDir: string;
  readonly apiPort: number;
  readonly pgPort: number;
  proc: ChildProcess | undefined;
  output: string;
}

const gws: Gw[] = [];

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function adminToken(g: Gw): string {
  return readFileSync(join(g.dataDir, "admin.token"), "utf8").trim();
}

async function api(g: Gw, path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
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

async function newGateway(name: string, keysFrom?: Gw): Promise<Gw> {
  const dataDir = mkdtempSync(join(tmpdir(), `airlock-multi-${name}-`));
  if (keysFrom !== undefined) cpSync(join(keysFrom.dataDir, "keys"), join(dataDir, "keys"), { recursive: true });
  const g: Gw = { name, dataDir, apiPort: await freePort(), pgPort: await freePort(), proc: undefined, output: "" };
  const config = {
    dataDir,
    store: { url: storeUrl },
    instance: { id: `gw-${name}`, heartbeatInterval: "300ms", staleAfter: "2s", drainTimeout: "2s" },
    listen: { api: `127.0.0.1:${g.apiPort}`, postgres: `127.0.0.1:${g.pgPort}` },
    log: { level: "info" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      { name: "orders", type: "postgres", host: "127.0.0.1", port: server.port, database: "orders", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
    ],
    policies: [
      { name: "deletes-need-approval", match: { operations: ["delete"] }, action: "require_approval", approvers: ["dba"] },
      { name: "hide-pii", action: "mask", columns: ["*.email"], strategy: "redact" },
    ],
  };
  writeFileSync(join(dataDir, "airlock.json.yaml"), JSON.stringify(config));
  gws.push(g);
  return g;
}

async function start(g: Gw): Promise<void> {
  g.output = "";
  const proc = spawn(process.execPath, [cli, "gateway", "--workers", "1", "--config", join(g.dataDir, "airlock.json.yaml")], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (d: Buffer) => (g.output += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (g.output += d.toString()));
  g.proc = proc;
  const exited = new Promise<never>((_, reject) => proc.once("exit", (code) => reject(new Error(`gateway ${g.name} exited (${String(code)}): ${g.output.slice(-2000)}`))));
  exited.catch(() => undefined);
  await Promise.race([
    exited,
    until(`gateway ${g.name} ready`, async () => ((await fetch(`http://127.0.0.1:${g.apiPort}/readyz`)).status === 200 ? true : undefined), 60_000),
  ]);
}

function stopProc(g: Gw, signal: NodeJS.Signals): Promise<void> {
  const p = g.proc;
  g.proc = undefined;
  if (p === undefined || p.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once("exit", () => resolve());
    p.kill(signal);
  });
}

async function mint(g: Gw): Promise<string> {
  const r = await api(g, "/v1/tokens", { body: { serviceAccount: "agent", ttl: "1h" } });
  if (r.status !== 201) throw new Error(`mint: ${r.status} ${JSON.stringify(r.body)}`);
  return String(r.body["token"]);
}

function client(g: Gw, token: string): { c: pg.Client; errors: Error[]; notices: string[] } {
  const c = new pg.Client({ host: "127.0.0.1", port: g.pgPort, database: "orders", user: "agent", password: token });
  const errors: Error[] = [];
  const notices: string[] = [];
  c.on("error", (e) => errors.push(e));
  c.on("notice", (n) => notices.push(n.message ?? ""));
  return { c, errors, notices };
}

interface SessionJson {
  id: string;
  gateway?: string;
  live: boolean;
  endReason?: string;
  statements?: number;
  endDetail?: string;
}

async function sessions(g: Gw): Promise<SessionJson[]> {
  const r = await api(g, "/v1/sessions?limit=100");
  return r.body["sessions"] as SessionJson[];
}

async function newestSessionOn(via: Gw, instance: string, known: ReadonlySet<string>): Promise<SessionJson> {
  return until(`a new session of ${instance}`, async () => (await sessions(via)).find((s) => s.gateway === instance && !known.has(s.id)));
}

let A: Gw;
let B: Gw;
let C: Gw;
const CANARY_EMAIL = "canary-7f3a9c@example.com";

/** SSE events of a console live view until `done` says stop (or `ms` pass). */
async function liveEvents(g: Gw, id: string, done: (events: { event: string; data: string }[]) => boolean, ms = 15_000): Promise<{ event: string; data: string }[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const events: { event: string; data: string }[] = [];
  try {
    const res = await fetch(`http://127.0.0.1:${g.apiPort}/v1/console/sessions/${id}/live`, { headers: { authorization: `Bearer ${adminToken(g)}` }, signal: ac.signal });
    if (res.body === null) throw new Error(`live view: ${res.status}`);
    let buf = "";
    for await (const chunk of res.body) {
      buf += Buffer.from(chunk as Uint8Array).toString();
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined) events.push({ event, data });
      }
      if (done(events)) break;
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return events;
}

/** A raw CancelRequest on a new connection to `port`; resolves when the gateway closes it (as libpq's PQcancel waits). */
function sendCancel(port: number, c: pg.Client): Promise<void> {
  const key: unknown = c;
  if (typeof key !== "object" || key === null || !("processID" in key) || !("secretKey" in key) || typeof key.processID !== "number" || typeof key.secretKey !== "number") {
    throw new Error("the client has no backend key");
  }
  const b = Buffer.alloc(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE(80877102, 4);
  b.writeInt32BE(key.processID, 8);
  b.writeInt32BE(key.secretKey, 12);
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => s.write(b));
    s.on("error", reject);
    s.on("close", () => resolve());
  });
}

beforeAll(async () => {
  // The CLI, compiled into a private directory (a test must not depend on dist/), with the
  // worker scripts it loads by URL beside it, as the build's copy-assets step does.
  mkdirSync(join(repo, ".airlock"), { recursive: true });
  buildDir = mkdtempSync(join(repo, ".airlock", "multi-gw-"));
  const tsconfig = join(buildDir, "tsconfig.json");
  writeFileSync(tsconfig, JSON.stringify({ extends: join(repo, "tsconfig.build.json"), compilerOptions: { outDir: join(buildDir, "out"), rootDir: repo, incremental: false }, include: [], files: [join(repo, "src/cli/main.ts"), join(repo, "src/runtime/run.ts")] }));
  const built = promisify(execFile)(join(repo, "node_modules/.bin/tsc"), ["-p", tsconfig], { cwd: repo });
  for (const e of readdirSync(join(repo, "src"), { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith(".mjs") || e.name.includes(".test.")) continue;
    const to = join(buildDir, "out", "src", relative(join(repo, "src"), join(e.parentPath, e.name)));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(join(e.parentPath, e.name), to);
  }
  cli = join(buildDir, "out", "src", "cli", "main.js");

  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["orders", "store"] });
  await server.psql("create table items (id int primary key); insert into items select generate_series(1, 20); alter table items owner to app;", { database: "orders" });
  await server.psql(`create table customers (id int primary key, email text); insert into customers values (1, '${CANARY_EMAIL}'); alter table customers owner to app;`, { database: "orders" });
  await server.psql("alter database store owner to app;", { database: "store" });
  storeUrl = server.url({ user: "app", password: "app-password-1", database: "store" });
  await built;

  A = await newGateway("a");
  await start(A);
  B = await newGateway("b", A); // gateways on one store share keys/ (token signing, audit, masking)
  await start(B);
  C = await newGateway("c", A);
  await start(C);
}, 600_000);

afterAll(async () => {
  for (const g of gws) await stopProc(g, "SIGKILL");
  await server.stop();
  for (const g of gws) rmSync(g.dataDir, { recursive: true, force: true });
  rmSync(buildDir, { recursive: true, force: true });
});

describe("two gateways on one PostgreSQL store", () => {
  it("both are ready, each with its own instance", async () => {
    for (const g of [A, B]) {
      const r = await fetch(`http://127.0.0.1:${g.apiPort}/readyz`);
      expect(r.status).toBe(200);
      expect(((await r.json()) as { instance: string }).instance).toBe(`gw-${g.name}`);
    }
  });

  it("a statement held on A is released by an approval through B's API", async () => {
    const token = await mint(A);
    const held = client(A, token);
    await held.c.connect();
    const waiting = held.c.query("delete from items where id = 20").then(
      (r) => ({ ok: true as const, rows: r.rowCount, at: performance.now() }),
      (e: unknown) => ({ ok: false as const, error: String(e), at: performance.now() }),
    );
    const id = await until("the pending approval, seen through B", async () => {
      const r = await api(B, "/v1/approvals?status=pending");
      const list = r.body["requests"] as { id: string }[] | undefined;
      return list?.[0]?.id;
    });
    const t0 = performance.now();
    const decided = await api(B, `/v1/approvals/${id}/approve`, { body: { reason: "ok" } });
    const t1 = performance.now();
    expect(decided.status).toBe(200);
    const result = await Promise.race([waiting, new Promise<{ ok: false; error: string; at: number }>((r) => setTimeout(() => r({ ok: false, error: "still held after 5 s", at: 0 }), 5_000))]);
    expect(result).toMatchObject({ ok: true, rows: 1 });
    console.log(`approval on B -> statement released on A: ${(result.at - t1).toFixed(1)} ms after B answered (${(result.at - t0).toFixed(1)} ms after the request was sent)`);
    await held.c.end();
  });

  it("a recording made on A is readable on B: live view while it runs, then the API and `airlock sessions show`; masked rows, no secret", async () => {
    const token = await mint(A);
    const known = new Set((await sessions(B)).map((s) => s.id));
    const s = client(A, token);
    await s.c.connect();
    const r = await s.c.query("select id, email from customers order by id");
    expect(r.rows).toEqual([{ id: 1, email: "[EMAIL]" }]);
    const session = await newestSessionOn(B, "gw-a", known);
    // While the session runs on A, B's console live view shows what A copied to the store so far.
    const live = await liveEvents(B, session.id, (ev) => ev.some((e) => e.event === "entry" && e.data.includes("from customers")));
    expect(live.some((e) => e.event === "entry" && e.data.includes("select id, email from customers"))).toBe(true);
    await s.c.end();
    await until("A's session ended", async () => ((await sessions(B)).find((x) => x.id === session.id)?.endReason === undefined ? undefined : true));

    const shown = await until("the whole recording through B", async () => {
      const res = await api(B, `/v1/sessions/${session.id}`);
      const rec = res.body["recording"] as { kind: string }[] | undefined;
      return rec?.some((e) => e.kind === "end") === true ? rec : undefined;
    });
    const text = JSON.stringify(shown);
    expect(text).toContain("select id, email from customers order by id");
    expect(text).toContain("[EMAIL]");
    const cliOut = await promisify(execFile)(process.execPath, [cli, "sessions", "show", session.id, "--config", join(B.dataDir, "airlock.json.yaml")]);
    expect(cliOut.stdout).toContain("select id, email from customers order by id");
    expect(cliOut.stdout).toContain("[EMAIL]");
    // B's disk has no file of it: it came from the store.
    const bFiles = existsSync(join(B.dataDir, "recordings")) ? readdirSync(join(B.dataDir, "recordings"), { recursive: true }) : [];
    expect(bFiles.some((f) => String(f).includes(session.id))).toBe(false);

    // Canary: the stored recordings never hold the unmasked value, the agent's token or the target's password.
    const store = new pg.Client({ connectionString: storeUrl });
    await store.connect();
    const all = await store.query<{ data: string | null }>("select string_agg(data, '' order by session_id, kind, seq) as data from recording_chunks");
    await store.end();
    const stored = all.rows[0]?.data ?? "";
    expect(stored).toContain("select id, email from customers");
    for (const secret of [CANARY_EMAIL, token, "app-password-1"]) expect(stored).not.toContain(secret);
  });

  it("three gateways: an approval on C releases a statement held on A; C lists the sessions of A and B; a cancel sent to B cancels A's statement", async () => {
    const token = await mint(A);
    const held = client(A, token);
    await held.c.connect();
    const waiting = held.c.query("delete from items where id = 19").then(
      (r) => ({ ok: true as const, rows: r.rowCount }),
      (e: unknown) => ({ ok: false as const, error: String(e) }),
    );
    const id = await until("the pending approval, seen through C", async () => ((await api(C, "/v1/approvals?status=pending")).body["requests"] as { id: string }[] | undefined)?.[0]?.id);
    expect((await api(C, `/v1/approvals/${id}/approve`, { body: { reason: "ok" } })).status).toBe(200);
    const result = await Promise.race([waiting, new Promise<{ ok: false; error: string }>((r) => setTimeout(() => r({ ok: false, error: "still held after 5 s" }), 5_000))]);
    expect(result).toMatchObject({ ok: true, rows: 1 });

    const onB = client(B, token);
    await onB.c.connect();
    await onB.c.query("select 1");
    const live = (await sessions(C)).filter((x) => x.live).map((x) => x.gateway);
    expect(live).toContain("gw-a");
    expect(live).toContain("gw-b");
    await onB.c.end();

    const sleeping = held.c.query("select pg_sleep(30)").then(
      () => "finished",
      (e: unknown) => String(e),
    );
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await sendCancel(B.pgPort, held.c);
    const outcome = await Promise.race([sleeping, new Promise<string>((r) => setTimeout(() => r("not cancelled after 5 s"), 5_000))]);
    expect(outcome).toContain("canceling statement due to user request");
    console.log(`cancel sent to B -> A's statement cancelled after ${Date.now() - t0} ms`);
    expect((await held.c.query("select 2 as n")).rows).toEqual([{ n: 2 }]);
    await held.c.end();
  });

  it("B lists A's live sessions; a token revoked through B ends A's session; a kill through B ends another", async () => {
    const known = new Set((await sessions(B)).map((s) => s.id));
    const token = await mint(A);
    const victim = client(A, token);
    await victim.c.connect();
    await victim.c.query("select count(*) from items");
    const s = await newestSessionOn(B, "gw-a", known);
    expect(s.live).toBe(true);

    const killToken = await mint(B);
    const killed = client(A, killToken);
    await killed.c.connect();
    await killed.c.query("select 1");
    known.add(s.id);
    const k = await newestSessionOn(B, "gw-a", known);
    const term = await api(B, `/v1/sessions/${k.id}/terminate`, { body: {} });
    expect(term.status).toBe(200);
    expect(term.body["forwardedTo"]).toBe("gw-a");
    await until("the killed session to end", () => Promise.resolve(killed.errors.length > 0 ? true : undefined), 5_000);
    await expect(killed.c.query("select 1")).rejects.toThrow();

    const t0 = Date.now();
    const tokenId = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { jti: string };
    const rev = await api(B, `/v1/tokens/${tokenId.jti}/revoke`, { body: {} });
    expect(rev.status).toBe(200);
    await until("the revoked token's session on A to end", () => Promise.resolve(victim.errors.length > 0 ? true : undefined), 5_000);
    console.log(`token revoked on B -> session on A ended after ${Date.now() - t0} ms`);
    await expect(victim.c.query("select 1")).rejects.toThrow();
    const ended = await until("the session's end in the store", async () => (await sessions(B)).find((x) => x.id === s.id && x.endReason !== undefined));
    expect(ended.endReason).toBe("revoked");
  });

  it("kill -9 of A mid-session: B closes its sessions as lost with their statement counts; A restarts and every chain verifies", async () => {
    const known = new Set((await sessions(B)).map((s) => s.id));
    const token = await mint(A);
    const live = client(A, token);
    await live.c.connect();
    for (let i = 0; i < 3; i++) await live.c.query("select count(*) from items");
    const s = await newestSessionOn(B, "gw-a", known);
    await stopProc(A, "SIGKILL");

    const lost = await until("B to close A's session as lost", async () => (await sessions(B)).find((x) => x.id === s.id && x.endReason === "lost"), 15_000);
    expect(lost.live).toBe(false);
    // Counted from A's chain as stored: records A had not shipped when it died are missing here…
    expect(lost.statements).toBeLessThanOrEqual(3);
    expect(lost.endDetail).toContain("gw-a");

    await start(A); // same dataDir, same instance id: continues its own chain
    // …and are shipped when A restarts, which counts again: nothing of the session is lost.
    const recounted = (await sessions(B)).find((x) => x.id === s.id);
    expect(recounted).toMatchObject({ endReason: "lost", statements: 3 });
    const verified = await api(B, "/v1/audit/verify");
    expect(verified.body).toMatchObject({ ok: true });
    const chains = verified.body["chains"] as { chain: string; ok: boolean; records: number }[];
    expect(chains.map((c) => c.chain).sort()).toEqual(["gw-a", "gw-b", "gw-c"]);
    for (const c of chains) expect(c.records).toBeGreaterThan(0);
    expect((await api(A, "/v1/audit/verify")).body).toMatchObject({ ok: true });
  });

  it("audit verify fails, naming the chain, when a stored record of A's chain is edited", async () => {
    await server.psql("update audit_segments set body = replace(body, '\"type\":\"gateway.start\"', '\"type\":\"gateway.stop\"') where chain = 'gw-a' and first_seq = 1", { database: "store" });
    const r = await api(B, "/v1/audit/verify");
    expect(r.body).toMatchObject({ ok: false, reason: "hash_mismatch" });
    expect(String(r.body["detail"])).toContain("chain gw-a");
  });

  it("SIGTERM drains: B stops being ready, its idle session is ended after the grace period, and it exits", async () => {
    const token = await mint(B);
    const idle = client(B, token);
    await idle.c.connect();
    await idle.c.query("select 1");
    const p = B.proc;
    expect(p).toBeDefined();
    const exited = new Promise<number | null>((r) => p?.once("exit", (code) => r(code)));
    p?.kill("SIGTERM");
    await until("B to refuse readiness or stop", async () => {
      const r = await fetch(`http://127.0.0.1:${B.apiPort}/readyz`).catch(() => undefined);
      return r === undefined || r.status === 503 ? true : undefined;
    });
    // New connections are refused while the idle session still runs.
    const late = client(B, token);
    await expect(late.c.connect()).rejects.toThrow();
    expect(await exited).toBe(0);
    expect(idle.errors.length).toBeGreaterThan(0);
    B.proc = undefined;
  });
});
