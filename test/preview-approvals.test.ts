/**
 * Preview-then-commit approvals (issue 21): a held write is run first on the gateway's own
 * target session in a transaction it rolls back; the approver sees the rows it would change
 * per table, a masked sample and the plan; at execution the preview is repeated and drift is
 * refused; maxAffectedRows refuses a write that touches too much; statements a rollback cannot
 * undo are not run. A real PostgreSQL 15, the real gateway, psql and node-postgres.
 */
import { PassThrough } from "node:stream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEB_SESSION_COOKIE } from "../src/api/approval-page.js";
import { runCli } from "../src/cli/cli.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { until } from "./harness/until.js";

let server: PgServer;
let t: TestGateway;
const tokens: Record<string, string> = {};

interface PreviewJson {
  status: string;
  reason?: string;
  affectedRows?: number;
  tables?: { relation: string; inserted: number; updated: number; deleted: number }[];
  sample?: { image: string; columns: string[]; rows: (string | null)[][]; truncated: boolean };
  plan?: string[];
}

interface ApprovalJson {
  id: string;
  status: string;
  statement?: string;
  summary?: { operations: string[]; relations: string[]; preview?: PreviewJson };
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

async function show(id: string): Promise<ApprovalJson> {
  const r = await t.api(`/v1/approvals/${id}`);
  expect(r.status).toBe(200);
  return (r.body as { request: ApprovalJson }).request;
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

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table customers (id int primary key, email text, tier text);
     insert into customers select g, 'user' || g || '@example.com', case when g <= 3 then 'trial' else 'paid' end from generate_series(1, 20) g;
     create table orders (id int primary key, customer_id int references customers(id) on delete cascade, total int);
     insert into orders select g, 1 + (g % 3), g * 10 from generate_series(1, 9) g;
     create table ledger (id int primary key, amount int);
     insert into ledger select g, g from generate_series(1, 10) g;
     create table events (id serial primary key, what text);
     create table notes (id int primary key, note text);
     insert into notes select g, 'n' from generate_series(1, 5) g;
     create table audited (id int primary key, note text);
     insert into audited values (1, 'x');
     create function audited_touch() returns trigger language plpgsql as $$ begin return new; end $$;
     create trigger audited_t before update on audited for each row execute function audited_touch();
     alter table customers owner to app; alter table orders owner to app; alter table ledger owner to app;
     alter table events owner to app; alter table audited owner to app; alter table notes owner to app;`,
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
      { name: "hide-email", action: "mask", columns: ["customers.email"], strategy: "redact" },
      { name: "ledger-capped", match: { relations: ["ledger"], operations: ["delete", "update"] }, action: "require_approval", approvers: ["dba"], maxAffectedRows: 5 },
      { name: "notes-async", match: { relations: ["notes"], operations: ["delete"] }, action: "require_approval", approvers: ["dba"], mode: "async", preview: true },
      { name: "ddl", match: { operations: ["create*", "alter*", "drop*"] }, action: "require_approval", approvers: ["dba"], preview: true },
      { name: "writes", match: { operations: ["delete", "update", "insert"] }, action: "require_approval", approvers: ["dba"], preview: true, previewTolerance: 1 },
    ],
  });
  for (const sa of ["agent", "dba1"]) tokens[sa] = await t.mint(sa, "1h");
}, 300_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("preview-then-commit approvals", () => {
  it("psql: a held DELETE shows rows per table (cascade included), a masked sample and the plan; approved, it runs", async () => {
    const run = t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", "delete from customers where id = 2"]);
    const req = await pending("delete from customers where id = 2");
    const p = (await show(req.id)).summary?.preview;
    expect(p?.status).toBe("previewed");
    // customers: 1 deleted; orders of customer 2 (ids 1, 4, 7) cascade.
    expect(p?.tables).toEqual([
      { relation: "public.customers", inserted: 0, updated: 0, deleted: 1 },
      { relation: "public.orders", inserted: 0, updated: 0, deleted: 3 },
    ]);
    expect(p?.affectedRows).toBe(4);
    expect(p?.sample?.image).toBe("before");
    expect(p?.sample?.columns).toEqual(["id", "email", "tier"]);
    expect(p?.sample?.rows).toEqual([["2", "[EMAIL]", "trial"]]);
    expect(p?.plan?.join("\n")).toContain("Delete on customers");
    // The masked value never reaches the approver (API, CLI, page).
    expect(JSON.stringify(await show(req.id))).not.toContain("user2@example.com");
    const shown = await cli(["approvals", "show", req.id], tokens["dba1"] ?? "");
    expect(shown.stdout).toContain("would change 4 row(s)");
    expect(shown.stdout).toContain("public.orders: 3 deleted");
    expect(shown.stdout).not.toContain("user2@example.com");
    const page = await fetch(`${t.apiUrl}/approvals/${req.id}`, { headers: { cookie: `${WEB_SESSION_COOKIE}=${tokens["dba1"] ?? ""}` }, redirect: "manual" });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("would change 4 row(s)");
    expect(html).toContain("public.orders: 3 deleted");
    expect(html).not.toContain("user2@example.com");
    // Nothing changed while it waited: the preview was rolled back.
    expect(await direct("select count(*) from customers where id = 2")).toBe("1");
    expect(await direct("select count(*) from orders where customer_id = 2")).toBe("3");
    expect((await approve(req.id)).status).toBe(200);
    const r = await run;
    expect(r.stderr).not.toContain("ERROR");
    expect(r.code).toBe(0);
    expect(await direct("select count(*) from customers where id = 2")).toBe("0");
    expect(await direct("select count(*) from orders where customer_id = 2")).toBe("0");
  });

  it("node-postgres with parameters: an UPDATE shows the rows after; drift beyond the tolerance between preview and execution is refused", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const text = "update customers set tier = $1 where tier = $2";
    const q = refusal(c.query(text, ["gold", "trial"]));
    const req = await pending(text);
    const p = (await show(req.id)).summary?.preview;
    expect(p?.status).toBe("previewed");
    // Customers 1 and 3 are trial (2 was deleted above).
    expect(p?.tables).toEqual([{ relation: "public.customers", inserted: 0, updated: 2, deleted: 0 }]);
    expect(p?.sample?.image).toBe("after");
    expect(p?.sample?.rows.map((r) => r[2])).toEqual(["gold", "gold"]);
    // Meanwhile more rows come to match (tolerance is 1 row): 2 → 5.
    await direct("update customers set tier = 'trial' where id in (10, 11, 12)");
    expect((await approve(req.id)).status).toBe(200);
    const e = await q;
    expect(e.code).toBe("42501");
    expect(e.message).toContain("approval no longer matches what the statement would do now: public.customers would now have 5 updated (approved: 2 updated)");
    expect(await direct("select count(*) from customers where tier = 'gold'")).toBe("0");
    await c.end();
  });

  it("drift within the tolerance still runs", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const text = "update customers set tier = 'silver' where tier = 'trial'";
    const q = c.query(text);
    const req = await pending(text);
    expect((await show(req.id)).summary?.preview?.affectedRows).toBe(5);
    await direct("update customers set tier = 'trial' where id = 13");
    expect((await approve(req.id)).status).toBe(200);
    expect((await q).rowCount).toBe(6);
    await c.end();
  });

  it("async mode: the approved re-send is previewed again; drift refuses it, an unchanged re-send runs once", async () => {
    const text = "delete from notes where id <= 2";
    const first = await t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", text]);
    expect(first.stderr).toContain("once approved, send the identical statement");
    const req = await pending(text);
    expect((await show(req.id)).summary?.preview?.tables).toEqual([{ relation: "public.notes", inserted: 0, updated: 0, deleted: 2 }]);
    expect((await approve(req.id)).status).toBe(200);
    await direct("insert into notes values (0, 'late')");
    const drifted = await t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", text]);
    expect(drifted.stderr).toContain("approval no longer matches what the statement would do now: public.notes would now have 3 deleted (approved: 2 deleted)");
    expect(await direct("select count(*) from notes")).toBe("6");
    // Asked again and approved with the new preview: the re-send runs.
    await t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", text]);
    const again = await pending(text);
    expect((await show(again.id)).summary?.preview?.affectedRows).toBe(3);
    expect((await approve(again.id)).status).toBe(200);
    const ran = await t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", text]);
    expect(ran.stderr).toBe("");
    expect(await direct("select count(*) from notes")).toBe("3");
  });

  it("maxAffectedRows: a write whose preview touches more is refused before anyone is asked", async () => {
    const before = (await listRequests()).length;
    const r = await t.psql("shop", tokens["agent"] ?? "", ["-At", "-c", "delete from ledger where id > 2"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("its preview would change 8 rows (public.ledger: 8), more than maxAffectedRows 5 of rule ledger-capped");
    expect((await listRequests()).length).toBe(before);
    expect(await direct("select count(*) from ledger")).toBe("10");
  });

  it("DDL, sequences and triggers: the approver is told it cannot be previewed, and it is not run by the preview", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const ddl = refusal(c.query("create table scratch (id int)"));
    const r1 = await pending("create table scratch");
    expect((await show(r1.id)).summary?.preview).toEqual({ status: "unpreviewable", reason: expect.stringContaining("create_table cannot be previewed safely") as string });
    expect(await direct("select count(*) from pg_class where relname = 'scratch'")).toBe("0");
    const shown = await cli(["approvals", "show", r1.id], tokens["dba1"] ?? "");
    expect(shown.stdout).toContain("cannot preview:");
    await t.api(`/v1/approvals/${r1.id}/deny`, { token: tokens["dba1"] ?? "", body: { reason: "no" } });
    expect((await ddl).code).toBe("42501");

    const seq = refusal(c.query("insert into events (what) values ('x')"));
    const r2 = await pending("insert into events");
    expect((await show(r2.id)).summary?.preview?.reason).toContain("draws values from a sequence");
    // The sequence was not advanced by a preview.
    expect(await direct("select last_value, is_called from events_id_seq")).toBe("1|f");
    await t.api(`/v1/approvals/${r2.id}/deny`, { token: tokens["dba1"] ?? "", body: {} });
    await seq;

    const nv = refusal(c.query("update ledger set amount = nextval('events_id_seq') where id = 1"));
    const r3 = await pending("nextval");
    expect((await show(r3.id)).summary?.preview?.reason).toContain("it calls nextval(), a volatile function");
    await t.api(`/v1/approvals/${r3.id}/deny`, { token: tokens["dba1"] ?? "", body: {} });
    await nv;

    const trig = refusal(c.query("update audited set note = 'y' where id = 1"));
    const r4 = await pending("update audited");
    expect((await show(r4.id)).summary?.preview?.reason).toContain("has triggers");
    await t.api(`/v1/approvals/${r4.id}/deny`, { token: tokens["dba1"] ?? "", body: {} });
    await trig;
    await c.end();
  });

  it("a statement the target refuses in the preview: the approver sees its SQLSTATE only", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const q = refusal(c.query("insert into customers (id, email) values (1, 'dup-secret@example.com')"));
    const req = await pending("insert into customers");
    const p = (await show(req.id)).summary?.preview;
    expect(p).toEqual({ status: "failed", reason: "the target refused the statement (SQLSTATE 23505)" });
    await t.api(`/v1/approvals/${req.id}/deny`, { token: tokens["dba1"] ?? "", body: {} });
    await q;
    await c.end();
  });
});
