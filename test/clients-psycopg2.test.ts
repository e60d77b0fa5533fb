/**
 * psycopg2 (libpq underneath, Debian's python3-psycopg2) through the gateway: what issue 12 fixed
 * that this client meets — masked columns, a denied statement that leaves the session usable,
 * start-up options (`options='-c …'`, `--search_path`, a protected setting refused with a FATAL
 * naming it), `conn.cancel()` landing only on its own statement, a statement held for approval,
 * and the row limit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_ROWS, ROWS, TIMEOUT_MESSAGE, runScript, startClientsFixture, type ClientsFixture } from "./harness/clients.js";

const PY = "/usr/bin/python3";
let f: ClientsFixture;

beforeAll(async () => {
  f = await startClientsFixture();
}, 240_000);

afterAll(async () => {
  await f.stop();
});

/** A Python script run with psycopg2 imported and `connect(**kw)` connecting to the gateway. */
function py(body: string, env: NodeJS.ProcessEnv = {}): ReturnType<typeof runScript> {
  const script = `
import json, os, sys, threading, time
import psycopg2, psycopg2.extensions
def out(**kw): print(json.dumps(kw, default=str), flush=True)
def connect(**kw): return psycopg2.connect(**kw)
${body}
`;
  return runScript(PY, ["-c", script], f, { env });
}

function line(lines: Record<string, unknown>[], key: string): Record<string, unknown> {
  const l = lines.find((x) => x["k"] === key);
  if (l === undefined) throw new Error(`no output line ${key}`);
  return l;
}

describe("psycopg2 through the gateway", () => {
  it("masks the masked columns (text and integer), in plain and parameterized queries", async () => {
    const r = await py(`
c = connect(); cur = c.cursor()
cur.execute("select id, name, email, score from customers where id <= 3 order by id")
out(k="plain", rows=cur.fetchall())
for i in range(10):
    cur.execute("select email, score from customers where id = %s", (i + 1,))
    row = cur.fetchone()
    out(k="param", i=i, email=row[0], score=row[1])
`);
    expect(r.stderr).toBe("");
    const plain = line(r.lines, "plain")["rows"] as [number, string, string, number | null][];
    expect(plain.map((x) => x[0])).toEqual([1, 2, 3]);
    for (const [, name, email, score] of plain) {
      expect(name).toMatch(/^name \d$/);
      expect(email).not.toContain("@example.com");
      expect(score).toBeNull();
    }
    const params = r.lines.filter((x) => x["k"] === "param");
    expect(params).toHaveLength(10);
    for (const p of params) {
      expect(String(p["email"])).not.toContain("@example.com");
      expect(p["score"]).toBeNull();
    }
  });

  it("a denied statement gives a clear error naming its rule, and the session goes on", async () => {
    const r = await py(`
c = connect(); c.autocommit = True; cur = c.cursor()
try:
    cur.execute("drop table orders")
    out(k="drop", ok=True)
except psycopg2.Error as e:
    out(k="drop", ok=False, code=e.pgcode, msg=e.pgerror)
try:
    cur.execute("select * from app.secrets")
    out(k="secrets", ok=True)
except psycopg2.Error as e:
    out(k="secrets", ok=False, code=e.pgcode, msg=e.pgerror)
cur.execute("select count(*) from orders")
out(k="after", n=cur.fetchone()[0])
`);
    expect(r.stderr).toBe("");
    expect(line(r.lines, "drop")).toMatchObject({ ok: false, code: "42501" });
    expect(String(line(r.lines, "drop")["msg"])).toMatch(/airlock: DROP is not allowed here.*no-drop/s);
    expect(line(r.lines, "secrets")).toMatchObject({ ok: false, code: "42501" });
    expect(String(line(r.lines, "secrets")["msg"])).toContain("no-app-secrets");
    expect(line(r.lines, "after")["n"]).toBe(20);
    expect(await f.target("select count(*) from orders")).toBe("20");
  });

  it("start-up options: -c statement_timeout, --search_path (resolved by the guardrails), and a protected setting refused by name", async () => {
    const r = await py(`
c = connect(options="-c statement_timeout=1234 --search_path=app,public"); cur = c.cursor()
cur.execute("show statement_timeout"); out(k="timeout", v=cur.fetchone()[0])
cur.execute("show search_path"); out(k="path", v=cur.fetchone()[0])
try:
    cur.execute("select * from secrets")
    out(k="secrets", ok=True, rows=cur.fetchall())
except psycopg2.Error as e:
    out(k="secrets", ok=False, code=e.pgcode, msg=e.pgerror)
try:
    connect(options="-c role=postgres")
    out(k="role", ok=True)
except psycopg2.OperationalError as e:
    out(k="role", ok=False, msg=str(e))
`);
    expect(r.stderr).toBe("");
    expect(line(r.lines, "timeout")["v"]).toBe("1234ms");
    expect(line(r.lines, "path")["v"]).toBe("app,public");
    expect(line(r.lines, "secrets")).toMatchObject({ ok: false, code: "42501" });
    expect(String(line(r.lines, "secrets")["msg"])).toContain("no-app-secrets");
    expect(String(line(r.lines, "role")["msg"])).toMatch(/FATAL: +airlock: role is set by the gateway/);
  });

  it("statement_timeout is the client's to set (options, SET); the policy's statementTimeout is still enforced by the gateway", async () => {
    const r = await py(`
c = connect(options="-c statement_timeout=60000"); c.autocommit = True; cur = c.cursor()
cur.execute("show statement_timeout"); out(k="show", v=cur.fetchone()[0])
for how in ("options", "set"):
    if how == "set":
        cur.execute("set statement_timeout = 0")
    try:
        cur.execute("select pg_sleep(20)")
        out(k=how, ok=True)
    except psycopg2.extensions.QueryCanceledError as e:
        out(k=how, ok=False, code=e.pgcode, msg=e.pgerror)
    cur.execute("select 5"); out(k=how + "-after", v=cur.fetchone()[0])
`);
    expect(r.stderr).toBe("");
    expect(line(r.lines, "show")["v"]).toBe("1min");
    for (const how of ["options", "set"]) {
      expect(line(r.lines, how)).toMatchObject({ ok: false, code: "57014" });
      expect(String(line(r.lines, how)["msg"])).toContain(TIMEOUT_MESSAGE);
      expect(line(r.lines, `${how}-after`)["v"]).toBe(5);
    }
  }, 60_000);

  it("conn.cancel() cancels only its own statement, never the next one (20 tries, cancel near the end)", async () => {
    const r = await py(`
c = connect(); c.autocommit = True; cur = c.cursor()
bad = 0; cancelled = 0
for i in range(20):
    res = {}
    def run():
        try:
            cur.execute("select pg_sleep(%s)", (0.02 + (i % 5) * 0.01,))
            res["ok"] = True
        except psycopg2.extensions.QueryCanceledError:
            res["ok"] = False
    th = threading.Thread(target=run); th.start()
    time.sleep(0.02 + (i % 5) * 0.01)
    c.cancel()
    th.join()
    if not res["ok"]: cancelled += 1
    try:
        cur.execute("select %s::int", (i,))
        if cur.fetchone()[0] != i: bad += 1
    except psycopg2.Error as e:
        bad += 1
        out(k="late", i=i, code=e.pgcode)
# a long statement is cancelled
res = {}
def long():
    try:
        cur.execute("select pg_sleep(30)"); res["ok"] = True
    except psycopg2.extensions.QueryCanceledError as e:
        res["ok"] = False; res["code"] = e.pgcode
th = threading.Thread(target=long); th.start(); time.sleep(0.5); c.cancel(); th.join()
cur.execute("select 42"); 
out(k="summary", bad=bad, cancelled=cancelled, long=res, after=cur.fetchone()[0])
`);
    expect(r.stderr).toBe("");
    const s = line(r.lines, "summary");
    expect(r.lines.filter((x) => x["k"] === "late")).toEqual([]);
    expect(s["bad"]).toBe(0);
    expect(s["long"]).toEqual({ ok: false, code: "57014" });
    expect(s["after"]).toBe(42);
  }, 120_000);

  it("a DELETE held for approval waits, and runs once a person approves it", async () => {
    const run = py(`
c = connect(); c.autocommit = True; cur = c.cursor()
cur.execute("delete from orders where id = %s", (20,))
out(k="deleted", n=cur.rowcount, notices=c.notices)
`);
    const id = await f.pending("delete from orders where id =");
    expect(await f.target("select count(*) from orders where id = 20")).toBe("1");
    await f.approve(id);
    const r = await run;
    expect(r.stderr).toBe("");
    expect(line(r.lines, "deleted")["n"]).toBe(1);
    expect(String(line(r.lines, "deleted")["notices"])).toContain("waiting for approval");
    expect(await f.target("select count(*) from orders where id = 20")).toBe("0");
  }, 60_000);

  it("a result past the row limit is cut, with a notice, and the session goes on", async () => {
    const r = await py(`
c = connect(); c.autocommit = True; cur = c.cursor()
cur.execute("select id, email from customers order by id")
rows = cur.fetchall()
out(k="cut", n=len(rows), notices=c.notices, clear=sum(1 for x in rows if "@example.com" in x[1]))
cur.execute("select 1"); out(k="after", v=cur.fetchone()[0])
`);
    expect(r.stderr).toBe("");
    expect(line(r.lines, "cut")).toMatchObject({ n: MAX_ROWS, clear: 0 });
    expect(ROWS).toBeGreaterThan(MAX_ROWS);
    expect(String(line(r.lines, "cut")["notices"])).toContain(`cut at ${MAX_ROWS} rows`);
    expect(line(r.lines, "after")["v"]).toBe(1);
  });
});
