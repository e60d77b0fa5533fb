/**
 * `airlock gateway --workers 2` (issue 18, every core): the compiled CLI as one primary and two
 * worker processes sharing the PostgreSQL and API listeners, on a harness PostgreSQL store, a
 * real target database, node-postgres clients and raw CancelRequest packets.
 *
 * Covered: sessions land on both workers (instance ids <id>-w1, <id>-w2); a statement held on
 * either worker is released by an approval through the shared API; a CancelRequest handed to the
 * worker that does not hold the session still cancels the statement (passed on through the
 * store); an operator kill reaches the holding worker; `kill -9` of a worker: the primary starts
 * it again with the same id, its session is closed as lost with its statement count, and every
 * chain verifies (and fails, naming the chain, on an edited record); SIGTERM drains and stops
 * all; the embedded store with --workers 2 is refused with a clear error.
 */
import { spawn } from "node:child_process";
import { get as httpGet } from "node:http";
import { connect } from "node:net";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { freePort } from "./harness/ports.js";
import {
  adminToken,
  buildCli,
  gwApi,
  mintOn,
  newGwProc,
  pgClient,
  sessionsOf,
  startGwProc,
  stopGwProc,
  tempDataDir,
  until,
  type GwProc,
  type PgClient,
  type SessionJson,
} from "./harness/gateway-procs.js";

let cli: string;
let removeCli: () => void = () => undefined;
let server: PgServer;
let W: GwProc;
const open: PgClient[] = [];
const procs: GwProc[] = [];

const ID = "gw-x";
const WORKERS = [`${ID}-w1`, `${ID}-w2`];

/** A connected client and its session, on the worker asked for (connects until the primary hands one there). */
async function clientOn(worker: string, token: string): Promise<{ client: PgClient; session: SessionJson }> {
  for (let i = 0; i < 8; i++) {
    const known = new Set((await sessionsOf(W)).map((s) => s.id));
    const client = pgClient(W, token);
    await client.c.connect();
    await client.c.query("select 1");
    open.push(client);
    const session = await until("the new session", async () => (await sessionsOf(W)).find((s) => !known.has(s.id) && s.live));
    if (session.gateway === worker) return { client, session };
  }
  throw new Error(`no session landed on ${worker}`);
}

/** An API request on a connection of its own (the primary may hand it to either worker). */
function apiOnNewConnection(g: GwProc, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: "127.0.0.1", port: g.apiPort, path, agent: false, headers: { authorization: `Bearer ${adminToken(g)}` } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    req.on("error", reject);
  });
}

function backendKey(c: unknown): { processId: number; secretKey: number } {
  if (typeof c === "object" && c !== null && "processID" in c && "secretKey" in c && typeof c.processID === "number" && typeof c.secretKey === "number") {
    return { processId: c.processID, secretKey: c.secretKey };
  }
  throw new Error("the client has no backend key");
}

/** A raw CancelRequest on a new connection; resolves when the gateway closes it (as libpq's PQcancel waits). */
function sendCancel(port: number, key: { processId: number; secretKey: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => {
      const b = Buffer.alloc(16);
      b.writeInt32BE(16, 0);
      b.writeInt32BE(80877102, 4);
      b.writeInt32BE(key.processId, 8);
      b.writeInt32BE(key.secretKey, 12);
      s.write(b);
    });
    s.on("error", reject);
    s.on("close", () => resolve());
  });
}

beforeAll(async () => {
  const built = buildCli();
  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["orders", "store"] });
  await server.psql("create table items (id int primary key); insert into items select generate_series(1, 20); alter table items owner to app;", { database: "orders" });
  await server.psql("alter database store owner to app;", { database: "store" });
  ({ cli, remove: removeCli } = await built);
  W = newGwProc("w", tempDataDir("workers"), { api: await freePort(), pg: await freePort() }, {
    store: { url: server.url({ user: "app", password: "app-password-1", database: "store" }) },
    instance: { id: ID, heartbeatInterval: "300ms", staleAfter: "2s", drainTimeout: "2s" },
    log: { level: "info" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      { name: "orders", type: "postgres", host: "127.0.0.1", port: server.port, database: "orders", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
    ],
    policies: [{ name: "deletes-need-approval", match: { operations: ["delete"] }, action: "require_approval", approvers: ["dba"] }],
  });
  procs.push(W);
  await startGwProc(cli, W, ["--workers", "2"]);
  // Ready once the primary says both serve.
  await until("both workers", () => Promise.resolve(W.output.includes("2 workers serving") ? true : undefined), 90_000);
}, 600_000);

afterAll(async () => {
  for (const c of open) await c.c.end().catch(() => undefined);
  for (const g of procs) await stopGwProc(g, "SIGKILL");
  await server.stop();
  for (const g of procs) rmSync(g.dataDir, { recursive: true, force: true });
  removeCli();
});

describe("airlock gateway --workers 2", () => {
  it("sessions land on both workers, each its own instance, and each one's recording reads through either worker", async () => {
    const token = await mintOn(W);
    const sessions: { id: string; marker: string }[] = [];
    for (const w of WORKERS) {
      const { client, session } = await clientOn(w, token);
      expect(session.gateway).toBe(w);
      const marker = `recorded_on_${w.replace(/-/g, "_")}`;
      await client.c.query(`select 1 as ${marker}`);
      sessions.push({ id: session.id, marker });
    }
    // Each API request on a connection of its own: the primary hands connections to the workers
    // in turn, so a recording made on one worker is read through the other too (the store's
    // copy). The copy is written shortly after the statement: wait for it once, then every read
    // must have it.
    const recordingOf = async (id: string): Promise<string> => {
      const r = await apiOnNewConnection(W, `/v1/sessions/${id}`);
      expect(r.status).toBe(200);
      return JSON.stringify((r.body as { recording?: unknown }).recording ?? []);
    };
    for (const { id, marker } of sessions) {
      await until(`the recording of ${id}`, async () => ((await recordingOf(id)).includes(marker) ? true : undefined));
      for (let i = 0; i < 6; i++) expect(await recordingOf(id)).toContain(marker);
    }
  });

  it("a statement held on either worker is released by an approval through the shared API", async () => {
    const token = await mintOn(W);
    for (const w of WORKERS) {
      const { client } = await clientOn(w, token);
      const waiting = client.c.query("delete from items where id = 20").then(
        (r) => ({ ok: true as const, rows: r.rowCount }),
        (e: unknown) => ({ ok: false as const, error: String(e) }),
      );
      const id = await until("the pending approval", async () => ((await gwApi(W, "/v1/approvals?status=pending")).body["requests"] as { id: string }[] | undefined)?.[0]?.id);
      expect((await gwApi(W, `/v1/approvals/${id}/approve`, { body: { reason: "ok" } })).status).toBe(200);
      const result = await Promise.race([waiting, new Promise<{ ok: false; error: string }>((r) => setTimeout(() => r({ ok: false, error: "still held after 5 s" }), 5_000))]);
      expect(result.ok, `held on ${w}: ${JSON.stringify(result)}`).toBe(true);
    }
  });

  it("a cancel handed to the worker that does not hold the session still cancels the statement", async () => {
    const token = await mintOn(W);
    // Two sessions on one worker, cancelled one after the other: the primary hands consecutive
    // connections to alternate workers, so one of the two cancels reaches the other worker.
    const a = await clientOn(WORKERS[0] ?? "", token);
    const b = await clientOn(WORKERS[0] ?? "", token);
    for (const { client } of [a, b]) {
      const sleeping = client.c.query("select pg_sleep(30)").then(
        () => "finished",
        (e: unknown) => String(e),
      );
      await new Promise((r) => setTimeout(r, 200));
      const t0 = Date.now();
      await sendCancel(W.pgPort, backendKey(client.c));
      const outcome = await Promise.race([sleeping, new Promise<string>((r) => setTimeout(() => r("not cancelled after 5 s"), 5_000))]);
      expect(outcome).toContain("canceling statement due to user request");
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect((await client.c.query("select 2 as n")).rows).toEqual([{ n: 2 }]);
    }
    expect(W.output).toContain("passed on a cancel request that reached another gateway");
  });

  it("an operator kill through the shared API ends a session on either worker", async () => {
    const token = await mintOn(W);
    for (const w of WORKERS) {
      const { client, session } = await clientOn(w, token);
      const r = await gwApi(W, `/v1/sessions/${session.id}/terminate`, { body: {} });
      expect(r.status).toBe(200);
      await until(`the session on ${w} to end`, () => Promise.resolve(client.errors.length > 0 ? true : undefined), 5_000);
    }
  });

  it("kill -9 of a worker: it is started again with the same id, its session is closed as lost with its count, and every chain verifies", async () => {
    const token = await mintOn(W);
    const victim = WORKERS[1] ?? "";
    const { client, session } = await clientOn(victim, token);
    for (let i = 0; i < 3; i++) await client.c.query("select count(*) from items");
    const pid = Number((await server.psql(`select pid from gateway_instances where id = '${victim}'`, { database: "store" })).trim());
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, "SIGKILL");
    await until("the client to lose its session", () => Promise.resolve(client.errors.length > 0 ? true : undefined), 10_000);
    await until("the worker to serve again", () => Promise.resolve(W.output.includes(`(${victim}) is serving again`) ? true : undefined), 60_000);
    const newPid = Number((await server.psql(`select pid from gateway_instances where id = '${victim}'`, { database: "store" })).trim());
    expect(newPid).not.toBe(pid);
    const lost = await until("the session closed as lost, fully counted", async () => (await sessionsOf(W)).find((s) => s.id === session.id && s.endReason === "lost" && s.statements === 4), 20_000);
    expect(lost.live).toBe(false);
    const verified = await gwApi(W, "/v1/audit/verify");
    expect(verified.body).toMatchObject({ ok: true });
    const chains = (verified.body["chains"] as { chain: string; ok: boolean; records: number }[]).map((c) => c.chain).sort();
    expect(chains).toEqual(WORKERS);
    // Both workers serve again.
    for (const w of WORKERS) expect((await clientOn(w, token)).session.gateway).toBe(w);
  });

  it("audit verify fails, naming the chain, when a stored record of a worker's chain is edited", async () => {
    await server.psql(`update audit_segments set body = replace(body, '"type":"gateway.start"', '"type":"gateway.stop"') where chain = '${WORKERS[0] ?? ""}' and first_seq = 1`, { database: "store" });
    const r = await gwApi(W, "/v1/audit/verify");
    expect(r.body).toMatchObject({ ok: false, reason: "hash_mismatch" });
    expect(String(r.body["detail"])).toContain(`chain ${WORKERS[0] ?? ""}`);
  });

  it("SIGTERM to the primary drains every worker and exits 0", async () => {
    for (const c of open.splice(0)) await c.c.end().catch(() => undefined);
    const pids = (await server.psql(`select pid from gateway_instances where id like '${ID}-w%' and stopped_at is null`, { database: "store" })).trim().split("\n").map(Number);
    expect(pids).toHaveLength(2);
    expect(await stopGwProc(W, "SIGTERM")).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    const stopped = await server.psql(`select count(*) from gateway_instances where id like '${ID}-w%' and stopped_at is not null`, { database: "store" });
    expect(stopped.trim()).toBe("2");
  });

  it("the embedded store with --workers 2 is refused with a clear error", async () => {
    const g = newGwProc("embedded", tempDataDir("embedded"), { api: await freePort(), pg: await freePort() }, { serviceAccounts: [{ name: "agent", groups: ["agents"] }] });
    const p = spawn(process.execPath, [cli, "gateway", "--workers", "2", "--config", g.configPath], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => p.once("exit", r));
    expect(code).toBe(1);
    expect(out).toContain("--workers 2 needs the PostgreSQL store (store.url)");
    rmSync(g.dataDir, { recursive: true, force: true });
  });
});
