/**
 * Just-in-time approvals end to end: a real PostgreSQL 15, the real gateway, real clients
 * (psql and node-postgres), decisions through the API and the CLI.
 */
import { spawn } from "node:child_process";
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

interface ApprovalJson {
  id: string;
  kind: string;
  status: string;
  statement?: string;
  params?: (string | null)[];
  requester: { id: string };
  approvals?: number;
  votes?: unknown[];
  usedAt?: string;
  decisionReason?: string;
  summary?: { operations: string[]; relations: string[]; objects?: { searchPath: string; objects: { name: string; resolved: { qualified: string }[] }[] } };
}

function client(token: string): pg.Client {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "agent", password: token });
  c.on("error", () => undefined);
  return c;
}

async function listRequests(query = ""): Promise<ApprovalJson[]> {
  const r = await t.api(`/v1/approvals${query}`);
  expect(r.status).toBe(200);
  return (r.body as { requests: ApprovalJson[] }).requests;
}

/** The pending request whose statement contains `text`. */
function pending(text: string): Promise<ApprovalJson> {
  return until(`a pending request for "${text}"`, async () => (await listRequests("?status=pending")).find((r) => r.statement?.includes(text) === true));
}

async function getRequest(id: string): Promise<ApprovalJson> {
  const r = await t.api(`/v1/approvals/${id}`);
  expect(r.status).toBe(200);
  return (r.body as { request: ApprovalJson }).request;
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
  server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["orders"] });
  await server.psql(
    `create table items (id int primary key, name text not null);
     insert into items select g, 'item ' || g from generate_series(1, 50) g;
     create table vault (id int primary key, note text);
     insert into vault values (1, 'sealed');
     create table shorty (id int primary key);
     insert into shorty values (1);
     create table async_t (id int);
     create table async_ttl (id int);
     alter table async_ttl owner to app;
     alter table items owner to app; alter table vault owner to app; alter table shorty owner to app; alter table async_t owner to app;`,
    { database: "orders" },
  );
  t = await startTestGateway({
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "other-agent", groups: ["agents"] },
      { name: "dba1", groups: ["dba"] },
      { name: "dba2", groups: ["dba"] },
      { name: "dba-agent", groups: ["agents", "dba"] },
    ],
    connections: [
      { name: "orders", type: "postgres", host: "127.0.0.1", port: server.port, database: "orders", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
    ],
    policies: [
      { name: "vault-two-approvers", match: { relations: ["vault"], operations: ["update", "delete", "insert"] }, action: "require_approval", approvers: ["dba"], minApprovals: 2 },
      { name: "shorty-fast-expiry", match: { relations: ["shorty"], operations: ["delete"] }, action: "require_approval", approvers: ["dba"], timeout: "1s" },
      { name: "async-writes", match: { relations: ["async_t"], operations: ["insert", "update", "delete"] }, action: "require_approval", approvers: ["dba"], mode: "async" },
      { name: "async-short-use", match: { relations: ["async_ttl"], operations: ["insert"] }, action: "require_approval", approvers: ["dba"], mode: "async", timeout: "1s" },
      { name: "writes-need-approval", match: { operations: ["update", "delete"] }, action: "require_approval", approvers: ["dba"] },
    ],
    approvals: { publicUrl: "https://airlock.example.com" },
  });
  for (const sa of ["agent", "other-agent", "dba1", "dba2", "dba-agent"]) tokens[sa] = await t.mint(sa, "1h");
});

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("a statement held for approval (wait mode)", () => {
  it("is released by approve: node-postgres (extended protocol, bind parameters) gets its rows after a notice naming the request", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const notices: string[] = [];
    c.on("notice", (n) => notices.push(n.message ?? ""));
    const q = c.query<{ id: number; name: string }>("update items set name = $1 where id = $2 returning id, name", ["approved-name", 1]);
    const req = await pending("update items set name = $1");
    expect(req.requester.id).toBe("sa:agent");
    expect(req.summary).toMatchObject({ operations: ["update"], relations: ["items"] });
    // Bound to what its names resolve to on the target (test/approvals-drift.test.ts).
    expect(req.summary?.objects?.objects.map((o) => o.resolved.map((r) => r.qualified))).toEqual([["public.items"]]);
    // Held at Bind: approvers see the values that will run (API, CLI list --json and show).
    expect(req.params).toEqual(["approved-name", "1"]);
    const listed = await cli(["approvals", "list", "--json"], tokens["dba1"] ?? "");
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { requests: ApprovalJson[] }).requests.find((r) => r.id === req.id)?.params).toEqual(["approved-name", "1"]);
    const shown = await cli(["approvals", "show", req.id], tokens["dba1"] ?? "");
    expect(shown.stdout).toContain('params: ["approved-name","1"]');
    expect(shown.stdout).not.toContain("filled when the prepared statement runs");
    const notice = await until("the hold notice", () => notices.find((n) => n.includes(req.id)));
    // The CLI command, and the approval page (approvals.publicUrl is set here).
    expect(notice).toMatch(/^airlock: .*waiting for approval apr_\w+ by dba .*airlock approvals approve apr_\w+ or at https:\/\/airlock\.example\.com\/approvals\/apr_\w+$/);
    const r = await decide(req.id, "dba1", "approve");
    expect(r.status).toBe(200);
    expect((r.body as { request: ApprovalJson }).request.status).toBe("approved");
    const res = await q;
    expect(res.rows).toEqual([{ id: 1, name: "approved-name" }]);
    // The session goes on, and the approval was used by exactly that statement.
    expect((await c.query<{ name: string }>("select name from items where id = 1")).rows[0]?.name).toBe("approved-name");
    expect((await getRequest(req.id)).usedAt).toBeDefined();
    await c.end();
  });

  it("is released by `airlock approvals approve`: psql prints the NOTICE, then its rows", async () => {
    const run = t.psql("orders", tokens["agent"] ?? "", ["-At", "-c", "delete from items where id = 50 returning id"]);
    const req = await pending("delete from items where id = 50");
    const listed = await cli(["approvals", "list"], tokens["dba1"] ?? "");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(req.id);
    const approved = await cli(["approvals", "approve", req.id], tokens["dba1"] ?? "");
    expect(approved.stderr).toBe("");
    expect(approved.code).toBe(0);
    expect(approved.stdout).toContain("approved");
    const r = await run;
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("50\nDELETE 1");
    expect(r.stderr).toContain(`NOTICE:  airlock: `);
    expect(r.stderr).toContain(req.id);
    expect((await server.psql("select count(*) from items where id = 50", { database: "orders" })).trim()).toBe("0");
  });

  it("fails with 42501 and the reason when denied; nothing ran and the session stays usable", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const q = refusal(c.query("delete from items where id = 2"));
    const req = await pending("delete from items where id = 2");
    const denied = await cli(["approvals", "deny", req.id, "--reason", "not during the sale"], tokens["dba2"] ?? "");
    expect(denied.code).toBe(0);
    const e = await q;
    expect(e.code).toBe("42501");
    expect(e.message).toBe(`airlock: approval ${req.id} was denied: not during the sale (rule: writes-need-approval)`);
    expect((await c.query<{ n: number }>("select count(*)::int as n from items where id = 2")).rows[0]?.n).toBe(1);
    expect((await getRequest(req.id)).status).toBe("denied");
    await c.end();
  });

  it("fails with 42501 when nobody decides before the policy's timeout", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const e = await refusal(c.query("delete from shorty where id = 1"));
    expect(e.code).toBe("42501");
    expect(e.message).toMatch(/^airlock: approval apr_\w+ expired: no decision within 1s \(rule: shorty-fast-expiry\)$/);
    const id = /approval (apr_\w+)/.exec(e.message)?.[1] ?? "";
    expect((await getRequest(id)).status).toBe("expired");
    const late = await decide(id, "dba1", "approve");
    expect(late.status).toBe(409);
    expect((await c.query<{ n: number }>("select count(*)::int as n from shorty")).rows[0]?.n).toBe(1);
    await c.end();
  });

  it("is cancelled when the client goes away while waiting", async () => {
    const child = spawn(
      "psql",
      ["-X", "-At", `host=127.0.0.1 port=${t.pgPort} dbname=orders user=agent sslmode=disable`, "-c", "delete from items where id = 3"],
      { env: { ...process.env, PGPASSWORD: tokens["agent"] ?? "" }, stdio: "ignore" },
    );
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const req = await pending("delete from items where id = 3");
    child.kill("SIGKILL");
    await exited;
    const cancelled = await until("the request to be cancelled", async () => {
      const r = await getRequest(req.id);
      return r.status === "cancelled" ? r : undefined;
    });
    expect(cancelled.decisionReason).toContain("client");
    expect((await decide(req.id, "dba1", "approve")).status).toBe(409);
    await t.gw.audit.flush();
    const audit = await t.api("/v1/audit?limit=1000");
    const records = (audit.body as { records: { type: string; details?: Record<string, unknown> }[] }).records;
    expect(records.some((rec) => rec.type === "approval.cancelled" && rec.details?.["approvalId"] === req.id)).toBe(true);
    expect((await server.psql("select count(*) from items where id = 3", { database: "orders" })).trim()).toBe("1");
  });

  it("held at its Bind (extended protocol), is cancelled when the client goes away; nothing ran", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const q = refusal(c.query("delete from items where id = $1", [11]));
    const req = await pending("delete from items where id = $1");
    expect(req.params).toEqual(["11"]);
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await q;
    const cancelled = await until("the request to be cancelled", async () => {
      const r = await getRequest(req.id);
      return r.status === "cancelled" ? r : undefined;
    });
    expect(cancelled.decisionReason).toContain("client");
    expect((await server.psql("select count(*) from items where id = 11", { database: "orders" })).trim()).toBe("1");
  });

  it("is withdrawn by the client's cancel request (psql Ctrl-C)", async () => {
    const child = spawn(
      "psql",
      ["-X", "-At", `host=127.0.0.1 port=${t.pgPort} dbname=orders user=agent sslmode=disable`, "-c", "delete from items where id = 6"],
      { env: { ...process.env, PGPASSWORD: tokens["agent"] ?? "" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise((resolve) => child.once("close", resolve));
    const req = await pending("delete from items where id = 6");
    child.kill("SIGINT");
    await exited;
    expect(stderr).toContain(`ERROR:  airlock: approval ${req.id} was cancelled: the client cancelled the statement (rule: writes-need-approval)`);
    expect(stdout).toBe("");
    expect((await getRequest(req.id)).status).toBe("cancelled");
    expect((await server.psql("select count(*) from items where id = 6", { database: "orders" })).trim()).toBe("1");
  });

  it("is cancelled when the session is ended while waiting (token revoked)", async () => {
    const revocable = await t.mint("agent", "1h");
    const c = client(revocable);
    await c.connect();
    const q = refusal(c.query("delete from items where id = 8"));
    const req = await pending("delete from items where id = 8");
    const tokenId = (JSON.parse(Buffer.from(revocable.split(".")[1] ?? "", "base64url").toString("utf8")) as { jti: string }).jti;
    expect((await t.api(`/v1/tokens/${tokenId}/revoke`, { body: {} })).status).toBe(200);
    const e = await q;
    expect(e.code).toBe("57P01");
    const cancelled = await until("the request to be cancelled", async () => {
      const r = await getRequest(req.id);
      return r.status === "cancelled" ? r : undefined;
    });
    expect(cancelled.decisionReason).toMatch(/^the session was ended: .*revoked/);
    await c.end().catch(() => undefined);
  });

  it("refuses self-approval; a non-approver cannot even see the request; another approver can approve", async () => {
    const c = client(tokens["dba-agent"] ?? "");
    await c.connect();
    const q = c.query<{ id: number }>("update items set name = 'self' where id = 5 returning id");
    const req = await pending("update items set name = 'self'");
    const self = await decide(req.id, "dba-agent", "approve");
    expect(self.status).toBe(403);
    expect((self.body as { error: { code: string; message: string } }).error).toEqual({ code: "GW_FORBIDDEN", message: "nobody approves or denies their own request" });
    const viaCli = await cli(["approvals", "approve", req.id], tokens["dba-agent"] ?? "");
    expect(viaCli.code).toBe(1);
    expect(viaCli.stderr).toBe("airlock: nobody approves or denies their own request\n");
    // Not an approver at all: the decide routes refuse before looking the request up.
    expect((await decide(req.id, "other-agent", "approve")).status).toBe(403);
    expect((await getRequest(req.id)).status).toBe("pending");
    expect((await decide(req.id, "dba2", "approve")).status).toBe(200);
    expect((await q).rows).toEqual([{ id: 5 }]);
    await c.end();
  });

  it("needs two distinct approvers under minApprovals: 2", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const q = c.query<{ note: string }>("update vault set note = 'opened' where id = 1 returning note");
    const req = await pending("update vault");
    const first = await decide(req.id, "dba1", "approve");
    expect(first.status).toBe(200);
    expect((first.body as { request: ApprovalJson }).request).toMatchObject({ status: "pending", approvals: 1 });
    expect((await decide(req.id, "dba1", "approve")).status).toBe(409);
    const second = await decide(req.id, "dba2", "approve");
    expect((second.body as { request: ApprovalJson }).request).toMatchObject({ status: "approved", approvals: 2 });
    expect((await q).rows).toEqual([{ note: "opened" }]);
    await c.end();
  });

  it("audits the request, every vote, and the statement's final decision with its approval id", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const q = c.query("update items set name = 'audited' where id = 7");
    const req = await pending("update items set name = 'audited'");
    await decide(req.id, "dba1", "approve");
    await q;
    await c.end();
    await t.gw.audit.flush();
    const audit = await t.api("/v1/audit?limit=1000");
    const records = (audit.body as { records: { type: string; decision?: string; principal?: { id: string }; details?: Record<string, unknown> }[] }).records;
    const mine = records.filter((r) => r.details?.["approvalId"] === req.id);
    expect(mine.map((r) => r.type)).toEqual(["approval.requested", "approval.decided", "db.query"]);
    expect(mine[1]).toMatchObject({ decision: "allow", principal: { id: "sa:dba1" }, details: { vote: "approve", status: "approved" } });
    expect(mine[2]).toMatchObject({ decision: "allow", principal: { id: "sa:agent" } });
    const verify = await t.api("/v1/audit/verify");
    expect((verify.body as { ok: boolean }).ok).toBe(true);
  });
});

describe("async mode", () => {
  it("refuses at once with the approval id; the approved re-send runs exactly once", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const first = await refusal(c.query("insert into async_t values (1)"));
    expect(first.code).toBe("42501");
    const id = /approval (apr_\w+) requested from dba/.exec(first.message)?.[1] ?? "";
    expect(id).not.toBe("");
    // Re-sending before the decision names the same request (no duplicates).
    const again = await refusal(c.query("insert into async_t values (1)"));
    expect(again.message).toContain(id);
    expect((await decide(id, "dba1", "approve")).status).toBe(200);
    // Another principal's identical statement is not covered by it.
    const other = client(tokens["other-agent"] ?? "");
    await other.connect();
    const otherRefusal = await refusal(other.query("insert into async_t values (1)"));
    expect(otherRefusal.message).not.toContain(id);
    await other.end();
    // A different statement is not covered either.
    expect((await refusal(c.query("insert into async_t values (2)"))).message).not.toContain(id);
    // The identical statement runs once (on a new connection too: the binding is principal + connection + statement).
    await c.end();
    const c2 = client(tokens["agent"] ?? "");
    await c2.connect();
    const ran = await c2.query("insert into async_t values (1)");
    expect(ran.rowCount).toBe(1);
    const third = await refusal(c2.query("insert into async_t values (1)"));
    expect(third.code).toBe("42501");
    expect(third.message).not.toContain(id);
    expect((await server.psql("select count(*) from async_t where id = 1", { database: "orders" })).trim()).toBe("1");
    expect((await getRequest(id)).usedAt).toBeDefined();
    await c2.end();
  });

  it("per session (airlock.approval=async): the approved retry of a parameterised statement runs once, with the same values only", async () => {
    const opts = { options: "-c airlock.approval=async" };
    const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "agent", password: tokens["agent"] ?? "", ...opts });
    c.on("error", () => undefined);
    await c.connect();
    const sql = "delete from items where id = $1";
    const first = await refusal(c.query(sql, [9]));
    expect(first.code).toBe("42501");
    const id = /approval (apr_\w+) requested from dba/.exec(first.message)?.[1] ?? "";
    expect(id).not.toBe("");
    const req = await getRequest(id);
    expect(req).toMatchObject({ status: "pending", statement: sql, params: ["9"] });
    expect((await decide(id, "dba1", "approve")).status).toBe(200);
    // Other values: not covered (a new request).
    const other = await refusal(c.query(sql, [10]));
    expect(other.message).not.toContain(id);
    expect((await server.psql("select count(*) from items where id in (9, 10)", { database: "orders" })).trim()).toBe("2");
    // The same values run once.
    expect((await c.query(sql, [9])).rowCount).toBe(1);
    expect((await getRequest(id)).usedAt).toBeDefined();
    const again = await refusal(c.query(sql, [9]));
    expect(again.message).not.toContain(id);
    await c.end();
  });

  it("an async approval past its time to use is refused: the retry asks again", async () => {
    const c = client(tokens["agent"] ?? "");
    await c.connect();
    const sql = "insert into async_ttl values ($1)";
    const first = await refusal(c.query(sql, [1]));
    const id = /approval (apr_\w+) requested from dba/.exec(first.message)?.[1] ?? "";
    expect(id).not.toBe("");
    expect((await decide(id, "dba1", "approve")).status).toBe(200);
    // The policy's timeout (1s) is also how long the approval stays usable after the decision.
    await new Promise((r) => setTimeout(r, 1500));
    const late = await refusal(c.query(sql, [1]));
    expect(late.code).toBe("42501");
    expect(late.message).toMatch(/approval apr_\w+ requested from dba/);
    expect(late.message).not.toContain(id);
    expect((await getRequest(id)).usedAt).toBeUndefined();
    expect((await server.psql("select count(*) from async_ttl", { database: "orders" })).trim()).toBe("0");
    await c.end();
  });

  it("can be chosen per session with airlock.approval=async in the start-up options (PGOPTIONS)", async () => {
    const r = await t.psql("orders", tokens["agent"] ?? "", ["-c", "delete from items where id = 4"], { env: { PGOPTIONS: "-c airlock.approval=async" } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR: {2}airlock: the statement needs approval \(rule writes-need-approval\): approval apr_\w+ requested from dba/);
    expect((await server.psql("select count(*) from items where id = 4", { database: "orders" })).trim()).toBe("1");
  });
});
