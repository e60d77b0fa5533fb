/**
 * Masking on every result field whatever its type, format and size, end to end: a real
 * PostgreSQL 15, the gateway with demo-like masking rules (a column rule on customers.email and
 * the email/card detectors), node-postgres in text format and in binary format (`binary: true`),
 * and a raw protocol client asking for binary results. Arrays, anonymous records and whole-row
 * values, tsvector, casts (refcursor, numeric, int8), bytea with bytea_output=escape, and values
 * of several MiB (text and jsonb) — masked, parseable by the client, never cut.
 */
import pg from "pg";
import { serialize } from "pg-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { rawSession } from "./harness/raw-pg.js";
import { decodeBinaryArray, decodeBinaryRecord, decodeBinaryTsvector } from "../src/protocols/postgres/wire/values.js";

let server: PgServer;
let t: TestGateway;
let token: string;

const CUSTOMERS = 30;
const CARD = "4111111111111111";
const CLEAR_EMAIL = /c\d+@example\.com/;

function client(extra: Partial<pg.ClientConfig> = {}): pg.Client {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop", user: "agent", password: token, ...extra });
  c.on("error", () => undefined);
  return c;
}

async function withClient<T>(run: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = client();
  await c.connect();
  try {
    return await run(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

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

function dataRows(buf: Buffer): (Buffer | null)[][] {
  return messages(buf)
    .filter((m) => m.type === "D")
    .map((m) => {
      const n = m.body.readInt16BE(0);
      const values: (Buffer | null)[] = [];
      let at = 2;
      for (let k = 0; k < n; k++) {
        const len = m.body.readInt32BE(at);
        at += 4;
        values.push(len < 0 ? null : m.body.subarray(at, at + len));
        if (len > 0) at += len;
      }
      return values;
    });
}

/** One statement through the extended protocol with every result column in binary format. */
async function binaryQuery(text: string): Promise<Buffer> {
  return rawSession({
    port: t.pgPort,
    database: "shop",
    password: token,
    bytes: Buffer.concat([serialize.parse({ text }), serialize.bind({ binary: true }), serialize.describe({ type: "P" }), serialize.execute({}), serialize.sync()]),
    timeoutMs: 60_000,
  });
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table customers (id int primary key, name text, email text, card text);
     insert into customers select g, 'customer ' || g, 'c' || g || '@example.com', '${CARD}' from generate_series(1, ${CUSTOMERS}) g;
     create type mood as enum ('calm', 'c1@example.com');
     alter table customers owner to app; alter type mood owner to app;`,
    { database: "shop" },
  );
  const conn = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", sslmode: "disable" as const };
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ ...conn, name: "shop", groups: ["agents"] }],
    // Detectors only: how each type is decoded and masked. Column rules reaching computed fields
    // (lineage: every element of array[email, …] is then masked whole) are test/postgres-lineage.test.ts.
    policies: [{ name: "hide-pii", connections: ["shop"], action: "mask", detectors: ["email", "credit_card"], strategy: "redact" }],
  });
  token = await t.mint("agent");
}, 300_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("node-postgres, text format: every type", () => {
  it("array_agg(email) and array[email, card]: each element masked, still an array", async () => {
    await withClient(async (c) => {
      const agg = await c.query<{ a: string[] }>("select array_agg(email order by id) as a from customers");
      expect(agg.rows[0]?.a).toHaveLength(CUSTOMERS);
      for (const v of agg.rows[0]?.a ?? []) expect(v).toMatch(/^\[[A-Z_]+\]$/);
      const pair = await c.query<{ a: string[] }>("select array[email, card, 'plain'] as a from customers where id = 1");
      expect(pair.rows[0]?.a).toEqual(["[EMAIL]", "[CREDIT_CARD]", "plain"]);
    });
  });

  it("row(email) and a whole-row value: masked inside the record", async () => {
    await withClient(async (c) => {
      const r = await c.query<{ r: string; c: string }>("select row(email, id) as r, c from customers c where id = 2");
      expect(r.rows[0]?.r).toBe("([EMAIL],2)");
      expect(r.rows[0]?.c).not.toMatch(CLEAR_EMAIL);
      expect(r.rows[0]?.c).not.toContain(CARD);
      // The card is a number-like field of a text record: it could be a numeric, so it becomes NULL.
      expect(r.rows[0]?.c).toBe('(2,"customer 2",[EMAIL],)');
    });
  });

  it("tsvector, email::refcursor, card::numeric, card::int8", async () => {
    await withClient(async (c) => {
      const r = await c.query<{ v: string; rc: string; n: string | null; i: string | null; ok: string }>(
        "select to_tsvector('simple', email || ' hello') as v, email::refcursor as rc, card::numeric as n, card::int8 as i, 12.5::numeric as ok from customers where id = 3",
      );
      const row = r.rows[0];
      expect(row?.v).toBe("'[EMAIL]':1 'hello':2");
      expect(row?.rc).toBe("[EMAIL]");
      expect(row?.n).toBeNull();
      expect(row?.i).toBeNull();
      expect(row?.ok).toBe("12.5");
    });
  });

  it("bytea with bytea_output=escape (and hex)", async () => {
    await withClient(async (c) => {
      await c.query("set bytea_output = 'escape'");
      const esc = await c.query<{ b: Buffer }>("select convert_to('mail: ' || email || E'\\n', 'UTF8') as b from customers where id = 4");
      expect(esc.rows[0]?.b.toString()).toBe("mail: [EMAIL]\n");
      await c.query("set bytea_output = 'hex'");
      const hex = await c.query<{ b: Buffer }>("select convert_to(email, 'UTF8') as b from customers where id = 4");
      expect(hex.rows[0]?.b.toString()).toBe("[EMAIL]");
    });
  });

  it("a 3 MiB text value: every address masked, nothing cut", async () => {
    await withClient(async (c) => {
      const r = await c.query<{ big: string }>(
        "select repeat('filler ', 450000) || string_agg(email, ' ' order by id) || repeat(' tail', 100000) as big from customers",
      );
      const big = r.rows[0]?.big ?? "";
      const want = "filler ".repeat(450000) + Array.from({ length: CUSTOMERS }, () => "[EMAIL]").join(" ") + " tail".repeat(100000);
      expect(big.length).toBe(want.length);
      expect(big === want).toBe(true);
      expect(big).not.toContain("[TRUNCATED]");
    });
  }, 120_000);

  it("a 3 MiB jsonb value holding addresses: valid JSON, masked, not cut", async () => {
    await withClient(async (c) => {
      const r = await c.query<{ j: { pad: string; emails: string[]; note: string } }>(
        `select jsonb_build_object('pad', repeat('x', 3000000), 'emails', jsonb_agg(email order by id),
           'note', 'write to ' || min(email) || ' ' || repeat('y ', 200000) || max(email)) as j from customers`,
      );
      const j = r.rows[0]?.j; // node-postgres parsed it: valid JSON
      expect(j?.pad.length).toBe(3_000_000);
      expect(j?.emails).toHaveLength(CUSTOMERS);
      for (const e of j?.emails ?? []) expect(e).toBe("[EMAIL]");
      expect(j?.note.startsWith("write to [EMAIL] y y")).toBe(true);
      expect(j?.note.endsWith("y [EMAIL]")).toBe(true);
      expect(JSON.stringify(j)).not.toMatch(CLEAR_EMAIL);
    });
  }, 120_000);
});

describe("binary format", () => {
  it("node-postgres binary: true — whole-row, arrays and records carry no clear value", async () => {
    await withClient(async (c) => {
      // node-postgres reads `binary` from the query config (its types do not declare it).
      const config = { text: "select c, array_agg(email) over () as a, row(email) as r, card::numeric as n from customers c where id = 5", values: [], binary: true } as pg.QueryConfig;
      const r = await c.query(config);
      const row = r.rows[0] as Record<string, unknown>;
      const seen = Object.values(row)
        .map((v) => (Buffer.isBuffer(v) ? v.toString("latin1") : JSON.stringify(v)))
        .join("|");
      expect(seen).not.toMatch(CLEAR_EMAIL);
      expect(seen).not.toContain(CARD);
      expect(seen).toContain("[EMAIL]");
      expect(row["n"]).toBeNull();
    });
  });

  it("whole-row select in binary: a valid record, the address and card masked", async () => {
    const out = await binaryQuery("select c from customers c where id = 6");
    expect(out.toString("latin1")).not.toMatch(CLEAR_EMAIL);
    const [[value]] = dataRows(out) as [[Buffer]];
    const fields = decodeBinaryRecord(value);
    expect(fields.map((f) => f.typeOid)).toEqual([23, 25, 25, 25]);
    expect(fields[1]?.value?.toString()).toBe("customer 6");
    expect(fields[2]?.value?.toString()).toMatch(/^\[[A-Z_]+\]$/);
    expect(fields[3]?.value?.toString()).toBe("[CREDIT_CARD]");
  });

  it("arrays, anonymous records and tsvector in binary: decoded, masked, valid", async () => {
    const out = await binaryQuery(
      "select array_agg(email order by id), row(min(email), 1), to_tsvector('simple', min(email)), array_agg(card::int8) from customers where id <= 3",
    );
    expect(out.toString("latin1")).not.toMatch(CLEAR_EMAIL);
    const [[arr, rec, tsv, cards]] = dataRows(out) as [[Buffer, Buffer, Buffer, Buffer]];
    expect(decodeBinaryArray(arr).elements.map((e) => e?.toString())).toEqual(["[EMAIL]", "[EMAIL]", "[EMAIL]"]);
    expect(decodeBinaryRecord(rec)[0]?.value?.toString()).toBe("[EMAIL]");
    expect(decodeBinaryTsvector(tsv).map((l) => l.lexeme.toString())).toEqual(["[EMAIL]"]);
    expect(decodeBinaryArray(cards).elements).toEqual([null, null, null]);
  });

  it("binary numeric and int8 holding a card number become NULL; small numbers pass", async () => {
    const out = await binaryQuery("select card::numeric, card::int8, 42::int8, 12.5::numeric from customers where id = 7");
    const [[n, i, small, dec]] = dataRows(out) as [[Buffer | null, Buffer | null, Buffer, Buffer]];
    expect(n).toBeNull();
    expect(i).toBeNull();
    expect(small.readBigInt64BE(0)).toBe(42n);
    expect(dec.length).toBeGreaterThan(8);
  });

  it("fails closed: a user type the gateway cannot decode in binary refuses the result", async () => {
    const out = await binaryQuery("select 'c1@example.com'::mood as m");
    expect(out.toString("latin1")).not.toContain("c1@example.com");
    const errors = messages(out)
      .filter((m) => m.type === "E")
      .map((m) => m.body.toString("utf8"));
    expect(errors.join("\n")).toContain("cannot be masked");
    // In text format the same value is masked as text.
    await withClient(async (c) => {
      const r = await c.query<{ m: string }>("select 'c1@example.com'::mood as m");
      expect(r.rows[0]?.m).toBe("[EMAIL]");
    });
  });
});
