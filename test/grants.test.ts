/**
 * Time-boxed access grants end to end: `airlock access request`, approval by an approver,
 * sessions admitted under the grant, statements a `require_grant` policy guards, and the end
 * of live sessions when the grant expires. Real PostgreSQL 15, the real gateway, psql and
 * node-postgres.
 */
import { PassThrough } from "node:stream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/cli/cli.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";

let server: PgServer;
let t: TestGateway;
const tokens: Record<string, string> = {};

function client(database: string, token: string): pg.Client {
  const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database, user: "agent", password: token });
  c.on("error", () => undefined);
  return c;
}

async function refusal(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error("expected a refusal");
}

async function connectRefusal(database: string, token: string): Promise<{ code?: string; message: string }> {
  const c = client(database, token);
  try {
    return await refusal(c.connect());
  } finally {
    await c.end().catch(() => undefined);
  }
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

/** `airlock access request` as `who`, approved by dba1; returns the request id. */
async function grant(who: string, connection: string, duration: string): Promise<string> {
  const req = await cli(["access", "request", connection, "--duration", duration, "--reason", "incident 42"], tokens[who] ?? "");
  expect(req.stderr).toBe("");
  expect(req.code).toBe(0);
  const id = req.stdout.trim();
  expect(id).toMatch(/^apr_\w+$/);
  const ok = await cli(["approvals", "approve", id], tokens["dba1"] ?? "");
  expect(ok.stdout.trim()).toBe(`approved ${id}`);
  return id;
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password-2", auth: "scram-sha-256" }], databases: ["orders"] });
  await server.psql("create table items (id int primary key); insert into items values (1), (2); alter table items owner to app; grant create on schema public to app;", {
    database: "orders",
  });
  const base = { type: "postgres" as const, host: "127.0.0.1", port: server.port, database: "orders", user: "app", password: "app-password-2", sslmode: "disable" as const };
  t = await startTestGateway({
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "agent2", groups: ["agents"] },
      { name: "agent3", groups: ["agents"] },
      { name: "dba1", groups: ["dba"] },
      { name: "dba-agent", groups: ["agents", "dba"] },
    ],
    connections: [
      { ...base, name: "orders", groups: ["agents"] },
      { ...base, name: "restricted", groups: ["dba"] },
      { ...base, name: "prod", groups: ["agents"] },
    ],
    policies: [{ name: "ddl-needs-grant", connections: ["orders"], match: { operations: ["create*", "alter*"] }, action: "require_grant" }],
    approvals: { grants: { approvers: ["dba"], maxDuration: "2h", required: ["prod"] } },
  });
  for (const sa of ["agent", "agent2", "agent3", "dba1", "dba-agent"]) tokens[sa] = await t.mint(sa, "1h");
});

afterAll(async () => {
  await t.stop();
  await server.stop();
});

describe("access grants", () => {
  it("open a connection the principal's groups do not give, and end its live sessions at expiry", async () => {
    const before = await connectRefusal("restricted", tokens["agent"] ?? "");
    expect(before.code).toBe("42501");
    const id = await grant("agent", "restricted", "3s");
    const c = client("restricted", tokens["agent"] ?? "");
    await c.connect();
    expect((await c.query<{ n: number }>("select count(*)::int as n from items")).rows[0]?.n).toBe(2);
    // The grant ends while this statement runs: the session is ended by the gateway.
    const ended = await refusal(c.query("select pg_sleep(30)"));
    expect(ended.code).toBe("57P01");
    expect(ended.message).toContain("the access grant expired");
    await c.end().catch(() => undefined);
    expect((await connectRefusal("restricted", tokens["agent"] ?? "")).code).toBe("42501");
    // The session row is written after the client has been told (the store never delays the
    // data path), so the listing catches up shortly after.
    const endedRow = async (): Promise<boolean> => {
      const sessions = await t.api("/v1/sessions?connection=restricted");
      const rows = (sessions.body as { sessions: { endReason?: string; principal: { id: string } }[] }).sessions;
      return rows.some((s) => s.principal.id === "sa:agent" && s.endReason === "expired");
    };
    const deadline = Date.now() + 5_000;
    while (!(await endedRow()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await endedRow()).toBe(true);
    await t.gw.audit.flush();
    const audit = await t.api("/v1/audit?limit=1000");
    const records = (audit.body as { records: { type: string; decision?: string; rule?: string; details?: Record<string, unknown> }[] }).records;
    expect(records.some((r) => r.type === "session.start" && r.decision === "allow" && r.rule === `grant:${id}`)).toBe(true);
    expect(records.some((r) => r.type === "grant.expired" && r.details?.["approvalId"] === id)).toBe(true);
  });

  it("are required by approvals.grants.required even for members of the connection's groups", async () => {
    const before = await connectRefusal("prod", tokens["agent2"] ?? "");
    expect(before.code).toBe("42501");
    expect(before.message).toBe('airlock: connection "prod" needs an access grant: airlock access request prod --duration 30m --reason TEXT');
    await grant("agent2", "prod", "1h");
    const r = await t.psql("prod", tokens["agent2"] ?? "", ["-At", "-c", "select 1"]);
    expect(r.stdout.trim()).toBe("1");
    // Someone else's grant does not count.
    expect((await connectRefusal("prod", tokens["agent3"] ?? "")).code).toBe("42501");
  });

  it("unlock statements a require_grant policy guards", async () => {
    const c = client("orders", tokens["agent3"] ?? "");
    await c.connect();
    const e = await refusal(c.query("create table made_by_agent3 (id int)"));
    expect(e.code).toBe("42501");
    expect(e.message).toBe(
      "airlock: the statement needs an active access grant (rule ddl-needs-grant): request one with airlock access request orders --duration 30m --reason TEXT (rule: ddl-needs-grant)",
    );
    // Through the extended protocol the check is made at the Bind: the Parse goes through, the
    // execution is refused, and the prepared statement stays usable once a grant exists.
    const ext = await refusal(c.query({ name: "mk", text: "create table made_by_agent3_ext (id int)" }));
    expect(ext.code).toBe("42501");
    expect(ext.message).toContain("needs an active access grant");
    await grant("agent3", "orders", "30m");
    await c.query("create table made_by_agent3 (id int)");
    expect((await server.psql("select count(*) from pg_tables where tablename = 'made_by_agent3'", { database: "orders" })).trim()).toBe("1");
    expect((await server.psql("select count(*) from pg_tables where tablename = 'made_by_agent3_ext'", { database: "orders" })).trim()).toBe("0");
    await c.query({ name: "mk", text: "create table made_by_agent3_ext (id int)" });
    expect((await server.psql("select count(*) from pg_tables where tablename = 'made_by_agent3_ext'", { database: "orders" })).trim()).toBe("1");
    await c.end();
  });

  it("cannot be approved by the requester, nor requested beyond maxDuration or for unknown connections", async () => {
    const req = await cli(["access", "request", "restricted", "--duration", "10m", "--reason", "self"], tokens["dba-agent"] ?? "");
    const id = req.stdout.trim();
    const self = await cli(["approvals", "approve", id], tokens["dba-agent"] ?? "");
    expect(self.code).toBe(1);
    expect(self.stderr).toBe("airlock: nobody approves or denies their own request\n");
    const long = await cli(["access", "request", "restricted", "--duration", "3h", "--reason", "x"], tokens["agent"] ?? "");
    expect(long.code).toBe(1);
    expect(long.stderr).toBe("airlock: duration must be more than 0 and at most 2h\n");
    const unknown = await cli(["access", "request", "nope", "--duration", "10m", "--reason", "x"], tokens["agent"] ?? "");
    expect(unknown.stderr).toBe('airlock: unknown connection "nope"\n');
    const listed = await cli(["access", "list"], tokens["dba1"] ?? "");
    expect(listed.stdout).toContain(id);
    // Denied by someone else: the requester sees it denied.
    expect((await cli(["approvals", "deny", id, "--reason", "no"], tokens["dba1"] ?? "")).stdout.trim()).toBe(`denied ${id}`);
    const shown = await cli(["approvals", "show", id, "--json"], tokens["dba-agent"] ?? "");
    expect((JSON.parse(shown.stdout) as { request: { status: string } }).request.status).toBe("denied");
  });

  it("can be revoked early: sessions admitted under it end, and new ones are refused", async () => {
    const agentToken = tokens["agent"] ?? "";
    const id = await grant("agent", "restricted", "1h");
    const c = client("restricted", agentToken);
    await c.connect();
    const running = refusal(c.query("select pg_sleep(30)"));
    // Not by someone unrelated (not visible to them), nor twice.
    expect((await cli(["access", "revoke", id], tokens["agent3"] ?? "")).stderr).toBe(`airlock: no approval request ${id}\n`);
    const revoked = await cli(["access", "revoke", id, "--reason", "incident over"], tokens["dba1"] ?? "");
    expect(revoked.stderr).toBe("");
    expect(revoked.stdout.trim()).toBe(`revoked ${id}`);
    const ended = await running;
    expect(ended.code).toBe("57P01");
    expect(ended.message).toContain("the access grant was revoked");
    await c.end().catch(() => undefined);
    expect((await connectRefusal("restricted", agentToken)).code).toBe("42501");
    expect((await cli(["access", "revoke", id], tokens["dba1"] ?? "")).stderr).toBe(`airlock: request ${id} is not an active access grant\n`);
    await t.gw.audit.flush();
    const audit = await t.api("/v1/audit?limit=1000");
    const records = (audit.body as { records: { type: string; message?: string; details?: Record<string, unknown> }[] }).records;
    expect(records.some((r) => r.type === "grant.revoked" && r.message === "incident over" && r.details?.["approvalId"] === id)).toBe(true);
  });

  it("`access request --wait` waits for the decision and exits 0 once approved", async () => {
    const waiting = cli(["access", "request", "restricted", "--duration", "5m", "--reason", "deploy", "--wait"], tokens["agent2"] ?? "");
    let id: string | undefined;
    for (let i = 0; i < 200 && id === undefined; i++) {
      const pending = await t.api("/v1/access/requests?status=pending");
      id = (pending.body as { requests: { id: string; requester: { id: string } }[] }).requests.find((r) => r.requester.id === "sa:agent2")?.id;
      if (id === undefined) await new Promise((r) => setTimeout(r, 25));
    }
    expect(id).toBeDefined();
    expect((await cli(["approvals", "approve", id ?? ""], tokens["dba1"] ?? "")).code).toBe(0);
    const r = await waiting;
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(id);
    expect(r.stderr).toMatch(new RegExp(`^airlock: ${id ?? ""} approved until `));
  });
});
