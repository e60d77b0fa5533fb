/**
 * Large objects through the fastpath interface (FunctionCall messages naming a function by
 * OID), through the gateway with the clients people use: psycopg2 `lobject`, pgjdbc
 * LargeObjectManager, `psql \lo_import` / `\lo_export`, pg_dump of a database holding a large
 * object. Each call is judged as the SQL call of the function its OID names (audited and
 * recorded), its result goes through the detectors, and a deny policy on a dangerous function
 * family still refuses the fastpath call of a member (`lo_export` writes a server file).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serialize } from "pg-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFunctionCall } from "../src/protocols/postgres/wire/index.js";
import { runClient, startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { rawSession } from "./harness/raw-pg.js";

let server: PgServer;
let t: TestGateway;
let token: string;
const dir = mkdtempSync(join(tmpdir(), "airlock-fastpath-"));

interface AuditRecord {
  readonly statement?: string;
  readonly decision?: string;
  readonly rule?: string;
}

async function audit(): Promise<AuditRecord[]> {
  await t.api("/v1/audit/verify"); // flushes the local log to the store
  return ((await t.api("/v1/audit?afterSeq=0&limit=1000")).body as { records: AuditRecord[] }).records;
}

/** The text of a large object, read on the target directly (not through the gateway). */
async function direct(oid: string): Promise<string> {
  return (await server.psql(`select convert_from(lo_get(${oid}), 'UTF8')`, { database: "lo" })).trim();
}

beforeAll(async () => {
  server = await startPostgres({ users: [{ name: "app", password: "app-password", auth: "scram-sha-256" }], databases: ["lo", "lo_dump"] });
  await server.psql(`grant create on schema public to app`, { database: "lo" });
  await server.psql(
    `select lo_from_bytea(424242, convert_to('dumped object: quarterly numbers 2026', 'UTF8'));
     alter large object 424242 owner to app;`,
    { database: "lo_dump" },
  );
  const conn = { type: "postgres" as const, host: "127.0.0.1", port: server.port, user: "app", password: "app-password", sslmode: "disable" as const };
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [
      { ...conn, database: "lo", name: "lo", groups: ["agents"] },
      { ...conn, database: "lo_dump", name: "lo_dump", groups: ["agents"] },
    ],
    policies: [
      { name: "pii", connections: ["lo", "lo_dump"], action: "mask", detectors: ["email"], strategy: "redact" },
      // lo_export is a member of the server_file_write family, lo_import(text) of server_file_read
      // (sql/function-families.ts); psql's \lo_import is libpq's client-side one (lo_creat, lowrite).
      { name: "no-server-files", connections: ["lo"], match: { functions: ["pg_file_write", "pg_read_file"] }, action: "deny", message: "server file access is not allowed" },
    ],
  });
  token = await t.mint("agent");
}, 300_000);

afterAll(async () => {
  await t.stop();
  await server.stop();
});

const PSYCOPG2_LOBJECT = `
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
lo = conn.lobject(0, "wb")
lo.write(sys.argv[2].encode())
oid = lo.oid
lo.close()
conn.commit()
lo = conn.lobject(oid, "rb")
data = lo.read()
lo.close()
conn.commit()
print("oid=%d" % oid)
print("read=" + data.decode())
`;

const JAVA_LO = `
import java.sql.*;
import org.postgresql.PGConnection;
import org.postgresql.largeobject.LargeObject;
import org.postgresql.largeobject.LargeObjectManager;

public class LoClient {
  public static void main(String[] a) throws Exception {
    try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
      c.setAutoCommit(false);
      LargeObjectManager m = c.unwrap(PGConnection.class).getLargeObjectAPI();
      long oid = m.createLO(LargeObjectManager.READWRITE);
      LargeObject lo = m.open(oid, LargeObjectManager.WRITE);
      lo.write(a[3].getBytes("UTF-8"));
      lo.close();
      c.commit();
      lo = m.open(oid, LargeObjectManager.READ);
      byte[] b = lo.read(4096);
      lo.close();
      c.commit();
      System.out.println("oid=" + oid);
      System.out.println("read=" + new String(b, "UTF-8"));
    }
  }
}
`;

function field(stdout: string, name: string): string {
  const m = new RegExp(`^${name}=(.*)$`, "m").exec(stdout);
  if (m === null) throw new Error(`no ${name}= in ${stdout}`);
  return m[1] ?? "";
}

describe("large objects through the fastpath interface", () => {
  it("psycopg2 lobject: write, then read back with the detectors applied", async () => {
    const dsn = `host=127.0.0.1 port=${t.pgPort} dbname=lo user=agent password=${token} sslmode=disable application_name=lo-psycopg2`;
    const r = await runClient("/usr/bin/python3", ["-c", PSYCOPG2_LOBJECT, dsn, "psycopg2 note for dave.stone@example.com, ok"], { timeoutMs: 60_000 });
    expect(r.stderr).toBe("");
    const oid = field(r.stdout, "oid");
    // The client wrote its own bytes; what it reads back is masked.
    expect(await direct(oid)).toBe("psycopg2 note for dave.stone@example.com, ok");
    expect(field(r.stdout, "read")).toBe("psycopg2 note for [EMAIL], ok");
    const records = await audit();
    const calls = records.filter((x) => x.statement?.includes("fastpath FunctionCall") === true);
    expect(calls.map((x) => x.statement)).toEqual(expect.arrayContaining([expect.stringContaining('SELECT "pg_catalog"."lowrite"($1, $2)'), expect.stringContaining('SELECT "pg_catalog"."loread"($1, $2)')]));
    expect(calls.every((x) => x.decision === "allow")).toBe(true);
    // Recorded: the call as its SQL, and the result as the client saw it (masked).
    const sessions = ((await t.api("/v1/sessions?limit=100")).body as { sessions: { id: string; attributes: Record<string, string> }[] }).sessions;
    const mine = sessions.find((s) => s.attributes["application_name"] === "lo-psycopg2");
    const shown = (await t.api(`/v1/sessions/${mine?.id ?? ""}`)).body as { recording: { kind: string; sql?: string; rows?: (string | null)[][] }[] };
    expect(shown.recording.some((e) => e.kind === "query" && e.sql?.includes('"pg_catalog"."loread"') === true)).toBe(true);
    const recorded = JSON.stringify(shown.recording);
    expect(recorded).not.toContain("dave.stone@example.com");
    expect(recorded).not.toContain(Buffer.from("dave.stone@example.com").toString("hex"));
    expect(recorded).toContain(Buffer.from("[EMAIL]").toString("hex"));
  }, 90_000);

  it("pgjdbc LargeObjectManager: create, write, read", async () => {
    const src = join(dir, "LoClient.java");
    writeFileSync(src, JAVA_LO);
    const url = `jdbc:postgresql://127.0.0.1:${t.pgPort}/lo?sslmode=disable`;
    const r = await runClient("java", ["-cp", "/usr/share/java/postgresql.jar", src, url, "agent", token, "jdbc object for erin.moss@example.org"], { timeoutMs: 120_000 });
    expect(r.stderr).toBe("");
    const oid = field(r.stdout, "oid");
    expect(await direct(oid)).toBe("jdbc object for erin.moss@example.org");
    expect(field(r.stdout, "read")).toBe("jdbc object for [EMAIL]");
  }, 150_000);

  it("psql \\lo_import and \\lo_export round-trip a file", async () => {
    const input = join(dir, "in.txt");
    const output = join(dir, "out.txt");
    writeFileSync(input, "plain large object data 12345\n");
    const imp = await t.psql("lo", token, ["-X", "-c", `\\lo_import ${input}`]);
    expect(imp.stderr).toBe("");
    const oid = /lo_import (\d+)/.exec(imp.stdout)?.[1];
    expect(oid).toBeDefined();
    expect(await direct(oid ?? "0")).toBe("plain large object data 12345");
    const exp = await t.psql("lo", token, ["-X", "-c", `\\lo_export ${oid ?? "0"} ${output}`]);
    expect(exp.stderr).toBe("");
    expect(readFileSync(output, "utf8")).toBe("plain large object data 12345\n");
  }, 90_000);

  it("pg_dump dumps a database holding a large object", async () => {
    const r = await runClient(join(server.binDir, "pg_dump"), ["-h", "127.0.0.1", "-p", String(t.pgPort), "-U", "agent", "-d", "lo_dump", "--no-password"], {
      env: { ...process.env, PGPASSWORD: token, PGSSLMODE: "disable" },
      timeoutMs: 60_000,
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("lo_create('424242')");
    expect(r.stdout).toContain(Buffer.from("dumped object: quarterly numbers 2026").toString("hex"));
  }, 90_000);

  it("a deny policy on a function family refuses the fastpath call of a member (lo_export), audited", async () => {
    const oidOf = async (sig: string): Promise<number> => Number((await server.psql(`select '${sig}'::regprocedure::oid`, { database: "lo" })).trim());
    const loExport = await oidOf("pg_catalog.lo_export(oid, text)");
    const int4 = Buffer.alloc(4);
    int4.writeInt32BE(12345);
    const bytes = Buffer.concat([
      encodeFunctionCall({ functionOid: loExport, args: [int4, Buffer.from(join(dir, "server-side.txt"))], argFormats: [1, 0], resultFormat: 1 }),
      serialize.query("select 'still here' as s"),
    ]);
    const text = (await rawSession({ port: t.pgPort, database: "lo", password: token, bytes, readyCount: 2 })).toString("latin1");
    expect(text).toContain("42501");
    expect(text).toContain("airlock: server file access is not allowed (rule: no-server-files)");
    expect(text).toContain("still here");
    const loImport = await oidOf("pg_catalog.lo_import(text)");
    const imported = (
      await rawSession({
        port: t.pgPort,
        database: "lo",
        password: token,
        bytes: encodeFunctionCall({ functionOid: loImport, args: [Buffer.from("/etc/passwd")], argFormats: [0], resultFormat: 1 }),
        readyCount: 1,
      })
    ).toString("latin1");
    expect(imported).toContain("airlock: server file access is not allowed (rule: no-server-files)");
    const records = await audit();
    for (const fn of ["lo_export", "lo_import"]) {
      const rec = records.find((x) => x.statement?.includes(`"pg_catalog"."${fn}"`) === true);
      expect(rec, fn).toMatchObject({ decision: "deny", rule: "no-server-files" });
    }
  }, 60_000);
});
