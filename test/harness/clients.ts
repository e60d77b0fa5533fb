/**
 * One PostgreSQL 15 and one gateway shared by a client regression file (test/clients-*.test.ts):
 * a masked column (text and integer), a deny rule, a row limit, a statement timeout (2 s, timed
 * by the gateway), a held DELETE, a relation
 * guarded in a schema that only a search_path reaches, and approvals by a `dba`.
 */
import { runClient, startPostgres, type PgServer } from "./postgres.js";
import { startTestGateway, type TestGateway } from "./gateway.js";

export interface ClientsFixture {
  readonly server: PgServer;
  readonly t: TestGateway;
  /** The agent's token (the PostgreSQL password through the gateway). */
  readonly token: string;
  /** Connection settings for a driver. */
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** SQL on the target directly, as the superuser. */
  target(sql: string): Promise<string>;
  /** The id of the pending approval request whose statement contains `text` (waits for it). */
  pending(text: string): Promise<string>;
  approve(id: string): Promise<void>;
  stop(): Promise<void>;
}

export const ROWS = 120;
export const MAX_ROWS = 100;
/** What the client gets when the gateway cancels a statement past the policy's statementTimeout. */
export const TIMEOUT_MESSAGE = "airlock: statement timeout (2s) exceeded (rule: statement-limit)";

export async function startClientsFixture(): Promise<ClientsFixture> {
  const server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["shop"] });
  await server.psql(
    `create table customers (id int primary key, name text not null, email text not null, score int not null);
     insert into customers select g, 'name ' || g, 'user' || g || '@example.com', g * 7 from generate_series(1, ${ROWS}) g;
     create table orders (id int primary key, total int not null);
     insert into orders select g, g * 10 from generate_series(1, 20) g;
     create schema app; create table app.secrets (x text); insert into app.secrets values ('top secret');
     alter table customers owner to app; alter table orders owner to app; alter schema app owner to app; alter table app.secrets owner to app;`,
    { database: "shop" },
  );
  const t = await startTestGateway({
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "dba1", groups: ["dba"] },
    ],
    connections: [{ name: "shop", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" }],
    policies: [
      { name: "no-drop", match: { operations: ["drop"] }, action: "deny", message: "DROP is not allowed here" },
      { name: "no-app-secrets", match: { relations: ["app.secrets"] }, action: "deny" },
      { name: "order-deletes-need-approval", match: { operations: ["delete"], relations: ["orders"] }, action: "require_approval", approvers: ["dba"] },
      { name: "hide-customers", action: "mask", columns: ["customers.email", "customers.score"], strategy: "redact" },
      { name: "row-limit", action: "allow", maxRows: MAX_ROWS },
      { name: "statement-limit", action: "allow", statementTimeout: "2s" },
    ],
  });
  const token = await t.mint("agent", "1h");
  const dba = await t.mint("dba1", "1h");
  return {
    server,
    t,
    token,
    host: "127.0.0.1",
    port: t.pgPort,
    database: "shop",
    user: "agent",
    target: (sql) => server.psql(sql, { database: "shop" }).then((s) => s.trim()),
    async pending(text) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await t.api("/v1/approvals?status=pending");
        const found = (r.body as { requests?: { id: string; statement?: string }[] }).requests?.find((q) => q.statement?.includes(text) === true);
        if (found !== undefined) return found.id;
        if (Date.now() > deadline) throw new Error(`no pending approval for ${text}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    },
    async approve(id) {
      const r = await t.api(`/v1/approvals/${id}/approve`, { token: dba, body: {} });
      if (r.status !== 200) throw new Error(`approve failed: ${r.status} ${r.text}`);
    },
    async stop() {
      await t.stop();
      await server.stop();
    },
  };
}

/** Run a program (python3, java) with a script and the fixture's connection in its environment; its stdout is JSON lines. */
export async function runScript(
  cmd: string,
  args: readonly string[],
  f: ClientsFixture,
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string; lines: Record<string, unknown>[] }> {
  const r = await runClient(cmd, args, {
    env: { ...process.env, PGHOST: f.host, PGPORT: String(f.port), PGDATABASE: f.database, PGUSER: f.user, PGPASSWORD: f.token, ...options.env },
    timeoutMs: options.timeoutMs ?? 120_000,
  });
  const lines = r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ...r, lines };
}
