/**
 * The engine conformance suite (suite.ts) for the PostgreSQL engine (src/protocols/postgres):
 * a real PostgreSQL 15, the in-process gateway, and node-postgres as the client. Native forms
 * are ErrorResponses, severity and SQLSTATE (INTERFACE.md): ERROR 42501 deny, ERROR 58000 audit
 * unavailable, FATAL 3D000 unknown connection, FATAL 28P01 bad credential, FATAL 57P01 when
 * the gateway ends a session.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { startPostgres } from "../harness/postgres.js";
import { startTestGateway } from "../harness/gateway.js";
import { defineConformance, type ConformanceWorld, type EngineSession, type NativeError, type Outcome, recordedResults } from "./suite.js";

const DENY_RULE = "conformance-deny";
const HOLD_RULE = "conformance-hold";
const SECRET_EMAIL = `owner-${randomBytes(6).toString("hex")}@example.com`;

/** An ErrorResponse as `SEVERITY SQLSTATE` (ERROR leaves the session usable, FATAL ends it) and its message. */
function nativeOf(e: unknown): NativeError {
  const err = e as { code?: unknown; severity?: unknown; message?: unknown };
  const severity = typeof err.severity === "string" ? err.severity : "no severity";
  const code = typeof err.code === "string" ? err.code : "no sqlstate";
  return { code: `${severity} ${code}`, message: typeof err.message === "string" ? err.message : String(e) };
}

/** Rows as `a|b` lines, as psql -At would print them. */
function render(r: pg.QueryResult | pg.QueryResult[]): string {
  const results = Array.isArray(r) ? r : [r];
  return results.flatMap((x) => x.rows.map((row: Record<string, unknown>) => Object.values(row).map(String).join("|"))).join("\n");
}

async function start(): Promise<ConformanceWorld> {
  const server = await startPostgres({ users: [{ name: "app", password: "app-password-1", auth: "scram-sha-256" }], databases: ["shop"] });
  try {
    await server.psql(
      `create table marks (tag text primary key);
       create table held_marks (tag text primary key);
       create table forbidden (id int);
       insert into forbidden values (1);
       create table people (id int primary key, email text);
       insert into people values (1, '${SECRET_EMAIL}');
       alter table marks owner to app; alter table held_marks owner to app;
       alter table forbidden owner to app; alter table people owner to app;`,
      { database: "shop" },
    );
    const gw = await startTestGateway({
      serviceAccounts: [
        { name: "agent", groups: ["agents"] },
        { name: "approver", groups: ["approvers"] },
      ],
      connections: [
        { name: "shop", type: "postgres", host: "127.0.0.1", port: server.port, database: "shop", user: "app", password: "app-password-1", groups: ["agents"], sslmode: "disable" },
      ],
      policies: [
        { name: DENY_RULE, match: { relations: ["forbidden"] }, action: "deny" },
        { name: HOLD_RULE, match: { operations: ["insert"], relations: ["held_marks"] }, action: "require_approval", approvers: ["approvers"] },
        { name: "conformance-mask", action: "mask", columns: ["people.email"], strategy: "redact" },
      ],
    });
    const approverToken = await gw.mint("approver", "1h");

    const open = async (token: string): Promise<EngineSession> => {
      const c = new pg.Client({ host: "127.0.0.1", port: gw.pgPort, database: "shop", user: "agent", password: token });
      const notices: string[] = [];
      c.on("notice", (n) => notices.push(n.message ?? ""));
      // An error while idle (the gateway's FATAL) also arrives here; the close below reports it.
      c.on("error", () => undefined);
      const closed = new Promise<void>((resolve) => c.once("end", () => resolve()));
      await c.connect();
      let ended = false;
      return {
        notices,
        async run(text: string): Promise<Outcome> {
          try {
            return { ok: true, output: render(await c.query(text)) };
          } catch (e) {
            return { ok: false, error: nativeOf(e) };
          }
        },
        closed: () => closed,
        async close() {
          if (ended) return;
          ended = true;
          await c.end().catch(() => undefined);
        },
      };
    };

    return {
      gw,
      protocol: "postgres",
      connection: "shop",
      agent: "agent",
      approverToken,
      workload: {
        allowed: (tag) => ({ text: `select 'ok-${tag}' as v`, output: `ok-${tag}` }),
        effect: (tag) => `insert into marks values ('${tag}')`,
        held: (tag) => ({ text: `insert into held_marks values ('${tag}')`, rule: HOLD_RULE }),
        async marked(tag) {
          const n = await server.psql(`select (select count(*) from marks where tag = '${tag}') + (select count(*) from held_marks where tag = '${tag}')`, { database: "shop" });
          return Number(n.trim()) > 0;
        },
        denied: (tag) => ({ text: `select upper('leak-${tag}') as v from forbidden`, rule: DENY_RULE, wouldPrint: `LEAK-${tag.toUpperCase()}` }),
        longRunning: (tag) => `select '${tag}' as tag, pg_sleep(60)`,
        async running(tag) {
          const n = await server.psql(`select count(*) from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() and query like '%${tag}%'`);
          return Number(n.trim()) > 0;
        },
        masked: { text: "select email from people where id = 1", original: SECRET_EMAIL, masked: "[EMAIL]" },
        // A COPY of a masked column in an encoding the gateway cannot rewrite: the target starts
        // answering (CopyOutResponse), then the engine refuses the result (COPY in UTF8 is masked).
        refusedResult: { text: "copy (select id, email from people) to stdout (encoding 'latin1')" },
        async engineRefusal(s) {
          const o = await s.run("copy people to stdout (format csv, encoding 'latin1')");
          if (o.ok) throw new Error("the COPY the gateway cannot mask was not refused");
          return o.error;
        },
      },
      open,
      async login(connection, credential) {
        const c = new pg.Client({ host: "127.0.0.1", port: gw.pgPort, database: connection, user: "agent", password: credential });
        c.on("error", () => undefined);
        try {
          await c.connect();
          await c.query("select 1");
          return undefined;
        } catch (e) {
          return nativeOf(e);
        } finally {
          await c.end().catch(() => undefined);
        }
      },
        // The recorded results: rows (as the client got them), command tags and errors.
      seen: (sessionId) => recordedResults(gw, sessionId),
      async stop() {
        await gw.stop();
        await server.stop();
      },
    };
  } catch (e) {
    await server.stop();
    throw e;
  }
}

defineConformance({
  engine: "postgres",
  native: {
    deny: "ERROR 42501",
    auditUnavailable: "ERROR 58000",
    auditUnavailableAtLogin: "FATAL 58000",
    unknownConnection: "FATAL 3D000",
    badCredential: "FATAL 28P01",
    sessionEnded: "FATAL 57P01",
    loginRefusalSaysWhy: true,
  },
  start,
});
