/**
 * Attacks on approvals and grants (issue 5 review), through the real wire: a real
 * PostgreSQL, the real gateway, node-postgres and a raw protocol client for what drivers
 * won't send.
 */
import pg from "pg";
import { serialize } from "pg-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEntries, renderEntry } from "../src/cli/format.js";
import { rawSession } from "./harness/raw-pg.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";

let server: PgServer;
let t: TestGateway;
const tokens: Record<string, string> = {};

interface ApprovalJson {
  id: string;
  status: string;
  statement?: string;
  params?: (string | null)[];
  usedAt?: string;
}

function client(token: string): pg.Client {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "agent", password: token });
  c.on("error", () => undefined);
  return c;
}

async function listRequests(query = "", token?: string): Promise<ApprovalJson[]> {
  const r = await t.api(`/v1/approvals${query}`, token === undefined ? {} : { token });
  expect(r.status).toBe(200);
  return (r.body as { requests: ApprovalJson[] }).requests;
}

function pending(text: string): Promise<ApprovalJson> {
  return until(`a pending request for "${text}"`, async () => (await listRequests("?status=pending")).find((r) => r.statement?.includes(text) === true));
}

function decide(id: string, as: string, vote: "approve" | "deny", reason?: string): ReturnType<TestGateway["api"]> {
  return t.api(`/v1/approvals/${id}/${vote}`, { token: tokens[as] ?? "", body: reason === undefined ? {} : { reason } });
}

async function refusal(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error("expected a refusal");
}

async function value(sql: string): Promise<string> {
  return (await server.psql(sql, { database: "orders" })).trim();
}

/** The messages of a raw exchange: type letter plus, for errors, the message field and, for completions, the tag. */
function messages(buf: Buffer): { type: string; text: string }[] {
  const out: { type: string; text: string }[] = [];
  let at = 0;
  while (at + 5 <= buf.length) {
    const type = String.fromCharCode(buf[at] ?? 0);
    const len = buf.readInt32BE(at + 1);
    const body = buf.subarray(at + 5, at + 1 + len);
    let text = "";
    if (type === "E" || type === "N") {
      for (const field of body.toString("utf8").split("\0")) if (field.startsWith("M")) text = field.slice(1);
    } else if (type === "C") text = body.toString("utf8").replace(/\0$/, "");
    else if (type === "D" && body.readInt16BE(0) > 0) {
      const len = body.readInt32BE(2);
      text = len < 0 ? "NULL" : body.subarray(6, 6 + len).toString("utf8");
    }
    out.push({ type, text });
    at += 1 + len;
  }
  return out;
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["orders"] });
  await server.psql(
    `create table rt (id int primary key, n int not null default 0);
     insert into rt select g, 0 from generate_series(1, 40) g;
     create table rt_async (id int);
     alter table rt owner to app; alter table rt_async owner to app;`,
    { database: "orders" },
  );
  t = await startTestGateway({
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "other-agent", groups: ["agents"] },
      { name: "dba1", groups: ["dba"] },
      { name: "dba2", groups: ["dba"] },
    ],
    connections: [
      { name: "orders", type: "postgres", host: "127.0.0.1", port: server.port, database: "orders", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
    ],
    policies: [
      { name: "async-writes", match: { relations: ["rt_async"], operations: ["insert", "update", "delete"] }, action: "require_approval", approvers: ["dba"], mode: "async" },
      { name: "writes-need-approval", match: { operations: ["update", "delete", "insert"] }, action: "require_approval", approvers: ["dba"] },
    ],
  });
  for (const sa of ["agent", "other-agent", "dba1", "dba2"]) tokens[sa] = await t.mint(sa, "1h");
});

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("a prepared statement held for approval (extended protocol: decided at each Bind, with its values)", () => {
  it("needs an approval per execution: re-executing the named statement with other values is held again (node-postgres)", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    c.on("notice", () => undefined);
    const text = "update rt set n = n + 1 where id = $1 returning id, n";
    const first = c.query<{ id: number; n: number }>({ name: "bump", text, values: [1] });
    const req = await pending("update rt set n = n + 1 where id = $1");
    expect(req.params).toEqual(["1"]);
    expect((await decide(req.id, "dba1", "approve")).status).toBe(200);
    expect((await first).rows).toEqual([{ id: 1, n: 1 }]);
    // node-postgres knows "bump" is prepared: it sends only Bind/Execute now. Not covered by
    // the first approval: a new request, showing the new value.
    const second = refusal(c.query({ name: "bump", text, values: [2] }));
    const req2 = await until("a second request", async () => (await listRequests("?status=pending")).find((r) => r.statement === text && r.id !== req.id));
    expect(req2.params).toEqual(["2"]);
    expect(await value("select n from rt where id = 2")).toBe("0");
    expect((await decide(req2.id, "dba1", "deny", "not that one")).status).toBe(200);
    const e = await second;
    expect(e.code).toBe("42501");
    expect(e.message).toContain(req2.id);
    expect(await value("select n from rt where id = 2")).toBe("0");
    // The session stays usable, and the prepared statement too: a third execution, approved, runs.
    expect((await c.query<{ one: number }>("select 1 as one")).rows).toEqual([{ one: 1 }]);
    const third = c.query<{ id: number; n: number }>({ name: "bump", text, values: [5] });
    const req3 = await until("a third request", async () => (await listRequests("?status=pending")).find((r) => r.statement === text && r.params?.[0] === "5"));
    expect((await decide(req3.id, "dba2", "approve")).status).toBe(200);
    expect((await third).rows).toEqual([{ id: 5, n: 1 }]);
    expect(await value("select n from rt where id = 1")).toBe("1");
    await c.end();
  });

  it("pipelined Binds of one statement are decided one by one, in order, and a denied one skips only its batch (raw protocol)", async () => {
    const sql = "update rt set n = n + 10 where id = $1";
    const bytes = Buffer.concat([
      serialize.parse({ name: "", text: sql, types: [] }),
      serialize.bind({ portal: "", statement: "", values: ["3"] }),
      serialize.execute({ portal: "" }),
      serialize.sync(),
      serialize.bind({ portal: "", statement: "", values: ["4"] }),
      serialize.execute({ portal: "" }),
      serialize.sync(),
      serialize.query("select n from rt where id = 4"),
    ]);
    const run = rawSession({ port: t.pgPort, database: "orders", password: tokens["agent"] ?? "", bytes, readyCount: 3 });
    const req = await pending(sql);
    expect(req.params).toEqual(["3"]);
    // The second Bind waits behind the first: no request for it yet, nothing ran.
    await new Promise((r) => setTimeout(r, 200));
    expect((await listRequests("?status=pending")).filter((r) => r.statement === sql)).toHaveLength(1);
    expect(await value("select n from rt where id = 3")).toBe("0");
    expect((await decide(req.id, "dba2", "approve")).status).toBe(200);
    const req2 = await until("the second Bind's request", async () => (await listRequests("?status=pending")).find((r) => r.statement === sql && r.id !== req.id));
    expect(req2.params).toEqual(["4"]);
    expect(await value("select n from rt where id = 3")).toBe("10");
    expect((await decide(req2.id, "dba2", "deny")).status).toBe(200);
    const out = messages(await run);
    // Responses in the order sent: the first batch's result, the second's refusal, then the query
    // behind it, which sees row 4 untouched.
    expect(out.filter((m) => ["C", "E", "Z"].includes(m.type)).map((m) => `${m.type}${m.type === "E" ? "" : m.text.replace(/[IT]$/, "")}`)).toEqual([
      "CUPDATE 1",
      "Z",
      "E",
      "Z",
      "CSELECT 1",
      "Z",
    ]);
    expect(out.find((m) => m.type === "E")?.text).toContain(req2.id);
    expect(out.find((m) => m.type === "D")?.text).toBe("0");
    expect(await value("select n from rt where id = 3")).toBe("10");
    expect(await value("select n from rt where id = 4")).toBe("0");
    // The recording has each decision at its Bind, with its values (`airlock sessions show`).
    const shown = await until("the session's recording", async () => {
      const list = (await t.api("/v1/sessions?limit=100")).body as { sessions: { id: string }[] };
      for (const { id } of list.sessions) {
        const r = (await t.api(`/v1/sessions/${id}`)).body as { recording: unknown[] };
        const lines = parseEntries(r.recording).flatMap((e) => (e === undefined ? [] : renderEntry(e)));
        if (lines.some((l) => l.includes(sql)) && lines.some((l) => l.includes("execute deny"))) return lines.join("\n");
      }
      return undefined;
    });
    expect(shown).toMatch(/execute allow[^\n]*\n[^\n]*update rt set n = n \+ 10[\s\S]*params: \$1='3'/);
    expect(shown).toMatch(/execute deny[^\n]*\n[^\n]*update rt set n = n \+ 10[^\n]*\n {4}params: \$1='4'/);
  });

  it("an async approval covers exactly the values it showed: other values are refused, the same values run once (node-postgres)", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const text = "insert into rt_async values ($1)";
    const first = await refusal(c.query({ name: "ins", text, values: [1] }));
    expect(first.code).toBe("42501");
    expect(first.message).toContain("send the identical statement with the same parameters again");
    const id = /approval (apr_\w+) requested/.exec(first.message)?.[1] ?? "";
    expect(id).not.toBe("");
    expect((await listRequests()).find((r) => r.id === id)?.params).toEqual(["1"]);
    expect((await decide(id, "dba1", "approve")).status).toBe(200);
    // The Parse went through ("ins" exists): node-postgres now sends only Bind/Execute.
    const other = await refusal(c.query({ name: "ins", text, values: [8] }));
    expect(other.code).toBe("42501");
    expect(other.message).not.toContain(id);
    expect(await value("select count(*) from rt_async where id in (1, 8)")).toBe("0");
    expect((await c.query({ name: "ins", text, values: [1] })).rowCount).toBe(1);
    const again = await refusal(c.query({ name: "ins", text, values: [1] }));
    expect(again.code).toBe("42501");
    expect(await value("select count(*) from rt_async where id in (1, 8)")).toBe("1");
    await c.end();
  });

  it("an async approval of a long value does not cover another long value that differs only past the displayed cap", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const text = "insert into rt_async select length($1::text)";
    const long = "v".repeat(5000);
    const first = await refusal(c.query(text, [`${long}a`]));
    const id = /approval (apr_\w+) requested/.exec(first.message)?.[1] ?? "";
    const shown = (await listRequests()).find((r) => r.id === id)?.params?.[0] ?? "";
    // What approvers read is capped; what the approval is bound to is not.
    expect(shown.length).toBeLessThan(5000);
    expect((await decide(id, "dba1", "approve")).status).toBe(200);
    const other = await refusal(c.query(text, [`${long}b`]));
    expect(other.message).not.toContain(id);
    expect((await c.query(text, [`${long}a`])).rowCount).toBe(1);
    expect(await value("select count(*) from rt_async where id = 5001")).toBe("1");
    await c.end();
  });
});

describe("a held statement and the client's pipelined messages", () => {
  it("run after it, in order: a query sent behind a held delete sees its effect", async () => {
    const bytes = Buffer.concat([serialize.query("delete from rt where id = 31"), serialize.query("select count(*) from rt where id = 31")]);
    const run = rawSession({ port: t.pgPort, database: "orders", password: tokens["agent"] ?? "", bytes, readyCount: 2 });
    const req = await pending("delete from rt where id = 31");
    // Held: nothing of it ran yet.
    expect(await value("select count(*) from rt where id = 31")).toBe("1");
    expect((await decide(req.id, "dba1", "approve")).status).toBe(200);
    const out = messages(await run);
    expect(out.filter((m) => m.type === "C").map((m) => m.text)).toEqual(["DELETE 1", "SELECT 1"]);
    expect(out.find((m) => m.type === "D")?.text).toBe("0");
    expect(out.findIndex((m) => m.type === "N")).toBe(0);
  });
});

describe("an approved SQL-level PREPARE", () => {
  it("does not approve its EXECUTEs: each one is held again", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const prep = c.query("prepare del_rt (int) as delete from rt where id = $1");
    const req = await pending("prepare del_rt");
    expect((await decide(req.id, "dba1", "approve")).status).toBe(200);
    await prep;
    c.on("notice", () => undefined);
    const exec = refusal(c.query("execute del_rt(20)"));
    const held = await pending("execute del_rt(20)");
    expect((await decide(held.id, "dba1", "deny", "no")).status).toBe(200);
    expect((await exec).code).toBe("42501");
    expect(await value("select count(*) from rt where id = 20")).toBe("1");
    await c.end();
  });
});

describe("a SQL-level PREPARE bound through the extended protocol", () => {
  it("is held at each Bind like its EXECUTE: approving the PREPARE approves no execution", async () => {
    const bytes = Buffer.concat([
      serialize.query("prepare del_bound (int) as delete from rt where id = $1"),
      serialize.bind({ portal: "", statement: "del_bound", values: ["33"] }),
      serialize.execute({ portal: "" }),
      serialize.sync(),
    ]);
    const run = rawSession({ port: t.pgPort, database: "orders", password: tokens["agent"] ?? "", bytes, readyCount: 2 });
    const req = await pending("prepare del_bound");
    expect((await decide(req.id, "dba1", "approve")).status).toBe(200);
    const held = await until("the Bind's request", async () => (await listRequests("?status=pending")).find((r) => r.params?.[0] === "33"));
    expect(held.statement).toContain("del_bound");
    expect(await value("select count(*) from rt where id = 33")).toBe("1");
    expect((await decide(held.id, "dba1", "deny")).status).toBe(200);
    const out = messages(await run);
    expect(out.filter((m) => m.type === "E").map((m) => m.text).join()).toContain(held.id);
    expect(await value("select count(*) from rt where id = 33")).toBe("1");
  });
});

describe("single use under races", () => {
  it("two sessions re-sending an approved async statement at the same time: exactly one runs", async () => {
    const sql = "delete from rt_async where id = 7";
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const first = await refusal(c.query(sql));
    const id = /approval (apr_\w+) requested/.exec(first.message)?.[1] ?? "";
    expect((await decide(id, "dba1", "approve")).status).toBe(200);
    const sessions = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const s = client(tokens["agent"] ?? "");
        await s.connect();
        return s;
      }),
    );
    const results = await Promise.allSettled(sessions.map((s) => s.query(sql)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(results.filter((r) => r.status === "rejected")).toHaveLength(5);
    await Promise.all([...sessions, c].map((s) => s.end()));
  });

  it("a decided request cannot be decided again: deny after approve, a second vote, and a late vote answer 409", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const first = await refusal(c.query("update rt_async set id = 99 where id = 12345"));
    const id = /approval (apr_\w+) requested/.exec(first.message)?.[1] ?? "";
    const approvals = await Promise.all([decide(id, "dba1", "approve"), decide(id, "dba2", "deny")]);
    expect(approvals.map((r) => r.status).sort()).toEqual([200, 409]);
    expect((await decide(id, "dba1", "deny")).status).toBe(409);
    await c.end();
  });
});

describe("who sees and decides", () => {
  it("another principal neither sees, lists nor decides a request, and the requester cannot decide it", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const first = await refusal(c.query("delete from rt_async where id = 555"));
    const id = /approval (apr_\w+) requested/.exec(first.message)?.[1] ?? "";
    expect((await t.api(`/v1/approvals/${id}`, { token: tokens["other-agent"] ?? "" })).status).toBe(404);
    expect((await listRequests("", tokens["other-agent"])).some((r) => r.id === id)).toBe(false);
    // Not an approver at all: the decide routes refuse before looking the request up.
    expect((await decide(id, "other-agent", "approve")).status).toBe(403);
    expect((await decide(id, "agent", "approve")).status).toBe(403);
    expect((await t.api(`/v1/approvals/${id}`, { token: tokens["agent"] ?? "" })).status).toBe(200);
    await c.end();
  });
});
