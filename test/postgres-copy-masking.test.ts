/**
 * COPY … TO STDOUT is masked under the session's masking rules instead of refused (issue 12,
 * "Masking on every channel"): text, CSV and binary format, through psql (COPY and \copy),
 * a raw protocol client, psycopg 3's binary COPY and pg_dump, against a real PostgreSQL 15.
 * Every output is compared with the same COPY run directly on the target: the masked columns
 * are masked, every other column is byte-identical.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serialize } from "pg-protocol";
import { runClient, startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { rawSession } from "./harness/raw-pg.js";

let server: PgServer;
let t: TestGateway;
let token: string;

const ROWS = 30;
/** A value replaced by its mask token. */
const TOKEN = /^\[[A-Z_]+\]$/;

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table customers (id int primary key, name text, email text, born date, note text, score numeric);
     insert into customers
       select g, 'customer ' || g, 'c' || g || '@example.com', date '1980-01-01' + g,
              case when g % 3 = 0 then E'multi\\nline, "quoted"\\ttab \\\\ and more'
                   when g % 3 = 1 then 'write to w' || g || '@mail.example.org today'
                   else null end,
              g * 1.5
         from generate_series(1, ${ROWS}) g;
     create view customer_contacts as select id, email from customers;
     create table orders (id int primary key, total int, note text);
     insert into orders select g, g * 10, 'order ' || g from generate_series(1, 5) g;
     create schema vault authorization app;
     create table vault.accounts (id int, secret text);
     insert into vault.accounts select g, 'S3CRET-' || g from generate_series(1, 3) g;
     create table public.accounts (id int, secret text);
     insert into public.accounts select g, 'harmless-' || g from generate_series(1, 3) g;
     alter table vault.accounts owner to app; alter table public.accounts owner to app;
     alter table customers owner to app; alter table orders owner to app; alter view customer_contacts owner to app;`,
    { database: "shop" },
  );
  const conn = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password", sslmode: "disable" as const };
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ ...conn, name: "shop", groups: ["agents"] }],
    policies: [
      { name: "hide-email", connections: ["shop"], action: "mask", columns: ["customers.email", "customer_contacts.email"], strategy: "redact" },
      { name: "hide-born", connections: ["shop"], action: "mask", columns: ["customers.born"], strategy: "redact" },
      { name: "find-emails", connections: ["shop"], action: "mask", detectors: ["email"], strategy: "redact" },
      { name: "hide-vault", connections: ["shop"], action: "mask", columns: ["vault.accounts.secret"], strategy: "redact" },
    ],
  });
  token = await t.mint("agent");
}, 300_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

/** The COPY run directly on the target, as psql prints it. */
async function direct(sql: string): Promise<string> {
  const r = await runClient("psql", ["-X", "-v", "ON_ERROR_STOP=1", server.url({ database: "shop" }), "-c", sql]);
  expect(r.stderr).toBe("");
  return r.stdout;
}

async function viaGateway(args: readonly string[]): Promise<string> {
  const r = await t.psql("shop", token, args);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return r.stdout;
}

function expectNoClearEmail(s: string): void {
  expect(s).not.toMatch(/c\d+@example\.com/);
  expect(s).not.toMatch(/w\d+@mail\.example\.org/);
}

/** The types of the messages a raw session received. */
function messageTypes(out: Buffer): string[] {
  const types: string[] = [];
  for (let i = 0; i + 5 <= out.length; i += 1 + out.readInt32BE(i + 1)) types.push(String.fromCharCode(out[i] ?? 0));
  return types;
}

/** Text-format lines split into raw fields (escapes kept: compared as written). */
function textRows(out: string, delimiter = "\t"): string[][] {
  return out
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split(delimiter));
}

/** A small CSV reader (RFC 4180 as PostgreSQL writes it): fields with `quoted` flags. */
function csvRows(out: string): { value: string; quoted: boolean }[][] {
  const rows: { value: string; quoted: boolean }[][] = [];
  let row: { value: string; quoted: boolean }[] = [];
  let value = "";
  let quoted = false;
  let inQuotes = false;
  for (let i = 0; i < out.length; i++) {
    const c = out.charAt(i);
    if (inQuotes) {
      if (c === '"' && out[i + 1] === '"') {
        value += '"';
        i++;
      } else if (c === '"') inQuotes = false;
      else value += c;
      continue;
    }
    if (c === '"') {
      inQuotes = true;
      quoted = true;
    } else if (c === ",") {
      row.push({ value, quoted });
      value = "";
      quoted = false;
    } else if (c === "\n") {
      row.push({ value, quoted });
      rows.push(row);
      row = [];
      value = "";
      quoted = false;
    } else value += c;
  }
  return rows;
}

/**
 * Field by field: `masked` columns hold a mask token (or `nullAs`, for non-text columns masked
 * as NULL), `detected` columns equal the target's with e-mail addresses replaced, every other
 * column equals the target's byte for byte.
 */
function compare(got: string[][], want: string[][], o: { masked?: number[]; nulled?: number[]; nullAs: string; detected?: number[] }): void {
  expect(got).toHaveLength(want.length);
  got.forEach((row, r) => {
    const expected = want[r] ?? [];
    expect(row).toHaveLength(expected.length);
    row.forEach((v, i) => {
      const w = expected[i];
      if (o.masked?.includes(i) === true) expect(v).toMatch(TOKEN);
      else if (o.nulled?.includes(i) === true) expect(v).toBe(o.nullAs);
      else if (o.detected?.includes(i) === true && w !== undefined && /@/.test(w)) {
        expect(v).not.toBe(w);
        expect(v).toBe(w.replace(/[a-z0-9]+@[a-z.]+/g, "[EMAIL]"));
      } else expect(v).toBe(w);
    });
  });
}

describe("COPY TO STDOUT through psql", () => {
  it("text format: column rules mask email (token) and born (NULL), detectors mask the note, the rest is identical", async () => {
    const sql = "copy customers to stdout";
    const [got, want] = await Promise.all([viaGateway(["-c", sql]), direct(sql)]);
    expectNoClearEmail(got);
    compare(textRows(got), textRows(want), { masked: [2], nulled: [3], nullAs: "\\N", detected: [4] });
    // Escapes of unmasked fields pass as written (multi-line note with a tab and a backslash).
    expect(got).toContain("multi\\nline, \"quoted\"\\ttab \\\\ and more");
  });

  it("\\copy of a column list: the listed columns, masked by their rules", async () => {
    const [got, want] = await Promise.all([viaGateway(["-c", "\\copy customers (id, email, name) to stdout"]), direct("copy customers (id, email, name) to stdout")]);
    expectNoClearEmail(got);
    compare(textRows(got), textRows(want), { masked: [1], nullAs: "\\N" });
  });

  it("CSV with HEADER and quoted multi-line fields", async () => {
    const sql = "copy customers to stdout with (format csv, header)";
    const [got, want] = await Promise.all([viaGateway(["-c", sql]), direct(sql)]);
    expectNoClearEmail(got);
    const g = csvRows(got);
    const w = csvRows(want);
    expect(g[0]?.map((f) => f.value)).toEqual(["id", "name", "email", "born", "note", "score"]);
    const shown = (rows: typeof g): string[][] => rows.slice(1).map((r) => r.map((f) => (f.quoted ? `"${f.value}"` : f.value)));
    compare(shown(g), shown(w), { masked: [2], nulled: [3], nullAs: "", detected: [4] });
    expect(got).toContain('"multi\nline, ""quoted""\ttab \\ and more"');
  });

  it("a custom delimiter and NULL string", async () => {
    const sql = "copy customers (id, born, email, score) to stdout with (delimiter '|', null 'NIL')";
    const [got, want] = await Promise.all([viaGateway(["-c", sql]), direct(sql)]);
    expectNoClearEmail(got);
    compare(textRows(got, "|"), textRows(want, "|"), { masked: [2], nulled: [1], nullAs: "NIL" });
  });

  it("COPY (query): the query's columns get the same rules as a SELECT's, through views too", async () => {
    const sql = "copy (select c.name, c.email, c.id from customers c where c.id <= 10 order by c.id) to stdout";
    const [got, want] = await Promise.all([viaGateway(["-c", sql]), direct(sql)]);
    expectNoClearEmail(got);
    compare(textRows(got), textRows(want), { masked: [1], nullAs: "\\N" });
    const view = "copy (select * from customer_contacts order by id) to stdout with (format csv)";
    const [gv, wv] = await Promise.all([viaGateway(["-c", view]), direct(view)]);
    expectNoClearEmail(gv);
    compare(
      csvRows(gv).map((r) => r.map((f) => f.value)),
      csvRows(wv).map((r) => r.map((f) => f.value)),
      { masked: [1], nullAs: "" },
    );
  });

  it("the session's search_path cannot move a COPY off a masked table (table and query forms)", async () => {
    const got = await viaGateway([
      "-c",
      "set search_path = vault, public",
      "-c",
      "copy (select id, secret from accounts order by id) to stdout",
      "-c",
      "copy accounts (id, secret) to stdout",
      "-c",
      "copy accounts to stdout with (format csv)",
    ]);
    expect(got).not.toContain("S3CRET");
    const lines = got.split("\n").filter((l) => l !== "SET");
    const rows = [...textRows(lines.slice(0, 6).join("\n")), ...csvRows(lines.slice(6).join("\n")).map((r) => r.map((f) => f.value))];
    expect(rows).toHaveLength(9);
    for (const r of rows) expect(r[1]).toMatch(TOKEN);
  });

  it("a table without masked columns is passed unchanged, in CSV and in binary format", async () => {
    for (const sql of ["copy orders to stdout with (format csv, header)", "copy orders to stdout with (format binary)"]) {
      const [got, want] = await Promise.all([viaGateway(["-c", sql]), direct(sql)]);
      expect(got).toBe(want);
    }
  });

  it("a COPY whose format the gateway cannot tell is refused, not passed", async () => {
    const r = await t.psql("shop", token, ["-c", "copy customers to stdout with (format csv, encoding 'LATIN1')"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("airlock:");
    expect(r.stderr).toContain("ENCODING LATIN1");
    expectNoClearEmail(r.stdout);
    // Refused before the client enters COPY mode, and the session goes on.
    const out = await rawSession({
      port: t.pgPort,
      database: "shop",
      password: token,
      bytes: Buffer.concat([serialize.query("copy customers (id, email) to stdout with (encoding 'LATIN1')"), serialize.query("select 'still-here'")]),
      readyCount: 2,
    });
    const text = out.toString("latin1");
    expectNoClearEmail(text);
    expect(text).toContain("airlock:");
    expect(text).toContain("still-here");
    expect(messageTypes(out)).not.toContain("H");
  });
});

describe("COPY TO STDOUT through other clients", () => {
  it("a raw protocol client: CopyData rows are masked, the stream stays well-formed", async () => {
    const out = await rawSession({
      port: t.pgPort,
      database: "shop",
      password: token,
      bytes: Buffer.concat([serialize.query("copy customers (id, email, note) to stdout"), serialize.query("select 'after-copy'")]),
      readyCount: 2,
    });
    const types: string[] = [];
    const data: string[] = [];
    for (let i = 0; i + 5 <= out.length; ) {
      const len = out.readInt32BE(i + 1);
      const type = String.fromCharCode(out[i] ?? 0);
      types.push(type);
      if (type === "d") data.push(out.subarray(i + 5, i + 1 + len).toString("utf8"));
      i += 1 + len;
    }
    expect(types.slice(0, 1)).toEqual(["H"]);
    expect(types).toContain("c");
    expect(data).toHaveLength(ROWS);
    expectNoClearEmail(out.toString("latin1"));
    for (const line of data) {
      const [, email] = line.split("\t");
      expect(email).toMatch(TOKEN);
    }
    expect(out.toString("latin1")).toContain("COPY 30");
    expect(out.toString("latin1")).toContain("after-copy");
  });

  it("a COPY through the extended protocol (Parse/Bind/Execute) is masked too", async () => {
    const out = await rawSession({
      port: t.pgPort,
      database: "shop",
      password: token,
      bytes: Buffer.concat([
        serialize.parse({ text: "copy customers (id, email) to stdout with (format csv)" }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.sync(),
      ]),
      readyCount: 1,
    });
    expectNoClearEmail(out.toString("latin1"));
    const types = messageTypes(out);
    expect(types.filter((x) => x === "d")).toHaveLength(ROWS);
    expect(out.toString("latin1")).toMatch(/\n?1,\[[A-Z_]+\]\n/);
  });

  it("psycopg 3 binary COPY: masked columns masked (born NULL), other columns identical", async () => {
    const script = (dsn: string): string => `
import json, psycopg
with psycopg.connect(${JSON.stringify(dsn)}) as conn:
    cur = conn.cursor()
    out = []
    with cur.copy("COPY customers (id, name, email, born, note, score) TO STDOUT (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "text", "text", "date", "text", "numeric"])
        for row in copy.rows():
            out.append([None if v is None else str(v) for v in row])
    with cur.copy("COPY (select id, email from customers order by id) TO STDOUT (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "text"])
        for row in copy.rows():
            out.append([None if v is None else str(v) for v in row])
    print(json.dumps(out))
`;
    const gw = `host=127.0.0.1 port=${t.pgPort} dbname=shop user=agent password=${token} sslmode=disable`;
    const tg = `host=127.0.0.1 port=${server.port} dbname=shop user=app password=app-password sslmode=disable`;
    const [a, b] = await Promise.all([runClient("/usr/bin/python3", ["-c", script(gw)], { timeoutMs: 60_000 }), runClient("/usr/bin/python3", ["-c", script(tg)], { timeoutMs: 60_000 })]);
    expect(a.stderr).toBe("");
    expect(b.stderr).toBe("");
    const got = JSON.parse(a.stdout) as (string | null)[][];
    const want = JSON.parse(b.stdout) as (string | null)[][];
    expectNoClearEmail(a.stdout);
    expect(got).toHaveLength(2 * ROWS);
    got.forEach((row, r) => {
      const w = want[r] ?? [];
      if (r < ROWS) {
        expect(row[0]).toBe(w[0]);
        expect(row[1]).toBe(w[1]);
        expect(row[2]).toMatch(TOKEN);
        expect(row[3]).toBeNull();
        expect(row[4]).toBe(w[4] === null || w[4] === undefined ? w[4] : w[4].replace(/[a-z0-9]+@[a-z.]+/g, "[EMAIL]"));
        expect(row[5]).toBe(w[5]);
      } else {
        expect(row[0]).toBe(w[0]);
        expect(row[1]).toMatch(TOKEN);
      }
    });
  });

  it("pg_dump of a table with masked columns dumps masked data", async () => {
    const env = { ...process.env, PGPASSWORD: token };
    const dump = await runClient("pg_dump", ["-h", "127.0.0.1", "-p", String(t.pgPort), "-U", "agent", "-d", "shop", "--no-owner", "-t", "customers"], { env, timeoutMs: 60_000 });
    expect(dump.stderr).toBe("");
    expect(dump.code).toBe(0);
    expect(dump.stdout).toContain("COPY public.customers (id, name, email, born, note, score) FROM stdin;");
    expectNoClearEmail(dump.stdout);
    const data = dump.stdout.split("FROM stdin;\n")[1]?.split("\n\\.\n")[0] ?? "";
    const rows = textRows(data);
    expect(rows).toHaveLength(ROWS);
    for (const r of rows) {
      expect(r[2]).toMatch(TOKEN);
      expect(r[3]).toBe("\\N");
    }
    expect(rows[0]?.[1]).toBe("customer 1");
  });
});
