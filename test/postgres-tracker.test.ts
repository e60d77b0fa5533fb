/**
 * Results belong to the statement the target actually executed, and the gateway's state changes
 * only when the target accepted the change: raw protocol batches (pipelines without Sync,
 * cursors, Describe of one statement and Execute of another, a second Parse of a held name)
 * against a real PostgreSQL through the gateway, checked on the bytes the client received.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import pg from "pg";
import { serialize } from "pg-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { rawSession } from "./harness/raw-pg.js";

let server: PgServer;
let t: TestGateway;
let token: string;

const CAP = 5;

interface Msg {
  readonly type: string;
  readonly body: Buffer;
}

function messages(buf: Buffer): Msg[] {
  const out: Msg[] = [];
  for (let i = 0; i + 5 <= buf.length; ) {
    const len = buf.readInt32BE(i + 1);
    out.push({ type: String.fromCharCode(buf[i] ?? 0), body: buf.subarray(i + 5, i + 1 + len) });
    i += 1 + len;
  }
  return out;
}

function dataRow(body: Buffer): (string | null)[] {
  const n = body.readInt16BE(0);
  const values: (string | null)[] = [];
  let at = 2;
  for (let k = 0; k < n; k++) {
    const len = body.readInt32BE(at);
    at += 4;
    if (len < 0) values.push(null);
    else {
      values.push(body.subarray(at, at + len).toString("utf8"));
      at += len;
    }
  }
  return values;
}

function rows(buf: Buffer): (string | null)[][] {
  return messages(buf)
    .filter((m) => m.type === "D")
    .map((m) => dataRow(m.body));
}

function errors(buf: Buffer): string[] {
  return messages(buf)
    .filter((m) => m.type === "E")
    .map((m) => m.body.toString("utf8"));
}

async function raw(bytes: Buffer[], readyCount: number): Promise<Buffer> {
  return rawSession({ port: t.pgPort, database: "shop", password: token, bytes: Buffer.concat(bytes), readyCount });
}

/** No clear e-mail address of the table reached the client. */
function expectNoClearEmail(buf: Buffer): void {
  expect(buf.toString("latin1")).not.toMatch(/c\d+@example\.com/);
}

/** A value replaced by its mask token. */
function expectMasked(v: string | null | undefined): void {
  expect(v).toMatch(/^\[[A-Z_]+\]$/);
}

const q = serialize.query;
const S = serialize.sync;

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table customers (id int primary key, name text, email text);
     insert into customers select g, 'customer ' || g, 'c' || g || '@example.com' from generate_series(1, 40) g;
     create table orders (id int primary key, total int);
     insert into orders select g, g * 10 from generate_series(1, 20) g;
     alter table customers owner to app; alter table orders owner to app;`,
    { database: "shop" },
  );
  const conn = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", sslmode: "disable" as const };
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ ...conn, name: "shop", groups: ["agents"] }],
    policies: [
      // Matched policies: a FETCH names no relation, so only the DECLARE's plan carries them.
      { name: "hide-email", connections: ["shop"], match: { relations: ["customers"] }, action: "mask", columns: ["customers.email"], strategy: "redact" },
      { name: "cap-customers", connections: ["shop"], match: { relations: ["customers"] }, action: "allow", maxRows: CAP },
      { name: "deletes-need-approval", connections: ["shop"], match: { operations: ["delete"] }, action: "require_approval", approvers: ["dba"], mode: "async" },
    ],
  });
  token = await t.mint("agent");
}, 300_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("results paired with the statement the target executed", () => {
  it("a Query after a failed Execute, before Sync, is skipped by the target and not expected", async () => {
    const out = await raw(
      [
        serialize.parse({ text: "select 1/0" }),
        serialize.bind({}),
        serialize.execute({}),
        q("select id, email from customers"),
        S(),
        serialize.parse({ text: "select id, email from customers order by id" }),
        serialize.bind({}),
        serialize.describe({ type: "P" }),
        serialize.execute({}),
        S(),
        q("select id, email from customers order by id"),
      ],
      3,
    );
    expectNoClearEmail(out);
    const r = rows(out);
    // The extended Execute and the final Query, each cut at the cap; the skipped Query gave nothing.
    expect(r).toHaveLength(2 * CAP);
    for (const row of r) expectMasked(row[1]);
    expect(errors(out)[0]).toContain("division by zero");
  });

  it("rows of a SQL cursor are masked and capped by the DECLARE's plan, through FETCH and a protocol Execute", async () => {
    const out = await raw(
      [
        q("begin"),
        q("declare c cursor for select id, email from customers order by id"),
        serialize.describe({ type: "P", name: "c" }),
        serialize.execute({ portal: "c", rows: 2 }),
        S(),
        q("fetch 2 from c"),
        q("fetch 10 from c"),
        q("commit"),
      ],
      6,
    );
    expectNoClearEmail(out);
    const r = rows(out);
    expect(r.length).toBeLessThanOrEqual(CAP);
    expect(r.length).toBeGreaterThan(0);
    for (const row of r) expectMasked(row[1]);
  });

  it("a protocol Execute of a cursor the gateway cannot describe is refused, not passed raw", async () => {
    const out = await raw([q("begin"), q("declare d cursor for select id, email from customers"), serialize.execute({ portal: "d", rows: 3 }), S(), q("rollback")], 4);
    expectNoClearEmail(out);
    expect(rows(out)).toHaveLength(0);
    expect(errors(out).join("\n")).toContain("airlock:");
  });

  it("Describe of one statement, then Bind/Execute of another: rows use the executed statement's fields", async () => {
    const out = await raw(
      [
        serialize.parse({ name: "s1", text: "select id, name from customers order by id" }),
        serialize.parse({ name: "s2", text: "select id, email from customers order by id" }),
        S(),
        serialize.describe({ type: "S", name: "s1" }),
        serialize.bind({ statement: "s2" }),
        serialize.execute({}),
        S(),
        serialize.describe({ type: "S", name: "s2" }),
        serialize.describe({ type: "S", name: "s1" }),
        serialize.bind({ statement: "s2" }),
        serialize.execute({}),
        S(),
      ],
      3,
    );
    expectNoClearEmail(out);
    const r = rows(out);
    // The first Execute: s2's fields unknown (only s1 described), refused; the second masked.
    expect(errors(out).join("\n")).toContain("airlock:");
    expect(r).toHaveLength(CAP);
    for (const row of r) expectMasked(row[1]);
  });

  it("node-postgres prepared statements keep masking and the row cap", async () => {
    const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop", user: "agent", password: token });
    c.on("error", () => undefined);
    await c.connect();
    try {
      for (let i = 0; i < 3; i++) {
        const r = await c.query<{ email: string }>({ name: "emails", text: "select email from customers where id > $1", values: [i] });
        expect(r.rows).toHaveLength(CAP);
        for (const row of r.rows) expectMasked(row.email);
      }
    } finally {
      await c.end();
    }
  });
});

describe("refusals of results are decisions the recording shows", () => {
  it("a COPY under column masking is masked, capped, and recorded as the client received it", async () => {
    const out = await raw([q("copy customers to stdout"), q("select 'after-copy'")], 2);
    expectNoClearEmail(out);
    expect(out.toString("latin1")).toContain("after-copy");
    const lines = messages(out)
      .filter((m) => m.type === "d")
      .map((m) => m.body.toString("utf8"));
    expect(lines).toHaveLength(CAP);
    for (const line of lines) expectMasked(line.split("\t")[2]?.trimEnd());
    await new Promise((r) => setTimeout(r, 500));
    const sessions = (await t.api("/v1/sessions?limit=200")).body as { sessions: { id: string }[] };
    const texts = await Promise.all(sessions.sessions.map(async (s) => (await t.api(`/v1/sessions/${s.id}`)).text));
    const recorded = texts.find((x) => x.includes("copy customers to stdout"));
    expect(recorded).toBeDefined();
    // What the client saw: masked rows, no clear address.
    expect(recorded).toMatch(/customer 1\\t\[[A-Z_]+\]/);
    expect(recorded).toContain('"rowsSent":5');
    expect(recorded).not.toMatch(/c\d+@example\.com/);
  });

  it("a malformed Query is refused by the pipeline and audited", async () => {
    const bad = Buffer.from("select 1\0 and more\0", "latin1");
    const msg = Buffer.alloc(5 + bad.length);
    msg.write("Q", 0, "latin1");
    msg.writeInt32BE(4 + bad.length, 1);
    bad.copy(msg, 5);
    const out = await raw([msg, q("select 'still-here'")], 2);
    expect(errors(out).join("\n")).toContain("invalid message format");
    expect(out.toString("latin1")).toContain("still-here");
    await new Promise((r) => setTimeout(r, 500));
    const audit = readFileSync(`${t.dataDir}/audit/audit.log`, "utf8");
    expect(audit).toContain("postgres.malformed");
  });
});

describe("gateway state changes only when the target accepted the change", () => {
  it("a second Parse of a held statement's name does not replace it", async () => {
    const first = await raw([serialize.parse({ name: "h1", text: "delete from orders where id = 1" }), S(), serialize.parse({ name: "h1", text: "select 1" }), S(), serialize.bind({ statement: "h1" }), serialize.execute({}), S(), q("execute h1")], 4);
    const errs = errors(first).join("\n");
    expect(errs).toContain("already exists");
    expect(errs).toContain("airlock:");
    const left = await server.psql("select count(*) from orders where id = 1", { database: "shop" });
    expect(left.trim()).toBe("1");
    // Three refusals: the second Parse, the Bind (held), the SQL EXECUTE (held).
    expect(errors(first).filter((e) => e.includes("airlock:")).length).toBe(3);
  });
});

/**
 * Random interleavings of extended and simple messages, with failing statements and cursors:
 * every row that reaches the client is masked (no clear address), and no statement's result is
 * longer than the cap. The reference is PostgreSQL itself (the real target behind the gateway).
 */
describe("property: every row is masked under its own statement's plan", () => {
  const statements = ["select id, email from customers order by id", "select id, name from customers order by id", "select 1/0", "select email, id from customers where id < 9", "select id, total from orders where id < 4"];
  const op = fc.oneof(
    fc.record({ k: fc.constant("parse" as const), name: fc.constantFrom("", "a", "b"), sql: fc.constantFrom(...statements) }),
    fc.record({ k: fc.constant("bind" as const), stmt: fc.constantFrom("", "a", "b"), portal: fc.constantFrom("", "p", "c") }),
    fc.record({ k: fc.constant("describe" as const), what: fc.constantFrom("S" as const, "P" as const), name: fc.constantFrom("", "a", "b", "p", "c") }),
    fc.record({ k: fc.constant("execute" as const), portal: fc.constantFrom("", "p", "c"), rows: fc.constantFrom(0, 2) }),
    fc.record({ k: fc.constant("close" as const), what: fc.constantFrom("S" as const, "P" as const), name: fc.constantFrom("", "a", "b", "p", "c") }),
    fc.record({ k: fc.constant("sync" as const) }),
    fc.record({ k: fc.constant("flush" as const) }),
    fc.record({ k: fc.constant("query" as const), sql: fc.constantFrom(...statements, "begin", "commit", "declare c cursor with hold for select id, email from customers", "fetch 3 from c", "close c") }),
  );

  it("holds for random batches against the real target", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), async (ops) => {
        const bytes: Buffer[] = [];
        for (const o of ops) {
          switch (o.k) {
            case "parse":
              bytes.push(serialize.parse({ name: o.name, text: o.sql }));
              break;
            case "bind":
              bytes.push(serialize.bind({ statement: o.stmt, portal: o.portal }));
              break;
            case "describe":
              bytes.push(serialize.describe({ type: o.what, name: o.name }));
              break;
            case "execute":
              bytes.push(serialize.execute({ portal: o.portal, rows: o.rows }));
              break;
            case "close":
              bytes.push(serialize.close({ type: o.what, name: o.name }));
              break;
            case "sync":
              bytes.push(S());
              break;
            case "flush":
              bytes.push(serialize.flush());
              break;
            case "query":
              bytes.push(q(o.sql));
              // A Query after an unsynced extended message may be skipped by the target: end
              // every batch with a Sync and count what the target answers from the bytes.
              break;
          }
        }
        // End any transaction the batch left open (a failed one would refuse the marker).
        bytes.push(S(), q("rollback"), q("select 'end-of-run'"));
        // Wait for our marker's ReadyForQuery: count ReadyForQuery until the marker arrived.
        const out = await rawUntilMarker(Buffer.concat(bytes));
        expectNoClearEmail(out);
        // Every result (between two completions) carries at most CAP rows.
        let run = 0;
        for (const m of messages(out)) {
          if (m.type === "D") {
            run++;
            expect(run).toBeLessThanOrEqual(CAP);
          } else if (m.type === "C" || m.type === "E" || m.type === "s" || m.type === "Z") run = 0;
        }
        return true;
      }),
      { numRuns: 50 },
    );
  }, 300_000);
});

/** Send `bytes`, read until the ReadyForQuery after the `end-of-run` marker row. */
function rawUntilMarker(bytes: Buffer): Promise<Buffer> {
  return rawSession({ port: t.pgPort, database: "shop", password: token, bytes, untilRow: "end-of-run", timeoutMs: 15_000 });
}
