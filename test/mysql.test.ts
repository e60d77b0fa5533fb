/**
 * The MySQL engine against a real MariaDB server, through real clients: the `mariadb` CLI,
 * `mariadb-dump`, mysql2 (text and prepared statements) and Python's MySQLdb. Login with the
 * token as the password (caching_sha2_password full authentication, mysql_clear_password,
 * TLS), the gateway's own login to the target (mysql_native_password and MariaDB ed25519),
 * guardrails, masking of text and binary rows, limits, approvals, recording and audit, and the
 * gateway's credential never reaching the client.
 */
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../src/audit/types.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startMariaDb, type MariaDbServer } from "./harness/mariadb.js";
import { runProcess } from "./harness/redis.js";
import { until } from "./harness/until.js";

let db: MariaDbServer;
let gw: TestGateway;
let port: number;

beforeAll(async () => {
  db = await startMariaDb();
  const target = { type: "mysql", host: "127.0.0.1", port: db.port, database: "shop", password: db.password, sslmode: "disable" } as const;
  gw = await startTestGateway({
    listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0" },
    tls: { selfSigned: true },
    recording: { maxRowsPerStatement: 50 },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "boss", groups: ["approvers"] },
      { name: "outsider", groups: ["nobody"] },
    ],
    connections: [
      { ...target, name: "shop", user: "airlock_native", groups: ["agents"] },
      { ...target, name: "shoped", user: "airlock_ed", groups: ["agents"] },
      { ...target, name: "shopro", user: "airlock_native", groups: ["agents"] },
      { ...target, name: "broken", user: "airlock_native", password: "wrong-password", groups: ["agents"] },
    ],
    policies: [
      { name: "no-drop", connections: ["shop"], match: { operations: ["drop", "truncate"] }, action: "deny", message: "DROP and TRUNCATE are not allowed here" },
      { name: "deletes-need-approval", connections: ["shop"], match: { operations: ["delete"] }, action: "require_approval", approvers: ["approvers"], timeout: "30s" },
      { name: "pii", connections: ["shop*"], action: "mask", columns: ["customers.card_number"], detectors: ["email", "phone"] },
      { name: "ro", connections: ["shopro"], action: "allow", readOnly: true, maxRows: 5 },
    ],
  });
  port = gw.gw.addresses.mysql?.port ?? 0;
}, 180_000);

afterAll(async () => {
  await gw.stop();
  await db.stop();
});

function cli(token: string, connection: string, sql: string, extra: readonly string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // The statements on stdin, as a script: the CLI sends them one by one (-e would send them as one packet).
  return runProcess("mariadb", ["--no-defaults", "-h127.0.0.1", `-P${port}`, "-uagent", `-p${token}`, "--batch", ...extra, connection], { input: sql, timeoutMs: 60_000 });
}

async function audit(): Promise<AuditRecord[]> {
  const r = await gw.api("/v1/audit?limit=1000");
  return (r.body as { records: AuditRecord[] }).records;
}

describe("MySQL engine", () => {
  it("serves the mariadb CLI with the token as the password, masking rows", async () => {
    const token = await gw.mint("agent");
    const r = await cli(token, "shop", "SELECT id, name, email, card_number, notes FROM customers ORDER BY id");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe("id\tname\temail\tcard_number\tnotes");
    expect(lines[1]).toMatch(/^1\tAda\t\[EMAIL\]\t\[[A-Z_]+\]\tcall \[PHONE\]$/);
    expect(r.stdout).not.toContain("ada@example.com");
    expect(r.stdout).not.toContain("4111 1111 1111 1111");
    expect(r.stdout).toContain("plain");
  });

  it("over TLS (SSLRequest upgrade) and with mysql_clear_password", async () => {
    const token = await gw.mint("agent");
    const tls = await cli(token, "shop", "SELECT name FROM customers WHERE id = 2", ["--ssl", "--ssl-verify-server-cert=0"]);
    expect(tls.stderr).toBe("");
    expect(tls.stdout).toBe("name\nBob\n");
    const clear = await cli(token, "shop", "SELECT name FROM customers WHERE id = 3", ["--default-auth=mysql_clear_password"]);
    expect(clear.stderr).toBe("");
    expect(clear.stdout).toBe("name\nCy\n");
  });

  it("refuses a bad token (1045), an unknown connection (1049) and a stranger (1142-like access deny)", async () => {
    const token = await gw.mint("agent");
    const bad = await cli("not-a-token", "shop", "SELECT 1");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/ERROR 1045 \(28000\).*airlock: /);
    const unknown = await cli(token, "nosuch", "SELECT 1");
    expect(unknown.stderr).toMatch(/ERROR 1049 \(42000\).*airlock: unknown connection "nosuch"/);
    const outsider = await cli(await gw.mint("outsider"), "shop", "SELECT 1");
    expect(outsider.code).not.toBe(0);
    expect(outsider.stderr).toMatch(/airlock: /);
  });

  it("denies by policy with ERR 1142, and the session stays usable", async () => {
    const token = await gw.mint("agent");
    const r = await cli(token, "shop", "DROP TABLE orders; SELECT count(*) AS n FROM orders", ["--force"]);
    expect(r.stderr).toMatch(/ERROR 1142 \(42000\).*airlock: DROP and TRUNCATE are not allowed here \(rule: no-drop\)/);
    expect(r.stdout).toBe("n\n3\n");
    const still = await db.sql("SELECT count(*) FROM shop.orders");
    expect(still.stdout).toContain("3");
  });

  it("judges every statement of a multi-statement packet: one denied denies the packet", async () => {
    const token = await gw.mint("agent");
    // mysql2 fetches the gateway's RSA key for caching_sha2_password only when allowed to.
    const c = await mysql.createConnection({ host: "127.0.0.1", port, user: "agent", password: token, database: "shop", multipleStatements: true, allowPublicKeyRetrieval: true, connectTimeout: 60_000 });
    try {
      await expect(c.query("SELECT 1; DROP TABLE orders")).rejects.toThrow(/airlock: .*rule: no-drop/);
      const [results] = await c.query("SELECT 1 AS a; SELECT email FROM customers WHERE id = 1");
      const sets = results as unknown as { a?: number; email?: string }[][];
      expect(sets[0]?.[0]?.a).toBe(1);
      expect(sets[1]?.[0]?.email).toBe("[EMAIL]");
    } finally {
      await c.end();
    }
    expect((await db.sql("SELECT count(*) FROM shop.orders")).stdout).toContain("3");
  });

  it("serves mysql2 prepared statements with binary rows masked", async () => {
    const token = await gw.mint("agent");
    // shoped has no deny policy: `?` placeholders are MySQL syntax the interim (PostgreSQL)
    // classifier cannot parse, which fails closed where deny policies apply.
    const c = await mysql.createConnection({ host: "127.0.0.1", port, user: "agent", password: token, database: "shoped", ssl: { rejectUnauthorized: false }, connectTimeout: 60_000 });
    const guarded = await mysql.createConnection({ host: "127.0.0.1", port, user: "agent", password: token, database: "shop", ssl: { rejectUnauthorized: false }, connectTimeout: 60_000 });
    try {
      const [rows] = await c.execute("SELECT id, email, card_number, balance, born FROM customers WHERE id >= ? ORDER BY id", [1]);
      const list = rows as { id: number; email: string; card_number: string | null; balance: string; born: Date | null }[];
      expect(list).toHaveLength(3);
      expect(list[0]?.id).toBe(1);
      expect(list[0]?.email).toBe("[EMAIL]");
      expect(list[0]?.card_number).not.toContain("4111");
      expect(list[0]?.balance).toBe("10.50");
      expect(list[0]?.born).toBeInstanceOf(Date);
      // The same statement again (mysql2 caches it: an execution of a tracked statement id).
      const [again] = await c.execute("SELECT id, email, card_number, balance, born FROM customers WHERE id >= ? ORDER BY id", [3]);
      expect((again as { email: string }[])[0]?.email).toBe("[EMAIL]");
      const [n] = await c.execute("SELECT count(*) AS n FROM orders WHERE total > ?", [6]);
      expect(Number((n as { n: number }[])[0]?.n)).toBeGreaterThanOrEqual(1);
      // Refused at prepare (ERR 1142), and the session stays usable.
      await expect(guarded.execute("DROP TABLE orders")).rejects.toMatchObject({ errno: 1142, message: expect.stringMatching(/airlock: .*no-drop/) as unknown });
      const [m] = await guarded.execute("SELECT count(*) AS n FROM orders");
      expect(Number((m as { n: number }[])[0]?.n)).toBeGreaterThanOrEqual(2);
      // COM_STMT_CLOSE: the statement is forgotten (no answer); its id is then unknown.
      const st = await c.prepare("SELECT email FROM customers WHERE id = ?");
      const [one] = await st.execute([2]);
      expect((one as { email: string }[])[0]?.email).toBe("[EMAIL]");
      await st.close();
      await expect(st.execute([2])).rejects.toThrow(/unknown prepared statement/);
      const [still] = await c.execute("SELECT count(*) AS n FROM orders WHERE total > ?", [0]);
      expect(Number((still as { n: number }[])[0]?.n)).toBeGreaterThanOrEqual(2);
    } finally {
      await c.end();
      await guarded.end();
    }
  });

  it("serves Python's MySQLdb", async () => {
    const token = await gw.mint("agent");
    const script = [
      "import MySQLdb, sys",
      `c = MySQLdb.connect(host='127.0.0.1', port=${port}, user='agent', passwd=sys.argv[1], db='shop')`,
      "cur = c.cursor()",
      "cur.execute('SELECT name, email FROM customers WHERE id = %s', (2,))",
      "print(cur.fetchall())",
      "try:",
      "    cur.execute('DROP TABLE orders')",
      "except MySQLdb.Error as e:",
      "    print('refused', e.args[0], e.args[1])",
      "cur.execute('SELECT count(*) FROM orders')",
      "print(cur.fetchone()[0])",
    ].join("\n");
    const r = await runProcess("/usr/bin/python3", ["-c", script, token]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("(('Bob', '[EMAIL]'),)");
    expect(r.stdout).toMatch(/refused 1142 airlock: DROP and TRUNCATE are not allowed here \(rule: no-drop\)/);
    expect(r.stdout.trim().endsWith("3")).toBe(true);
  });

  it("logs in to the target with MariaDB ed25519", async () => {
    const token = await gw.mint("agent");
    const r = await cli(token, "shoped", "SELECT CURRENT_USER() AS u");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("u\nairlock_ed@127.0.0.1\n");
  });

  it("refuses a target login failure with a clear error, never the credential", async () => {
    const token = await gw.mint("agent");
    const r = await cli(token, "broken", "SELECT 1");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/airlock: the target refused the gateway's login/);
    expect(r.stderr).not.toContain("wrong-password");
  });

  it("keeps the session on its database: COM_INIT_DB and USE to another are refused", async () => {
    const token = await gw.mint("agent");
    const r = await cli(token, "shop", "USE other; SELECT 1 AS still", ["--force"]);
    expect(r.stderr).toMatch(/ERROR 1142 \(42000\).*another database is another connection/);
    expect(r.stdout).toBe("still\n1\n");
    const c = await mysql.createConnection({ host: "127.0.0.1", port, user: "agent", password: token, database: "shop", allowPublicKeyRetrieval: true, connectTimeout: 60_000 });
    try {
      await expect(c.changeUser({ database: "other" })).rejects.toThrow(/airlock: /);
    } finally {
      c.destroy();
    }
  });

  it("applies readOnly and maxRows", async () => {
    const token = await gw.mint("agent");
    const w = await cli(token, "shopro", "INSERT INTO orders (customer_id, total) VALUES (1, 1)");
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/READ ONLY|read.only/i);
    const undo = await cli(token, "shopro", "SET SESSION TRANSACTION READ WRITE");
    expect(undo.stderr).toMatch(/ERROR 1142 .*read-only/);
    const many = await cli(token, "shopro", "SELECT n FROM numbers ORDER BY n; SELECT 'after' AS x", ["--force"]);
    expect(many.stdout.split("\n").slice(0, 7)).toEqual(["n", "1", "2", "3", "4", "5", "x"]);
    expect(many.stdout).toContain("after");
  });

  it("holds a DELETE for approval and runs it once approved", async () => {
    const token = await gw.mint("agent");
    const approver = await gw.mint("boss");
    const c = await mysql.createConnection({ host: "127.0.0.1", port, user: "agent", password: token, database: "shop", allowPublicKeyRetrieval: true, connectTimeout: 60_000 });
    try {
      const pending = c.query("DELETE FROM orders WHERE id = 3");
      pending.catch(() => undefined);
      const id = await until("the approval request", async () => {
        const list = await gw.api("/v1/approvals?status=pending");
        return (list.body as { requests: { id: string; statement?: string }[] }).requests.find((r) => r.statement?.startsWith("DELETE FROM orders") === true)?.id;
      });
      const decided = await gw.api(`/v1/approvals/${id}/approve`, { token: approver, body: {} });
      expect(decided.status).toBe(200);
      const [res] = await pending;
      expect((res as { affectedRows: number }).affectedRows).toBe(1);
    } finally {
      await c.end();
    }
    expect((await db.sql("SELECT count(*) FROM shop.orders")).stdout).toContain("2");
  });

  it("works for mariadb-dump", async () => {
    const token = await gw.mint("agent");
    const r = await runProcess("mariadb-dump", ["--no-defaults", "-h127.0.0.1", `-P${port}`, "-ushoped", `-p${token}`, "--skip-lock-tables", "--no-tablespaces", "shoped", "customers"], { timeoutMs: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("CREATE TABLE `customers`");
    expect(r.stdout).toContain("INSERT INTO `customers` VALUES");
    expect(r.stdout).toContain("[EMAIL]");
    expect(r.stdout).not.toContain("ada@example.com");
  });

  it("records statements and what the client saw, audits decisions, and never shows the gateway's password", async () => {
    const token = await gw.mint("agent");
    await cli(token, "shop", "SELECT email FROM customers WHERE id = 1");
    const records = await audit();
    const denied = records.find((r) => r.type === "db.query" && r.protocol === "mysql" && r.decision === "deny" && r.rule === "no-drop");
    expect(denied).toBeDefined();
    const sessions = await gw.api("/v1/sessions?limit=200");
    const list = (sessions.body as { sessions: { id: string; protocol: string }[] }).sessions.filter((s) => s.protocol === "mysql");
    expect(list.length).toBeGreaterThan(3);
    const shown = await Promise.all(list.slice(0, 20).map((s) => gw.api(`/v1/sessions/${s.id}`)));
    const text = shown.map((s) => s.text).join("\n");
    expect(text).toContain("SELECT email FROM customers WHERE id = 1");
    expect(text).toContain("[EMAIL]");
    expect(text).not.toContain("ada@example.com");
    expect(gw.logs()).not.toContain(db.password);
    expect(JSON.stringify(records)).not.toContain(db.password);
    expect(text).not.toContain(db.password);
  });
});
