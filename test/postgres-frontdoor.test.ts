/**
 * The PostgreSQL front door, against a real PostgreSQL 15 and real clients: what happens before
 * a session runs (pre-auth deadline and caps, early Terminate, start-up settings, client
 * encoding) and cancel requests.
 */
import { connect, type Socket } from "node:net";
import pg from "pg";
import { serialize } from "pg-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runClient, startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let server: PgServer;
let t: TestGateway;
/** A second gateway with a short auth deadline and a small total cap. */
let tight: TestGateway;
let token: string;

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/** A raw TCP connection to the gateway from `localAddress`, collecting what comes back. */
function rawConnect(port: number, localAddress = "127.0.0.1"): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", localAddress });
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      socket.on("error", () => undefined);
      resolve({ socket, received: () => Buffer.concat(chunks), closed });
    });
  });
}

function client(database: string, extra: Partial<pg.ClientConfig> = {}): pg.Client {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database, user: "agent", password: token, ...extra });
  c.on("error", () => undefined);
  return c;
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table items (id int primary key); insert into items select generate_series(1, 10); grant all on items to app;
     create schema app; grant usage on schema app to app; create table app.secrets (x int); grant all on app.secrets to app;`,
    { database: "shop" },
  );
  const base = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password-1", sslmode: "disable" as const, groups: ["agents"] };
  t = await startTestGateway({
    serviceAccounts: [{ name: "ci-bot", groups: ["agents"] }],
    connections: [
      { ...base, name: "shop" },
      { ...base, name: "shop_limited" },
      { ...base, name: "shop_pooled", pool: { maxIdle: 2 } },
    ],
    policies: [
      { name: "limited-timeout", connections: ["shop_limited"], action: "allow", statementTimeout: 5000, readOnly: true },
      { name: "no-secrets", connections: ["shop"], match: { relations: ["app.secrets"] }, action: "deny" },
    ],
  });
  token = await t.mint("ci-bot");
  tight = await startTestGateway({
    serviceAccounts: [{ name: "ci-bot", groups: ["agents"] }],
    limits: { authTimeout: 1500, maxUnauthenticated: 50 },
    connections: [{ ...base, name: "shop" }],
  });
});

afterAll(async () => {
  await tight.stop();
  await t.stop();
  await server.stop();
});

describe("before authentication", () => {
  it("closes quietly when the client sends Terminate right after its start-up message", async () => {
    const c = await rawConnect(t.pgPort);
    c.socket.write(serialize.startup({ user: "agent", database: "shop" }));
    // The password request arrives; the client gives up instead (pg's end() during connect).
    await new Promise((r) => setTimeout(r, 100));
    c.socket.write(serialize.end());
    await c.closed;
    const got = c.received();
    // AuthenticationCleartextPassword (R, length 8, code 3) and nothing else: no ErrorResponse.
    expect(got.subarray(0, 1).toString()).toBe("R");
    expect(got.includes(Buffer.from("exceeds"))).toBe(false);
    expect(got.indexOf(0x45 /* E */, 9)).toBe(-1);
  });

  it("closes quietly on Terminate sent in the same packet as the start-up message", async () => {
    const c = await rawConnect(t.pgPort);
    c.socket.write(Buffer.concat([serialize.startup({ user: "agent", database: "shop" }), serialize.end()]));
    await c.closed;
    expect(c.received().indexOf(0x45 /* E */, 9)).toBe(-1);
  });
});

describe("pre-authentication deadline and caps", () => {
  it("keeps one deadline from accept: repeated SSLRequest/GSSENCRequest answers do not restart it", async () => {
    const c = await rawConnect(tight.pgPort);
    const started = Date.now();
    const GSSENC_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
    // Every 300 ms, a request the gateway answers with 'N' (authTimeout is 1.5 s in this gateway).
    const tick = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write(Date.now() % 2 === 0 ? SSL_REQUEST : GSSENC_REQUEST);
    }, 300);
    await Promise.race([c.closed, new Promise((r) => setTimeout(r, 6000))]);
    clearInterval(tick);
    c.socket.destroy();
    const lasted = Date.now() - started;
    // 1.5 s after accept, give or take a loaded machine (it was never cut, before).
    expect(lasted).toBeGreaterThanOrEqual(1400);
    expect(lasted).toBeLessThan(4000);
    // It was answered ('N') several times before the deadline cut it.
    expect(c.received().toString("latin1")).toMatch(/^N{2,}/);
  });

  it("holds at most 100 unauthenticated connections per address; a client from another address gets in during a flood of 2,000", async () => {
    const flood: { socket: Socket; received: () => Buffer; closed: Promise<void> }[] = [];
    try {
      for (let i = 0; i < 2000; i++) flood.push(await rawConnect(t.pgPort, "127.0.0.2"));
      // The excess is refused at once, with PostgreSQL's own code for it (53300).
      await Promise.race([Promise.all(flood.slice(100).map((f) => f.closed)), new Promise((r) => setTimeout(r, 10_000))]);
      const refused = flood.filter((f) => f.socket.destroyed || f.received().length > 0);
      expect(refused.length).toBe(1900);
      const first = refused[0]?.received().toString("latin1") ?? "";
      expect(first).toContain("53300");
      expect(first).toContain("airlock:");
      // The 100 held ones are still open, and a real client from 127.0.0.1 logs in and works.
      expect(flood.slice(0, 100).every((f) => !f.socket.destroyed)).toBe(true);
      const r = await t.psql("shop", token, ["-At", "-c", "select count(*) from items"]);
      expect(r.stderr).toBe("");
      expect(r.stdout.trim()).toBe("10");
    } finally {
      for (const f of flood) f.socket.destroy();
    }
  }, 60_000);

  it("caps unauthenticated connections in total: the excess is refused with 53300, and room comes back as they go", async () => {
    const flood: { socket: Socket; received: () => Buffer; closed: Promise<void> }[] = [];
    try {
      // 80 connections from four addresses: under the per-address cap, over the total of 50.
      for (let i = 0; i < 80; i++) flood.push(await rawConnect(tight.pgPort, `127.0.0.${3 + (i % 4)}`));
      await Promise.race([Promise.all(flood.slice(50).map((f) => f.closed)), new Promise((r) => setTimeout(r, 5000))]);
      expect(flood.slice(50).every((f) => f.received().toString("latin1").includes("53300"))).toBe(true);
      const tightToken = await tight.mint("ci-bot");
      const refused = await tight.psql("shop", tightToken, ["-At", "-c", "select 1"]);
      expect(refused.stderr).toContain("too many connections waiting to authenticate");
      for (const f of flood) f.socket.destroy();
      await new Promise((r) => setTimeout(r, 200));
      const r = await tight.psql("shop", tightToken, ["-At", "-c", "select 1"]);
      expect(r.stdout.trim()).toBe("1");
    } finally {
      for (const f of flood) f.socket.destroy();
    }
  }, 60_000);
});

describe("the gateway log", () => {
  it("shows each session's start at info, with principal, connection and address (never the token)", async () => {
    const r = await t.psql("shop", token, ["-At", "-c", "select 1"]);
    expect(r.stdout.trim()).toBe("1");
    const lines = t
      .logs()
      .split("\n")
      .filter((l) => l.includes('"session started"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.at(-1);
    expect(line).toMatchObject({ level: 30, protocol: "postgres", principal: "sa:ci-bot", connection: "shop" });
    expect(typeof line?.["sessionId"]).toBe("string");
    expect(String(line?.["clientAddress"])).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(t.logs()).not.toContain(token);
    // Its end is there too, under the same session id.
    expect(t.logs()).toMatch(new RegExp(`"sessionId":"${String(line?.["sessionId"])}"[^\\n]*"session ended"`));
  });
});

describe("start-up settings are forwarded under the rules of SET, or refused by name", () => {
  it("psql: options='-c statement_timeout=1234' and PGOPTIONS reach the target", async () => {
    const viaEnv = await t.psql("shop", token, ["-At", "-c", "show statement_timeout", "-c", "show idle_in_transaction_session_timeout"], {
      env: { PGOPTIONS: "-c statement_timeout=1234 --idle-in-transaction-session-timeout=4321" },
    });
    expect(viaEnv.stderr).toBe("");
    expect(viaEnv.stdout.trim().split("\n")).toEqual(["1234ms", "4321ms"]);
    const viaConninfo = await t.psql("shop", token, ["-At", "-c", "show work_mem"], { env: { PGOPTIONS: "-c work_mem=5MB" } });
    expect(viaConninfo.stdout.trim()).toBe("5MB");
  });

  it("node-postgres: statement_timeout and idle_in_transaction_session_timeout as start-up parameters", async () => {
    const c = client("shop", { statement_timeout: 2345, idle_in_transaction_session_timeout: 6789 });
    await c.connect();
    try {
      const st = await c.query<{ statement_timeout: string }>("show statement_timeout");
      const it2 = await c.query<{ idle_in_transaction_session_timeout: string }>("show idle_in_transaction_session_timeout");
      expect(st.rows[0]?.statement_timeout).toBe("2345ms");
      expect(it2.rows[0]?.idle_in_transaction_session_timeout).toBe("6789ms");
      // And it works: the target cancels a statement that runs longer.
      await expect(c.query("select pg_sleep(5)")).rejects.toMatchObject({ code: "57014" });
    } finally {
      await c.end();
    }
  });

  it("options=--search_path=… is the target's search path and the one the guardrails resolve against", async () => {
    const r = await t.psql("shop", token, ["-At", "-c", "show search_path"], { env: { PGOPTIONS: "--search_path=app,public" } });
    expect(r.stdout.trim()).toBe("app,public");
    const denied = await t.psql("shop", token, ["-At", "-c", "select * from secrets"], { env: { PGOPTIONS: "--search_path=app,public" } });
    expect(denied.stderr).toMatch(/airlock: .*no-secrets/);
  });

  it("a setting a policy injects, or the session's role, is refused at start-up with a FATAL naming it", async () => {
    // statement_timeout is the client's: the gateway times the policy's limit itself.
    const timeout = await t.psql("shop_limited", token, ["-At", "-c", "show statement_timeout"], { env: { PGOPTIONS: "-c statement_timeout=0" } });
    expect(timeout.stderr).toBe("");
    expect(timeout.stdout.trim()).toBe("0");
    const readOnly = client("shop_limited", { options: "-c default_transaction_read_only=off" });
    await expect(readOnly.connect()).rejects.toMatchObject({ code: "42501", message: expect.stringContaining("default_transaction_read_only") as unknown });
    const role = await t.psql("shop", token, ["-At", "-c", "select 1"], { env: { PGOPTIONS: "-c role=postgres" } });
    expect(role.stderr).toMatch(/FATAL: +airlock: role is set by the gateway/);
    // The same session without them runs, with the policy's read-only limit in force.
    const ok = await t.psql("shop_limited", token, ["-At", "-c", "show default_transaction_read_only"]);
    expect(ok.stdout.trim()).toBe("on");
  });

  it("a setting the target rejects comes back with the target's words", async () => {
    const r = await t.psql("shop", token, ["-At", "-c", "select 1"], { env: { PGOPTIONS: "-c statement_timeout=soon" } });
    expect(r.stderr).toMatch(/airlock: .*invalid value for parameter "statement_timeout"/);
  });
});

describe("client_encoding", () => {
  it("refuses an encoding other than UTF8 with a FATAL naming it (psql with PGCLIENTENCODING=LATIN1)", async () => {
    const r = await t.psql("shop", token, ["-At", "-c", "select 1"], { env: { PGCLIENTENCODING: "LATIN1" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FATAL: +airlock: client_encoding "LATIN1" is not supported: the gateway speaks UTF8 only/);
  });

  it("accepts UTF8 in the spellings clients use", async () => {
    for (const enc of ["UTF8", "utf-8", "UNICODE"]) {
      const r = await t.psql("shop", token, ["-At", "-c", "show client_encoding"], { env: { PGCLIENTENCODING: enc } });
      expect(r.stderr).toBe("");
      expect(r.stdout.trim()).toBe("UTF8");
    }
    // node-postgres sends client_encoding=UTF8 itself.
    const c = client("shop");
    await c.connect();
    expect((await c.query<{ client_encoding: string }>("show client_encoding")).rows[0]?.client_encoding).toBe("UTF8");
    await c.end();
  });
});

/**
 * psycopg 3 (Debian's python3-psycopg, under /usr/bin/python3): `conn.cancel()` is libpq's
 * PQcancel, which returns when the server closes the cancel connection. A cancel sent just as a
 * statement finishes must not cancel the next one.
 */
const PSYCOPG_CANCEL = `
import sys, threading, time, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
late = 0
for i in range(20):
    conn.execute("select 1").fetchall()
    conn.cancel()  # nothing runs: the target must ignore it
    try:
        conn.execute("select pg_sleep(0.3)").fetchall()
    except psycopg.errors.QueryCanceled:
        late += 1
# A cancel of a statement that runs does cancel it.
t = threading.Timer(0.5, conn.cancel)
t.start()
started = time.time()
try:
    conn.execute("select pg_sleep(20)")
    print("not cancelled")
except psycopg.errors.QueryCanceled:
    print("cancelled after %.1fs" % (time.time() - started))
print("late=%d" % late)
`;

describe("cancel requests", () => {
  it("psycopg 3: a cancel lands on what it was sent for, never on the next statement", async () => {
    const dsn = `host=127.0.0.1 port=${t.pgPort} dbname=shop user=agent password=${token} sslmode=disable`;
    const r = await runClient("/usr/bin/python3", ["-c", PSYCOPG_CANCEL, dsn], { timeoutMs: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/cancelled after [0-4]\.\d+s/);
    expect(r.stdout).toContain("late=0");
  }, 90_000);

  it("pooled target sessions: the cancel key of an ended session does not reach the next client on the same backend", async () => {
    const a = client("shop_pooled");
    await a.connect();
    const targetPid = (await a.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]?.pid;
    const key = a as unknown as { processID: number; secretKey: number };
    await a.end();
    await new Promise((r) => setTimeout(r, 300)); // the reset (DISCARD ALL) and release
    const b = client("shop_pooled");
    await b.connect();
    try {
      expect((await b.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]?.pid).toBe(targetPid);
      const sleeping = b.query("select pg_sleep(1.5)");
      await new Promise((r) => setTimeout(r, 300));
      const c = await rawConnect(t.pgPort);
      const cancel = Buffer.alloc(16);
      cancel.writeInt32BE(16, 0);
      cancel.writeInt32BE(80877102, 4);
      cancel.writeInt32BE(key.processID, 8);
      cancel.writeInt32BE(key.secretKey, 12);
      c.socket.write(cancel);
      await c.closed;
      await expect(sleeping).resolves.toBeDefined();
    } finally {
      await b.end();
    }
  });
});
