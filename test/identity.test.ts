/**
 * Identity end to end: a real OpenID provider (oidc-provider) on loopback, the real gateway,
 * a real PostgreSQL target and real clients (psql, node-postgres, fetch).
 *  - client-credentials JWTs used directly as the psql password,
 *  - token exchange (RFC 8693) into a short-lived Airlock token,
 *  - claim rules → principal and groups, groups → connections and control-plane roles,
 *  - revoking a principal ends its live psql session within 5 s.
 */
import { spawn } from "node:child_process";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../src/audit/types.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startOidcProvider, type TestOidcProvider } from "./harness/oidc.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";

let pgServer: PgServer;
let idp: TestOidcProvider;
let t: TestGateway;

const EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";

beforeAll(async () => {
  pgServer = await startPostgres({ users: [{ name: "app", password: "app-pw-identity", auth: "scram-sha-256" }], databases: ["orders"] });
  await pgServer.psql("create table items (id int primary key, name text); insert into items values (1, 'one'), (2, 'two'); alter table items owner to app;", {
    database: "orders",
  });
  idp = await startOidcProvider([
    { clientId: "agent-1", clientSecret: "agent-1-secret-0123456789abcdef0123456789", grantTypes: ["client_credentials"] },
    { clientId: "agent-2", clientSecret: "agent-2-secret-0123456789abcdef0123456789", grantTypes: ["client_credentials"] },
    { clientId: "stranger", clientSecret: "stranger-secret-0123456789abcdef01234567", grantTypes: ["client_credentials"] },
    { clientId: "deployer", clientSecret: "deployer-secret-0123456789abcdef012345678", grantTypes: ["client_credentials"] },
  ]);
  idp.clientGroups.set("deployer", ["agents"]);
  idp.clientGroups.set("agent-1", ["agents"]);
  idp.clientGroups.set("agent-2", ["agents", "security"]);
  idp.clientGroups.set("stranger", ["agents"]);
  const base = { type: "postgres" as const, host: "127.0.0.1", port: pgServer.port, database: "orders", user: "app", password: "app-pw-identity", sslmode: "disable" as const };
  t = await startTestGateway({
    oidc: [
      // Two rules for one issuer, tried in order: the deployer client is the configured service
      // account of its name; other agent-* clients are workloads.
      { issuer: idp.issuer, alias: "idp", audience: "airlock", claims: { client_id: "deployer" }, principal: { serviceAccount: { claim: "client_id" } } },
      {
        issuer: idp.issuer,
        alias: "idp",
        audience: "airlock",
        principal: { kind: "workload", name: "client_id", prefix: "" },
        groups: ["from-idp"],
        // Only these clients are accepted from this issuer.
        claims: { client_id: ["agent-*"] },
      },
    ],
    roles: { auditor: ["security"] },
    serviceAccounts: [
      { name: "ci-bot", groups: ["agents"] },
      { name: "deployer", groups: ["dba"] },
    ],
    connections: [
      { ...base, name: "orders", groups: ["agents"] },
      { ...base, name: "restricted", groups: ["dba"] },
    ],
  });
});

afterAll(async () => {
  await t.stop();
  await idp.close();
  await pgServer.stop();
});

async function audit(): Promise<readonly AuditRecord[]> {
  await t.gw.audit.flush();
  return t.gw.store.readAudit(0, 1000);
}

async function exchange(subject: string, extra: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${t.apiUrl}/v1/token/exchange`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: EXCHANGE_GRANT, subject_token: subject, subject_token_type: JWT_TYPE, ...extra }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("claims mapped to a configured service account", () => {
  it("a client-credentials token naming a service account acts as sa:<name> with its configured groups, on psql and through exchange", async () => {
    const jwt = await idp.clientCredentials("deployer", "deployer-secret-0123456789abcdef012345678");
    // The account's groups (dba) admit `restricted`; the token's own groups (agents) do not count.
    const q = await t.psql("restricted", jwt, ["-At", "-c", "select 'as deployer'"]);
    expect(q.stdout.trim(), q.stderr).toBe("as deployer");
    const denied = await t.psql("orders", jwt, ["-At", "-c", "select 1"]);
    expect(denied.code).not.toBe(0);
    const ex = await exchange(jwt);
    expect(ex.status).toBe(200);
    expect(ex.body["principal"]).toMatchObject({ id: "sa:deployer", kind: "service_account", groups: ["dba"] });
    const who = await t.api("/v1/auth/whoami", { token: String(ex.body["access_token"]) });
    expect(who.body).toMatchObject({ principal: { id: "sa:deployer", kind: "service_account", groups: ["dba"] } });
    expect(ex.body["expires_in"]).toBeLessThanOrEqual(600);
  });
});

describe("workload JWTs as the psql password", () => {
  it("accepts a client-credentials token from the trusted issuer, with groups from the token", async () => {
    const jwt = await idp.clientCredentials("agent-1", "agent-1-secret-0123456789abcdef0123456789");
    const r = await t.psql("orders", jwt, ["-At", "-c", "select name from items order by id"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual(["one", "two"]);
    // Session rows reach the store just after the data path moves on: poll briefly.
    type Row = { principal: { id: string; kind: string }; groups: string[] };
    const find = async (): Promise<Row | undefined> =>
      ((await t.api("/v1/sessions?limit=5")).body as { sessions: Row[] }).sessions.find((s) => s.principal.id === "wl:idp:agent-1");
    let mine = await find();
    for (let i = 0; i < 100 && mine === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50));
      mine = await find();
    }
    expect(mine?.principal.kind).toBe("workload");
    expect(new Set(mine?.groups)).toEqual(new Set(["agents", "from-idp"]));
  });

  it("refuses a connection the token's groups do not allow (42501), and a client the claim rules exclude (28P01)", async () => {
    const jwt = await idp.clientCredentials("agent-1", "agent-1-secret-0123456789abcdef0123456789");
    const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "restricted", user: "x", password: jwt });
    c.on("error", () => undefined);
    await expect(c.connect()).rejects.toMatchObject({ code: "42501" });
    await c.end().catch(() => undefined);

    const stranger = await idp.clientCredentials("stranger", "stranger-secret-0123456789abcdef01234567");
    const s = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "x", password: stranger });
    s.on("error", () => undefined);
    await expect(s.connect()).rejects.toMatchObject({ code: "28P01" });
    await s.end().catch(() => undefined);
    const failures = (await audit()).filter((a) => a.type === "auth.failure" && a.protocol === "postgres");
    expect(failures.some((a) => a.message?.includes("claim client_id does not match"))).toBe(true);
    expect(JSON.stringify(failures)).not.toContain(stranger);
  });
});

describe("token exchange (RFC 8693)", () => {
  it("turns a trusted JWT into a short-lived Airlock token that works on psql and the API", async () => {
    const jwt = await idp.clientCredentials("agent-2", "agent-2-secret-0123456789abcdef0123456789");
    const res = await exchange(jwt, { ttl: "5m" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ issued_token_type: "urn:ietf:params:oauth:token-type:access_token", token_type: "Bearer" });
    const expiresIn = res.body["expires_in"] as number;
    expect(expiresIn).toBeGreaterThan(240);
    expect(expiresIn).toBeLessThanOrEqual(300);
    const token = res.body["access_token"] as string;
    expect(token).not.toBe(jwt);

    const r = await t.psql("orders", token, ["-At", "-c", "select count(*) from items"]);
    expect(r.stdout.trim()).toBe("2");

    // agent-2 is in `security`, mapped to the auditor role: it may read sessions, not mint tokens.
    const who = await t.api("/v1/auth/whoami", { token });
    expect(who.body).toMatchObject({ principal: { id: "wl:idp:agent-2", kind: "workload" }, roles: ["auditor", "user"] });
    expect((await t.api("/v1/sessions", { token })).status).toBe(200);
    const mint = await t.api("/v1/tokens", { token, body: { serviceAccount: "nobody" } });
    expect(mint.status).toBe(403);

    const created = (await audit()).filter((a) => a.type === "token.create" && a.details?.["via"] === "exchange");
    expect(created.at(-1)?.principal?.id).toBe("wl:idp:agent-2");
    expect(JSON.stringify(created)).not.toContain(token);
  });

  it("never issues a token that outlives the subject token", async () => {
    const now = Math.floor(Date.now() / 1000);
    const short = await idp.sign({ iss: idp.issuer, aud: "airlock", sub: "agent-1", client_id: "agent-1", iat: now, exp: now + 30 });
    const res = await exchange(short, { ttl: "10m" });
    expect(res.status).toBe(200);
    expect(res.body["expires_in"]).toBeLessThanOrEqual(30);
  });

  it("answers errors in the RFC 6749 §5.2 shape with our code, audited", async () => {
    const bad = await exchange("not-a-jwt");
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: "invalid_grant", error_code: "GW_AUTH_INVALID" });
    const wrongGrant = await fetch(`${t.apiUrl}/v1/token/exchange`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&subject_token=x&subject_token_type=" + encodeURIComponent(JWT_TYPE),
    });
    expect(wrongGrant.status).toBe(400);
    expect(await wrongGrant.json()).toMatchObject({ error: "unsupported_grant_type" });
    const dup = await fetch(`${t.apiUrl}/v1/token/exchange`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=a&grant_type=b",
    });
    expect(dup.status).toBe(400);
    // An Airlock token is not an exchangeable subject (no laundering of our own tokens).
    const own = await exchange(await t.mint("ci-bot"));
    expect(own.body).toMatchObject({ error: "invalid_grant", error_code: "GW_AUTH_INVALID" });
    const records = (await audit()).filter((a) => a.type === "auth.failure" && a.protocol === "api");
    expect(records.length).toBeGreaterThan(0);
  });
});

describe("revocation", () => {
  it("revoking a workload principal ends its live psql session within 5 seconds and refuses it afterwards", async () => {
    const jwt = await idp.clientCredentials("agent-1", "agent-1-secret-0123456789abcdef0123456789");
    // A long-running psql session: waits on stdin until the gateway ends it.
    const child = spawn("psql", ["-X", "-At", `host=127.0.0.1 port=${t.pgPort} dbname=orders user=agent sslmode=disable`], {
      env: { ...process.env, PGPASSWORD: jwt },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.stdin.write("select 'alive';\n");
    const deadline = Date.now() + 10_000;
    while (!stdout.includes("alive") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(stdout).toContain("alive");
    expect(t.gw.registry.list().some((s) => s.principal.id === "wl:idp:agent-1")).toBe(true);

    const started = Date.now();
    const res = await t.api(`/v1/principals/${encodeURIComponent("wl:idp:agent-1")}/revoke`, { body: { reason: "test" } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ revoked: true, principalId: "wl:idp:agent-1" });
    expect((res.body as { sessionsEnded: number }).sessionsEnded).toBeGreaterThanOrEqual(1);
    // The next statement finds the connection closed.
    child.stdin.write("select 'still here';\n");
    child.stdin.end();
    const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 5000))]);
    expect(code).not.toBe("timeout");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(stdout).not.toContain("still here");
    expect(stderr.toLowerCase()).toMatch(/terminat|revoked|closed/);

    // Refused from now on, directly and through exchange.
    const again = await idp.clientCredentials("agent-1", "agent-1-secret-0123456789abcdef0123456789");
    const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "x", password: again });
    c.on("error", () => undefined);
    await expect(c.connect()).rejects.toMatchObject({ code: "28P01" });
    await c.end().catch(() => undefined);
    expect((await exchange(again)).body).toMatchObject({ error: "invalid_grant", error_code: "GW_AUTH_REVOKED" });
    const rec = (await audit()).filter((a) => a.type === "token.revoke" && a.details?.["principalId"] === "wl:idp:agent-1");
    expect(rec.length).toBe(1);
  });

  it("revoking a service account ends its sessions and its tokens stop working", async () => {
    const token = await t.mint("ci-bot");
    const c = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "x", password: token });
    let ended: Error | undefined;
    c.on("error", (e) => (ended = e));
    await c.connect();
    expect((await c.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    const res = await t.api(`/v1/principals/${encodeURIComponent("sa:ci-bot")}/revoke`, { body: {} });
    expect(res.body).toMatchObject({ revoked: true, sessionsEnded: 1 });
    await expect(c.query("select 1")).rejects.toBeDefined();
    expect(ended).toBeDefined();
    await c.end().catch(() => undefined);
    const d = new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: "orders", user: "x", password: token });
    d.on("error", () => undefined);
    await expect(d.connect()).rejects.toMatchObject({ code: "28P01" });
    await d.end().catch(() => undefined);
    // Minting for a blocked service account still works (config), but the token is refused.
    const fresh = await t.mint("ci-bot");
    expect((await t.api("/v1/auth/whoami", { token: fresh })).status).toBe(401);
  });

  it("validates principal ids and needs the admin role", async () => {
    const bad = await t.api("/v1/principals/not-an-id/revoke", { body: {} });
    expect(bad.status).toBe(400);
    const forbidden = await t.api(`/v1/principals/${encodeURIComponent("sa:x")}/revoke`, {
      body: {},
      token: (await exchange(await idp.clientCredentials("agent-2", "agent-2-secret-0123456789abcdef0123456789"))).body["access_token"] as string,
    });
    expect(forbidden.status).toBe(403);
  });
});
