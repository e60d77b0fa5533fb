/**
 * An approval is for what the statement does when it runs, not for its text (issue 12): a held
 * statement's names are resolved on the target when the request is made (shown to approvers),
 * and again when the approved statement is released; if they now resolve to other objects
 * (another session created `app.orders` earlier on the search_path, the session changed its
 * search_path, a relation was dropped and created again), it is refused, and nothing runs.
 * A real PostgreSQL 15, the real gateway, psql and node-postgres; decisions through the API.
 */
import { PassThrough } from "node:stream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/cli/cli.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";

let server: PgServer;
let t: TestGateway;
const tokens: Record<string, string> = {};

interface ObjectsJson {
  searchPath: string;
  objects: { kind: string; name: string; resolved: { oid: number; qualified: string }[] }[];
}

interface ApprovalJson {
  id: string;
  status: string;
  statement?: string;
  summary?: { operations: string[]; relations: string[]; objects?: ObjectsJson };
}

function client(token: string): pg.Client {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "shop", user: "agent", password: token });
  c.on("error", () => undefined);
  c.on("notice", () => undefined);
  return c;
}

async function listRequests(query = ""): Promise<ApprovalJson[]> {
  const r = await t.api(`/v1/approvals${query}`);
  expect(r.status).toBe(200);
  return (r.body as { requests: ApprovalJson[] }).requests;
}

function pending(text: string): Promise<ApprovalJson> {
  return until(`a pending request for "${text}"`, async () => (await listRequests("?status=pending")).find((r) => r.statement?.includes(text) === true));
}

function approve(id: string): ReturnType<TestGateway["api"]> {
  return t.api(`/v1/approvals/${id}/approve`, { token: tokens["dba1"] ?? "", body: {} });
}

async function refusal(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error("expected a refusal");
}

/** Run SQL on the target directly (as the superuser): another session. */
async function direct(sql: string): Promise<string> {
  return (await server.psql(sql, { database: "shop" })).trim();
}

async function cli(args: string[], token: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await runCli([...args, "--api", t.apiUrl], { stdout, stderr, env: { AIRLOCK_TOKEN: token }, cwd: t.dataDir });
  return { code, stdout: out, stderr: err };
}

/** The statement's final audit record (db.query) for this approval. */
async function finalAudit(approvalId: string): Promise<{ decision?: string; rule?: string; message?: string } | undefined> {
  await t.gw.audit.flush();
  const audit = await t.api("/v1/audit?limit=1000");
  const records = (audit.body as { records: { type: string; decision?: string; rule?: string; message?: string; details?: Record<string, unknown> }[] }).records;
  return records.filter((r) => r.type === "db.query" && r.details?.["approvalId"] === approvalId).at(-1);
}

function relation(name: string, qualified: string): { kind: string; name: string; resolved: { oid: number; qualified: string }[] } {
  return { kind: "relation", name, resolved: [{ oid: expect.any(Number) as number, qualified }] };
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["shop"] });
  const tables = ["orders", "items", "ledger", "accounts", "acc2", "stock", "stock2", "recreated", "notes"];
  await server.psql(
    `create schema app; create schema side;
     alter schema app owner to app; alter schema side owner to app;
     ${tables.map((n) => `create table public.${n} (id int primary key, note text); insert into public.${n} select g, 'public' from generate_series(1, 9) g; alter table public.${n} owner to app;`).join("\n")}
     create table side.ledger (id int primary key, note text); insert into side.ledger select g, 'side' from generate_series(1, 9) g; alter table side.ledger owner to app;
     create function public.f_note(text) returns text language sql immutable as $$ select upper($1) $$;
     alter function public.f_note(text) owner to app;
     alter role app set search_path = app, public;`,
    { database: "shop" },
  );
  t = await startTestGateway({
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "dba1", groups: ["dba"] },
    ],
    connections: [
      { name: "shop", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
    ],
    policies: [
      { name: "ledger-async", match: { relations: ["ledger"], operations: ["delete"] }, action: "require_approval", approvers: ["dba"], mode: "async" },
      { name: "writes", match: { operations: ["delete", "update"] }, action: "require_approval", approvers: ["dba"] },
    ],
  });
  for (const sa of ["agent", "dba1"]) tokens[sa] = await t.mint(sa, "1h");
}, 300_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("a held statement is bound to the objects its names resolve to", () => {
  it("psql: another session creates app.orders (earlier on the search_path) before the approval: refused, nothing deleted anywhere", async () => {
    const run = t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", "delete from orders where id = 1"]);
    const req = await pending("delete from orders where id = 1");
    await direct("create table app.orders (like public.orders including all); insert into app.orders select * from public.orders; alter table app.orders owner to app");
    expect((await approve(req.id)).status).toBe(200);
    const r = await run;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("airlock: approval no longer matches: orders now resolves to app.orders (approved: public.orders)");
    expect(await direct("select count(*) from public.orders where id = 1")).toBe("1");
    expect(await direct("select count(*) from app.orders where id = 1")).toBe("1");
    // Audited as a deny naming the rule.
    const rec = await finalAudit(req.id);
    expect(rec).toMatchObject({ decision: "deny", rule: "writes" });
    expect(rec?.message).toContain("no longer matches");
    // Approvers saw what the statement acts on (API and CLI).
    const r2 = await t.api(`/v1/approvals/${req.id}`);
    expect((r2.body as { request: ApprovalJson }).request.summary?.objects).toEqual({ searchPath: "app, public", objects: [relation("orders", "public.orders")] });
    const shown = await cli(["approvals", "show", req.id], tokens["dba1"] ?? "");
    expect(shown.stdout).toContain("resolves    orders → public.orders");
  });

  it("an approval whose objects did not change still runs (node-postgres)", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const q = c.query("delete from items where id = 1");
    const req = await pending("delete from items where id = 1");
    expect(req.summary?.objects?.objects).toEqual([relation("items", "public.items")]);
    expect((await approve(req.id)).status).toBe(200);
    expect((await q).rowCount).toBe(1);
    expect(await direct("select count(*) from public.items where id = 1")).toBe("0");
    await c.end();
  });

  it("a relation dropped and created again under the same name is another relation (OID): refused", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const q = refusal(c.query("delete from recreated where id = 1"));
    const req = await pending("delete from recreated where id = 1");
    await direct("drop table public.recreated; create table public.recreated (id int primary key, note text); insert into public.recreated select g, 'new' from generate_series(1, 9) g; alter table public.recreated owner to app");
    expect((await approve(req.id)).status).toBe(200);
    const e = await q;
    expect(e.code).toBe("42501");
    expect(e.message).toContain("recreated was dropped and created again (public.recreated, OID");
    expect(await direct("select count(*) from public.recreated where id = 1")).toBe("1");
    await c.end();
  });

  it("extended protocol with parameters (node-postgres): app.accounts created before the approval: refused", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const q = refusal(c.query("delete from accounts where id = $1", [1]));
    const req = await pending("delete from accounts where id = $1");
    await direct("create table app.accounts (like public.accounts including all); insert into app.accounts select * from public.accounts; alter table app.accounts owner to app");
    expect((await approve(req.id)).status).toBe(200);
    const e = await q;
    expect(e.code).toBe("42501");
    expect(e.message).toContain("approval no longer matches: accounts now resolves to app.accounts (approved: public.accounts)");
    expect(await direct("select count(*) from public.accounts where id = 1")).toBe("1");
    expect(await direct("select count(*) from app.accounts where id = 1")).toBe("1");
    const r2 = await t.api(`/v1/approvals/${req.id}`);
    expect((r2.body as { request: ApprovalJson }).request.summary?.objects?.objects).toEqual([relation("accounts", "public.accounts")]);
    await c.end();
  });

  it("a named prepared statement runs as it was prepared: after app.acc2 appears, its next execution is refused before any request", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const text = "delete from acc2 where id = $1";
    const first = c.query({ name: "del_acc2", text, values: [1] });
    const req = await pending(text);
    expect((await approve(req.id)).status).toBe(200);
    expect((await first).rowCount).toBe(1);
    await direct("create table app.acc2 (like public.acc2 including all); insert into app.acc2 select * from public.acc2; alter table app.acc2 owner to app");
    // node-postgres sends only Bind/Execute now: the target would run what it analysed at Parse
    // (public.acc2) while an approver would be shown app.acc2.
    const e = await refusal(c.query({ name: "del_acc2", text, values: [2] }));
    expect(e.code).toBe("42501");
    expect(e.message).toContain("the prepared statement no longer matches what it was prepared against: acc2 now resolves to app.acc2 (approved: public.acc2)");
    expect((await listRequests("?status=pending")).some((r) => r.statement === text)).toBe(false);
    expect(await direct("select count(*) from public.acc2 where id = 2")).toBe("1");
    expect(await direct("select count(*) from app.acc2 where id = 2")).toBe("1");
    await c.end();
  });

  it("SQL PREPARE / EXECUTE: app.stock created after the approved PREPARE: the EXECUTE is refused", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const prep = c.query("prepare del_stock (int) as delete from stock where id = $1");
    const req = await pending("prepare del_stock");
    expect((await approve(req.id)).status).toBe(200);
    await prep;
    await direct("create table app.stock (like public.stock including all); insert into app.stock select * from public.stock; alter table app.stock owner to app");
    const e = await refusal(c.query("execute del_stock(1)"));
    expect(e.code).toBe("42501");
    expect(e.message).toContain("stock now resolves to app.stock (approved: public.stock)");
    expect(await direct("select count(*) from public.stock where id = 1")).toBe("1");
    expect(await direct("select count(*) from app.stock where id = 1")).toBe("1");
    await c.end();
  });

  it("SQL PREPARE / EXECUTE: app.stock2 created while the EXECUTE waits for approval: refused", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const prep = c.query("prepare del_stock2 (int) as delete from stock2 where id = $1");
    const preq = await pending("prepare del_stock2");
    expect((await approve(preq.id)).status).toBe(200);
    await prep;
    const exec = refusal(c.query("execute del_stock2(1)"));
    const req = await pending("execute del_stock2(1)");
    await direct("create table app.stock2 (like public.stock2 including all); insert into app.stock2 select * from public.stock2; alter table app.stock2 owner to app");
    expect((await approve(req.id)).status).toBe(200);
    const e = await exec;
    expect(e.code).toBe("42501");
    expect(e.message).toContain("approval no longer matches: stock2 now resolves to app.stock2 (approved: public.stock2)");
    expect(await direct("select count(*) from public.stock2 where id = 1")).toBe("1");
    expect(await direct("select count(*) from app.stock2 where id = 1")).toBe("1");
    const r2 = await t.api(`/v1/approvals/${req.id}`);
    expect((r2.body as { request: ApprovalJson }).request.summary?.objects?.objects).toContainEqual(relation("stock2", "public.stock2"));
    await c.end();
  });
});

describe("functions are bound by OID", () => {
  it("a function created earlier on the search_path under a called name (it would be called instead): refused", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const q = refusal(c.query("update notes set note = f_note(note) where id = 1"));
    const req = await pending("update notes set note = f_note(note)");
    await direct("create function app.f_note(text) returns text language sql immutable as $$ select 'shadowed' $$; alter function app.f_note(text) owner to app");
    expect((await approve(req.id)).status).toBe(200);
    const e = await q;
    expect(e.code).toBe("42501");
    expect(e.message).toMatch(/approval no longer matches: f_note now resolves to (app\.f_note\(text\), public\.f_note\(text\)|public\.f_note\(text\), app\.f_note\(text\)) \(approved: public\.f_note\(text\)\)/);
    expect(await direct("select note from public.notes where id = 1")).toBe("public");
    const r2 = await t.api(`/v1/approvals/${req.id}`);
    expect((r2.body as { request: ApprovalJson }).request.summary?.objects?.objects).toContainEqual({ kind: "function", name: "f_note", resolved: [{ oid: expect.any(Number) as number, qualified: "public.f_note(text)" }] });
    await c.end();
  });
});

describe("the session's search_path", () => {
  it("changed by SET after the request (async mode): the approved re-send is refused; neither ledger changes", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const sql = "delete from ledger where id = 1";
    const first = await refusal(c.query(sql));
    const id = /approval (apr_\w+) requested/.exec(first.message)?.[1] ?? "";
    expect(id).not.toBe("");
    expect((await approve(id)).status).toBe(200);
    await c.query("set search_path = side, public");
    const e = await refusal(c.query(sql));
    expect(e.code).toBe("42501");
    expect(e.message).toContain("approval no longer matches: ledger now resolves to side.ledger (approved: public.ledger)");
    expect(e.message).toContain('search_path now "side", "public"');
    expect(await direct("select count(*) from public.ledger where id = 1")).toBe("1");
    expect(await direct("select count(*) from side.ledger where id = 1")).toBe("1");
    await c.end();
  });

  it("set before the request is what the names resolve under (shown to the approver)", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    await c.query("set search_path = side, public");
    const first = await refusal(c.query("delete from ledger where id = 2"));
    const id = /approval (apr_\w+) requested/.exec(first.message)?.[1] ?? "";
    const r = await t.api(`/v1/approvals/${id}`);
    const objects = (r.body as { request: ApprovalJson }).request.summary?.objects;
    expect(objects).toEqual({ searchPath: '"side", "public"', objects: [relation("ledger", "side.ledger")] });
    expect((await approve(id)).status).toBe(200);
    expect((await c.query("delete from ledger where id = 2")).rowCount).toBe(1);
    expect(await direct("select count(*) from side.ledger where id = 2")).toBe("0");
    expect(await direct("select count(*) from public.ledger where id = 2")).toBe("1");
    await c.end();
  });

  it("changed by set_config() (not followed): a held statement is refused (fail closed)", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    await c.query("select set_config('search_path', 'side, public', false)");
    const e = await refusal(c.query("delete from items where id = 5"));
    expect(e.code).toBe("42501");
    expect(e.message).toContain("search_path is not known to the gateway");
    expect((await listRequests("?status=pending")).some((r) => r.statement?.includes("delete from items where id = 5") === true)).toBe(false);
    expect(await direct("select count(*) from public.items where id = 5")).toBe("1");
    await c.end();
  });
});
