/**
 * The PostgreSQL data path end to end: a real PostgreSQL 15 (password auth, TLS), the real
 * gateway, and real clients (psql and node-postgres).
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { spawn } from "node:child_process";
import pg from "pg";
import { serialize } from "pg-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startTap, type Tap } from "./harness/tap.js";
import { rawSession } from "./harness/raw-pg.js";
import { encodeFunctionCall } from "../src/protocols/postgres/wire/index.js";

const CANARY = `canary-${randomBytes(12).toString("hex")}`;

let server: PgServer;
let t: TestGateway;
let token: string;

function client(database: string, password: string, extra: Partial<pg.ClientConfig> = {}): pg.Client {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database, user: "agent", password, ...extra });
  c.on("error", () => undefined);
  return c;
}

async function connectError(database: string, password: string): Promise<{ code?: string; message: string }> {
  const c = client(database, password);
  try {
    await c.connect();
  } catch (e) {
    const err = e as { code?: string; message: string };
    return err;
  } finally {
    await c.end().catch(() => undefined);
  }
  throw new Error("connected, but a refusal was expected");
}

beforeAll(async () => {
  server = await startPostgres({
    users: [
      { name: "app", password: CANARY, auth: "scram-sha-256" },
      { name: "app_md5", password: "md5-password-1", auth: "md5" },
      { name: "app_clear", password: "clear-password-1", auth: "password" },
    ],
    databases: ["orders"],
    ssl: true,
  });
  await server.psql(
    `create table items (id int primary key, name text not null, email text);
     insert into items select g, 'item ' || g, 'user' || g || '@example.com' from generate_series(1, 50) g;
     grant all on items to app_md5, app_clear;
     alter table items owner to app;`,
    { database: "orders" },
  );
  const caFile = join(server.dataDir, "..", "ca.pem");
  writeFileSync(caFile, server.caCert ?? "");
  const otherCa = await startPostgres({ ssl: true });
  const wrongCaFile = join(server.dataDir, "..", "wrong-ca.pem");
  writeFileSync(wrongCaFile, otherCa.caCert ?? "");
  await otherCa.stop();

  process.env["AIRLOCK_TEST_ORDERS_PW"] = CANARY;
  const base = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "orders", groups: ["agents"] };
  t = await startTestGateway({
    tls: { selfSigned: true },
    serviceAccounts: [
      { name: "ci-bot", groups: ["agents"] },
      { name: "outsider", groups: ["nobody"] },
    ],
    recording: { maxRowsPerStatement: 5 },
    connections: [
      { ...base, name: "orders", user: "app", password: "env:AIRLOCK_TEST_ORDERS_PW", sslmode: "disable" },
      { ...base, name: "orders_md5", user: "app_md5", password: "md5-password-1", sslmode: "disable" },
      { ...base, name: "orders_clear", user: "app_clear", password: "clear-password-1", sslmode: "disable" },
      { ...base, name: "orders_tls", user: "app", password: "env:AIRLOCK_TEST_ORDERS_PW", sslmode: "require" },
      { ...base, name: "orders_verify", user: "app", password: "env:AIRLOCK_TEST_ORDERS_PW", sslmode: "verify-full", sslRootCert: `file:${caFile}` },
      { ...base, name: "orders_badca", user: "app", password: "env:AIRLOCK_TEST_ORDERS_PW", sslmode: "verify-full", sslRootCert: `file:${wrongCaFile}` },
      { ...base, name: "orders_wrongpw", user: "app", password: "not-the-password", sslmode: "disable" },
      { ...base, name: "restricted", user: "app", password: "env:AIRLOCK_TEST_ORDERS_PW", groups: ["dba"], sslmode: "disable" },
    ],
  });
  token = await t.mint("ci-bot");
});

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("psql through the gateway", () => {
  it("runs simple queries with the token as the password", async () => {
    const r = await t.psql("orders", token, ["-At", "-c", "select count(*), current_user from items"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("50|app");
  });

  it("speaks TLS on the client leg (sslmode=require) and reports it", async () => {
    const r = await t.psql("orders", token, ["-At", "-c", "select 1"], { sslmode: "require" });
    expect(r.stdout.trim()).toBe("1");
    const c = client("orders", token, { ssl: { ca: t.gw.tls?.certPem ?? "", servername: "localhost" } });
    await c.connect();
    const res = await c.query<{ n: number }>("select 2 as n");
    expect(res.rows[0]?.n).toBe(2);
    await c.end();
  });

  it("copies in and out (COPY FROM STDIN / TO STDOUT)", async () => {
    const copyIn = await t.psql("orders", token, ["-c", "create table copied (id int, label text)", "-c", "\\copy copied from stdin"], {
      input: "1\tone\n2\ttwo\n3\tthree\n\\.\n",
    });
    expect(copyIn.stderr).toBe("");
    const out = await t.psql("orders", token, ["-c", "copy (select id, label from copied order by id) to stdout"]);
    expect(out.stdout).toBe("1\tone\n2\ttwo\n3\tthree\n");
  });

  it("keeps transaction semantics: an error aborts the transaction until ROLLBACK", async () => {
    const r = await t.psql("orders", token, ["-v", "ON_ERROR_STOP=0", "-At"], {
      input: "begin;\ninsert into items values (1000, 'tx', null);\nselect 1/0;\nselect 'after';\nrollback;\nselect count(*) from items where id = 1000;\n",
    });
    expect(r.stderr).toContain("division by zero");
    expect(r.stderr).toContain("current transaction is aborted");
    expect(r.stdout.trim().split("\n").pop()).toBe("0");
  });

  it("cancels a running statement upstream (CancelRequest on Ctrl-C)", async () => {
    const child = spawn("psql", ["-X", `host=127.0.0.1 port=${t.pgPort} dbname=orders user=agent sslmode=disable`, "-c", "select pg_sleep(30)"], {
      env: { ...process.env, PGPASSWORD: token },
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    await new Promise((r) => setTimeout(r, 1500));
    const started = Date.now();
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(code).not.toBe(0);
    expect(stderr).toContain("canceling statement due to user request");
    const busy = await server.psql("select count(*) from pg_stat_activity where query like 'select pg_sleep(30)%' and state = 'active'");
    expect(busy.trim()).toBe("0");
  });
});

describe("node-postgres through the gateway", () => {
  it("uses the extended protocol: parameters, named and unnamed statements, portals", async () => {
    const c = client("orders", token);
    await c.connect();
    const a = await c.query<{ name: string }>("select name from items where id = $1", [7]);
    expect(a.rows).toEqual([{ name: "item 7" }]);
    for (const id of [3, 4]) {
      const b = await c.query<{ id: number }>({ name: "by-id", text: "select id from items where id = $1", values: [id] });
      expect(b.rows[0]?.id).toBe(id);
    }
    const bin = await c.query<{ b: Buffer }>("select $1::bytea as b", [Buffer.from([0, 1, 2, 255])]);
    expect(bin.rows[0]?.b).toEqual(Buffer.from([0, 1, 2, 255]));
    await c.end();
  });

  it("handles pipelined extended-protocol batches in order", async () => {
    const bytes = Buffer.concat([
      serialize.parse({ name: "s1", text: "select $1::int + 1 as v", types: [] }),
      serialize.bind({ statement: "s1", values: ["41"] }),
      serialize.describe({ type: "P" }),
      serialize.execute({}),
      serialize.parse({ text: "select 'two' as v", types: [] }),
      serialize.bind({}),
      serialize.execute({}),
      serialize.sync(),
      serialize.bind({ statement: "s1", values: ["99"] }),
      serialize.execute({}),
      serialize.sync(),
    ]);
    const received = await rawSession({ port: t.pgPort, database: "orders", password: token, bytes, readyCount: 2 });
    const text = received.toString("latin1");
    // DataRows carry "42", "two", "100" in that order, followed by two ReadyForQuery.
    const i42 = text.indexOf("42");
    const iTwo = text.indexOf("two");
    const i100 = text.indexOf("100");
    expect(i42).toBeGreaterThan(0);
    expect(iTwo).toBeGreaterThan(i42);
    expect(i100).toBeGreaterThan(iTwo);
  });

  it("refuses a fastpath call of an OID that names no function (fail closed), and audits it as a deny", async () => {
    // An OID pg_proc does not hold, then a normal query in the same batch. (Fastpath calls of
    // real functions are judged as their SQL call: test/postgres-fastpath.test.ts.)
    const bytes = Buffer.concat([
      encodeFunctionCall({ functionOid: 4_000_000_000, args: [Buffer.from([0, 0, 0, 0])], argFormats: [1], resultFormat: 1 }),
      serialize.query("select 'still here' as s"),
    ]);
    const text = (await rawSession({ port: t.pgPort, database: "orders", password: token, bytes, readyCount: 2 })).toString("latin1");
    expect(text).toContain("42501");
    expect(text).toContain("fastpath");
    expect(text).toContain("still here");
    await t.api("/v1/audit/verify"); // flushes the local log to the store
    const audit = (await t.api("/v1/audit?afterSeq=0&limit=1000")).body as { records: { statement?: string; decision?: string; rule?: string }[] };
    const rec = audit.records.find((r) => r.statement === "<function call: oid 4000000000, 1 argument(s)>");
    expect(rec).toMatchObject({ decision: "deny", rule: "no-fastpath" });
  });

  it("delivers LISTEN/NOTIFY", async () => {
    const listener = client("orders", token);
    await listener.connect();
    await listener.query("listen airlock_events");
    const got = new Promise<string | undefined>((resolve) => listener.on("notification", (n) => resolve(n.payload)));
    const notifier = client("orders", token);
    await notifier.connect();
    await notifier.query("select pg_notify('airlock_events', 'hello')");
    await expect(got).resolves.toBe("hello");
    await notifier.end();
    await listener.end();
  });

  it("streams large results", async () => {
    const c = client("orders", token);
    await c.connect();
    const r = await c.query<{ g: number; pad: string }>("select g, repeat('x', 100) as pad from generate_series(1, 200000) g");
    expect(r.rowCount).toBe(200000);
    expect(r.rows[199999]?.g).toBe(200000);
    await c.end();
  });

  it("recovers after an error inside an implicit transaction", async () => {
    const c = client("orders", token);
    await c.connect();
    await expect(c.query("select * from no_such_table")).rejects.toMatchObject({ code: "42P01" });
    const r = await c.query<{ v: number }>("select 5 as v");
    expect(r.rows[0]?.v).toBe(5);
    await c.end();
  });
});

describe("upstream authentication and TLS", () => {
  it.each([
    ["orders", "SCRAM-SHA-256"],
    ["orders_md5", "MD5"],
    ["orders_clear", "cleartext"],
  ])("answers the target's %s challenge (%s) itself", async (connection) => {
    const c = client(connection, token);
    await c.connect();
    const r = await c.query<{ n: string }>("select count(*)::text as n from items");
    expect(r.rows[0]?.n).toBe("50");
    await c.end();
  });

  it.each(["orders_tls", "orders_verify"])("uses TLS to the target (%s)", async (connection) => {
    const c = client(connection, token);
    await c.connect();
    const r = await c.query<{ ssl: boolean }>("select ssl from pg_stat_ssl where pid = pg_backend_pid()");
    expect(r.rows[0]?.ssl).toBe(true);
    await c.end();
  });

  it("refuses a target whose certificate does not verify (verify-full)", async () => {
    const e = await connectError("orders_badca", token);
    expect(e.code).toBe("08001");
    expect(e.message).toMatch(/^airlock: .*TLS/);
  });

  it("reports a target that refuses the gateway's credential without details", async () => {
    const e = await connectError("orders_wrongpw", token);
    expect(e.code).toBe("08004");
    expect(e.message).toMatch(/^airlock: /);
    expect(e.message).not.toContain("not-the-password");
  });
});

describe("refusals", () => {
  it("refuses a bad token with 28P01", async () => {
    const e = await connectError("orders", "not-a-token");
    expect(e.code).toBe("28P01");
    expect(e.message).toMatch(/^airlock: /);
  });

  it("refuses an empty password with 28P01", async () => {
    const r = await t.psql("orders", "", ["-c", "select 1"], { env: { PGPASSWORD: "" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/airlock: |no password supplied/);
  });

  it("refuses an expired token with 28P01", async () => {
    const short = await t.mint("ci-bot", "1s");
    await new Promise((r) => setTimeout(r, 7000));
    const e = await connectError("orders", short);
    expect(e.code).toBe("28P01");
    expect(e.message).toMatch(/^airlock: .*expired/);
  }, 20_000);

  it("refuses a revoked token with 28P01", async () => {
    const revokedToken = await t.mint("ci-bot");
    const id = JSON.parse(Buffer.from(revokedToken.split(".")[1] ?? "", "base64url").toString("utf8")) as { jti: string };
    const r = await t.api(`/v1/tokens/${id.jti}/revoke`, { method: "POST", body: {} });
    expect(r.status).toBe(200);
    const e = await connectError("orders", revokedToken);
    expect(e.code).toBe("28P01");
    expect(e.message).toMatch(/^airlock: .*revoked/);
  });

  it("refuses an unknown connection with 3D000", async () => {
    const e = await connectError("no_such_connection", token);
    expect(e.code).toBe("3D000");
    expect(e.message).toMatch(/^airlock: .*no_such_connection/);
  });

  it("refuses a connection the principal's groups don't allow with 42501", async () => {
    const e = await connectError("restricted", token);
    expect(e.code).toBe("42501");
    const outsider = await t.mint("outsider");
    const e2 = await connectError("orders", outsider);
    expect(e2.code).toBe("42501");
  });

  it("refuses replication connections", async () => {
    const r = await t.psql("orders", token, ["-c", "IDENTIFY_SYSTEM"], { env: { PGREPLICATION: "database" } });
    expect(r.code).not.toBe(0);
  });

  it("ends a live session within seconds when its token is revoked", async () => {
    const live = await t.mint("ci-bot");
    const c = client("orders", live);
    await c.connect();
    const ended = new Promise<string>((resolve) => c.on("error", (e) => resolve(e.message)));
    const id = JSON.parse(Buffer.from(live.split(".")[1] ?? "", "base64url").toString("utf8")) as { jti: string };
    const started = Date.now();
    const r = await t.api(`/v1/tokens/${id.jti}/revoke`, { method: "POST", body: {} });
    expect((r.body as { sessionsEnded: number }).sessionsEnded).toBe(1);
    const message = await ended;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(message).toMatch(/airlock: session ended: .*revoked/);
  });
});

describe("bad input from clients", () => {
  /** Send raw bytes, collect the answer until the gateway closes the socket. */
  async function rawExchange(chunks: readonly Buffer[]): Promise<Buffer> {
    const socket = connect(t.pgPort, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    const received: Buffer[] = [];
    socket.on("data", (d: Buffer) => received.push(d));
    for (const c of chunks) socket.write(c);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the gateway did not close the connection")), 10_000);
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return Buffer.concat(received);
  }

  /** The SQLSTATE of the first ErrorResponse in `bytes`. */
  function sqlstateIn(bytes: Buffer): string | undefined {
    const i = bytes.indexOf(0x45); // 'E'
    if (i < 0) return undefined;
    const m = /C([0-9A-Z]{5})\0/.exec(bytes.subarray(i).toString("latin1"));
    return m?.[1];
  }

  it("answers garbage instead of a start-up packet with a protocol error and closes", async () => {
    // Read as protocol version 258.772: PostgreSQL itself answers 0A000 (unsupported frontend protocol).
    const out = await rawExchange([Buffer.from([0, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8])]);
    expect(sqlstateIn(out)).toBe("0A000");
    const short = await rawExchange([Buffer.from([0, 0, 0, 2])]);
    expect(sqlstateIn(short)).toBe("08P01");
    expect(out.toString("latin1")).toContain("airlock:");
  });

  it("refuses an oversized message before authentication without buffering it", async () => {
    const startup = serialize.startup({ user: "agent", database: "orders" });
    const header = Buffer.alloc(5);
    header[0] = 0x70; // PasswordMessage
    header.writeInt32BE(50 * 1024 * 1024, 1);
    const out = await rawExchange([startup, header]);
    expect(sqlstateIn(out)).toBe("54000");
  });

  it("refuses plaintext pipelined after SSLRequest", async () => {
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    const out = await rawExchange([Buffer.concat([ssl, serialize.startup({ user: "agent", database: "orders" })])]);
    expect(out.subarray(0, 1).toString("latin1")).not.toBe("S");
    expect(sqlstateIn(out)).toBe("08P01");
  });

  it("keeps serving other clients after all that", async () => {
    const r = await t.psql("orders", token, ["-At", "-c", "select 1"]);
    expect(r.stdout.trim()).toBe("1");
  });
});

describe("recording, sessions and audit", () => {
  it("records every statement with its bind parameters, decision, row count and rows", async () => {
    const c = client("orders", token, { application_name: "recorder-test" });
    await c.connect();
    await c.query("select id, name from items where id <= $1 order by id", [8]);
    await c.end();
    await new Promise((r) => setTimeout(r, 300));
    const list = await t.api("/v1/sessions?limit=100");
    const sessions = (list.body as { sessions: { id: string; attributes: Record<string, string> }[] }).sessions;
    const mine = sessions.find((s) => s.attributes["application_name"] === "recorder-test");
    expect(mine).toBeDefined();
    const show = await t.api(`/v1/sessions/${mine?.id ?? ""}`);
    expect(show.status).toBe(200);
    const body = show.body as {
      session: { principal: { name: string }; connection: string; clientAddress: string; endedAt?: string };
      recording: { kind: string; sql?: string; decision?: string; params?: string[]; rowCount?: number; rows?: string[][]; rowsTruncated?: boolean }[];
    };
    expect(body.session.principal.name).toBe("ci-bot");
    expect(body.session.connection).toBe("orders");
    expect(body.session.clientAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(body.session.endedAt).toBeDefined();
    const query = body.recording.find((e) => e.kind === "query" && e.sql?.includes("where id <= $1") === true);
    expect(query?.decision).toBe("allow");
    const result = body.recording.find((e) => e.kind === "result" && e.params !== undefined);
    expect(result?.params).toEqual(["8"]);
    expect(result?.rowCount).toBe(8);
    expect(result?.rows).toHaveLength(5); // capped by recording.maxRowsPerStatement
    expect(result?.rows?.[0]).toEqual(["1", "item 1"]);
    expect(result?.rowsTruncated).toBe(true);
  });

  it("keeps an intact, verifiable audit chain", async () => {
    const r = await t.api("/v1/audit/verify");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true });
    expect((r.body as { records: number }).records).toBeGreaterThan(10);
  });
});

describe("the upstream password never leaves the gateway", () => {
  let tap: Tap;
  beforeAll(async () => {
    tap = await startTap({ host: "127.0.0.1", port: t.pgPort });
  });
  afterAll(async () => tap.close());

  it("appears in no client-visible byte, log line, recording, audit record or API answer", async () => {
    // Exercise the paths that could leak it: login (SCRAM), queries, errors, cancel, refusals.
    const via = { port: tap.port };
    await t.psql("orders", token, ["-c", "select current_setting('server_version')", "-c", "select 1/0"], via);
    await t.psql("orders_wrongpw", token, ["-c", "select 1"], via);
    await t.psql("orders", "bad-token", ["-c", "select 1"], via);
    const c = new pg.Client({ host: "127.0.0.1", port: tap.port, database: "orders", user: "agent", password: token });
    await c.connect();
    await c.query("select * from items where name = $1", [CANARY.slice(0, 4)]);
    await c.end();
    await new Promise((r) => setTimeout(r, 400));

    const needles = [CANARY, Buffer.from(CANARY).toString("base64"), Buffer.from(CANARY).toString("hex")];
    const wire = tap.toClient().toString("latin1");
    const logs = t.logs();
    // Everything the gateway wrote: audit log, recordings, store (PGlite pages), keys.
    const files = allFiles(t.dataDir);
    const fileText = files.map((f) => readFileSync(f).toString("latin1")).join("\n");
    const apiText = [
      (await t.api("/v1/sessions?limit=200")).text,
      (await t.api("/v1/audit?afterSeq=0&limit=1000")).text,
      (await t.api("/metrics")).text,
    ];
    const sessions = (JSON.parse(apiText[0] ?? "{}") as { sessions: { id: string }[] }).sessions;
    for (const s of sessions) apiText.push((await t.api(`/v1/sessions/${s.id}`)).text);

    expect(wire.length).toBeGreaterThan(1000);
    expect(logs.length).toBeGreaterThan(1000);
    expect(files.some((f) => f.includes("recordings"))).toBe(true);
    for (const n of needles) {
      expect(wire).not.toContain(n);
      expect(logs).not.toContain(n);
      expect(fileText).not.toContain(n);
      for (const a of apiText) expect(a).not.toContain(n);
    }
  });
});

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}
