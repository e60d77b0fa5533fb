/**
 * pgjdbc (Debian's libpostgresql-jdbc-java, Java 17 single-file programs) through the gateway:
 * the extended protocol, server-side prepared statements once a statement has run
 * `prepareThreshold` times, and binary transfer for integers. Covers what issue 12 fixed that
 * this driver meets — masked columns in text and binary, a denied statement that leaves the
 * connection usable, start-up `options`, `Statement.cancel()` landing only on its own
 * statement, a held DELETE, and the row limit through a reused prepared statement.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_ROWS, TIMEOUT_MESSAGE, runScript, startClientsFixture, type ClientsFixture } from "./harness/clients.js";

const JAR = "/usr/share/java/postgresql.jar";
let f: ClientsFixture;
let dir: string;
let n = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "airlock-jdbc-"));
  f = await startClientsFixture();
}, 240_000);

afterAll(async () => {
  await f.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Run a Java program whose `run(args)` body is `body`: `connect(props)` opens a connection to
 * the gateway (extra properties as "k=v" pairs), `out(k, v…)` prints one JSON line.
 */
function java(body: string): ReturnType<typeof runScript> {
  const file = join(dir, `Prog${++n}.java`);
  writeFileSync(
    file,
    `
import java.sql.*;
import java.util.*;
public class Prog${n} {
  static String q(Object v) {
    if (v == null) return "null";
    if (v instanceof Number || v instanceof Boolean) return v.toString();
    return "\\"" + v.toString().replace("\\\\", "\\\\\\\\").replace("\\"", "\\\\\\"").replace("\\n", "\\\\n") + "\\"";
  }
  static void out(String k, Object... kv) {
    StringBuilder b = new StringBuilder("{\\"k\\":" + q(k));
    for (int i = 0; i + 1 < kv.length; i += 2) b.append(",").append(q(kv[i])).append(":").append(q(kv[i + 1]));
    System.out.println(b.append("}"));
  }
  static Connection connect(String... props) throws SQLException {
    Properties p = new Properties();
    p.setProperty("user", System.getenv("PGUSER"));
    p.setProperty("password", System.getenv("PGPASSWORD"));
    p.setProperty("sslmode", "disable");
    for (String kv : props) { int i = kv.indexOf('='); p.setProperty(kv.substring(0, i), kv.substring(i + 1)); }
    return DriverManager.getConnection("jdbc:postgresql://" + System.getenv("PGHOST") + ":" + System.getenv("PGPORT") + "/" + System.getenv("PGDATABASE"), p);
  }
  public static void main(String[] args) throws Exception {
    ${body}
  }
}
`,
  );
  return runScript("java", ["-cp", JAR, file], f, { timeoutMs: 180_000 });
}

function line(lines: Record<string, unknown>[], key: string): Record<string, unknown> {
  const l = lines.find((x) => x["k"] === key);
  if (l === undefined) throw new Error(`no output line ${key}`);
  return l;
}

describe("pgjdbc through the gateway", () => {
  it("masks text and binary-transferred columns, also once the statement is server-prepared (prepareThreshold)", async () => {
    const r = await java(`
    try (Connection c = connect("prepareThreshold=3", "binaryTransfer=true")) {
      try (PreparedStatement ps = c.prepareStatement("select id, email, score from customers where id = ?")) {
        for (int i = 1; i <= 12; i++) {
          ps.setInt(1, i);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            out("row", "i", i, "id", rs.getInt(1), "email", rs.getString(2), "score", rs.getObject(3),
                "serverPrepared", ps.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare());
          }
        }
      }
      try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("select email, score from customers order by id limit 3")) {
        while (rs.next()) out("plain", "email", rs.getString(1), "score", rs.getObject(2));
      }
    }`);
    expect(r.stderr).toBe("");
    const rows = r.lines.filter((x) => x["k"] === "row");
    expect(rows).toHaveLength(12);
    expect(rows.some((x) => x["serverPrepared"] === true)).toBe(true);
    for (const row of rows) {
      expect(row["id"]).toBe(row["i"]);
      expect(String(row["email"])).not.toContain("@example.com");
      expect(row["score"]).toBeNull();
    }
    const plain = r.lines.filter((x) => x["k"] === "plain");
    expect(plain).toHaveLength(3);
    for (const p of plain) {
      expect(String(p["email"])).not.toContain("@example.com");
      expect(p["score"]).toBeNull();
    }
  }, 180_000);

  it("a denied statement gives a clear error naming its rule, and the connection goes on", async () => {
    const r = await java(`
    try (Connection c = connect(); Statement s = c.createStatement()) {
      try { s.execute("drop table orders"); out("drop", "ok", true); }
      catch (SQLException e) { out("drop", "ok", false, "state", e.getSQLState(), "msg", e.getMessage()); }
      try (PreparedStatement ps = c.prepareStatement("select x from app.secrets where x <> ?")) {
        ps.setString(1, "none"); ps.executeQuery(); out("secrets", "ok", true);
      } catch (SQLException e) { out("secrets", "ok", false, "state", e.getSQLState(), "msg", e.getMessage()); }
      try (ResultSet rs = s.executeQuery("select count(*) from orders")) { rs.next(); out("after", "n", rs.getInt(1)); }
    }`);
    expect(r.stderr).toBe("");
    expect(line(r.lines, "drop")).toMatchObject({ ok: false, state: "42501" });
    expect(String(line(r.lines, "drop")["msg"])).toContain("airlock: DROP is not allowed here");
    expect(line(r.lines, "secrets")).toMatchObject({ ok: false, state: "42501" });
    expect(String(line(r.lines, "secrets")["msg"])).toContain("no-app-secrets");
    expect(line(r.lines, "after")["n"]).toBe(20);
  }, 180_000);

  it("start-up options: -c statement_timeout, --search_path, and a protected setting refused by name", async () => {
    const r = await java(`
    try (Connection c = connect("options=-c statement_timeout=1234 --search_path=app,public"); Statement s = c.createStatement()) {
      try (ResultSet rs = s.executeQuery("show statement_timeout")) { rs.next(); out("timeout", "v", rs.getString(1)); }
      try (ResultSet rs = s.executeQuery("show search_path")) { rs.next(); out("path", "v", rs.getString(1)); }
      try { s.executeQuery("select * from secrets"); out("secrets", "ok", true); }
      catch (SQLException e) { out("secrets", "ok", false, "state", e.getSQLState(), "msg", e.getMessage()); }
    }
    try (Connection c = connect("options=-c role=postgres")) { out("role", "ok", true); }
    catch (SQLException e) { out("role", "ok", false, "msg", e.getMessage()); }`);
    expect(r.stderr).toBe("");
    expect(line(r.lines, "timeout")["v"]).toBe("1234ms");
    expect(line(r.lines, "path")["v"]).toBe("app,public");
    expect(line(r.lines, "secrets")).toMatchObject({ ok: false, state: "42501" });
    expect(String(line(r.lines, "secrets")["msg"])).toContain("no-app-secrets");
    expect(line(r.lines, "role")["ok"]).toBe(false);
    expect(String(line(r.lines, "role")["msg"])).toContain("airlock: role is set by the gateway");
  }, 180_000);

  it("statement_timeout is the client's to set; the policy's statementTimeout is still enforced by the gateway (server-prepared too)", async () => {
    const r = await java(`
    try (Connection c = connect("options=-c statement_timeout=60000", "prepareThreshold=1")) {
      try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("show statement_timeout")) { rs.next(); out("show", "v", rs.getString(1)); }
      try (Statement s = c.createStatement()) { s.execute("set statement_timeout = 0"); }
      try (PreparedStatement ps = c.prepareStatement("select pg_sleep(?)")) {
        for (int i = 0; i < 2; i++) {
          ps.setDouble(1, 20.0);
          try { ps.execute(); out("sleep", "ok", true); }
          catch (SQLException e) { out("sleep", "ok", false, "state", e.getSQLState(), "msg", e.getMessage()); }
        }
      }
      try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("select 5")) { rs.next(); out("after", "v", rs.getInt(1)); }
    }`);
    expect(r.stderr).toBe("");
    expect(line(r.lines, "show")["v"]).toBe("1min");
    const sleeps = r.lines.filter((x) => x["k"] === "sleep");
    expect(sleeps).toHaveLength(2);
    for (const s of sleeps) {
      expect(s).toMatchObject({ ok: false, state: "57014" });
      expect(String(s["msg"])).toContain(TIMEOUT_MESSAGE);
    }
    expect(line(r.lines, "after")["v"]).toBe(5);
  }, 180_000);

  it("Statement.cancel() cancels its own statement, never the next one", async () => {
    const r = await java(`
    try (Connection c = connect()) {
      int bad = 0, cancelled = 0;
      for (int i = 0; i < 15; i++) {
        final int ms = 20 + (i % 5) * 10;
        final PreparedStatement ps = c.prepareStatement("select pg_sleep(?)");
        ps.setDouble(1, ms / 1000.0);
        Thread t = new Thread(() -> { try { Thread.sleep(ms); ps.cancel(); } catch (Exception e) { } });
        t.start();
        try { ps.execute(); } catch (SQLException e) { if ("57014".equals(e.getSQLState())) cancelled++; }
        t.join();
        ps.close();
        try (PreparedStatement next = c.prepareStatement("select ?::int")) {
          next.setInt(1, i);
          try (ResultSet rs = next.executeQuery()) { rs.next(); if (rs.getInt(1) != i) bad++; }
        } catch (SQLException e) { bad++; out("late", "i", i, "state", e.getSQLState()); }
      }
      final Statement s = c.createStatement();
      Thread t = new Thread(() -> { try { Thread.sleep(500); s.cancel(); } catch (Exception e) { } });
      t.start();
      String state = null;
      try { s.execute("select pg_sleep(30)"); } catch (SQLException e) { state = e.getSQLState(); }
      t.join();
      try (ResultSet rs = s.executeQuery("select 42")) { rs.next(); out("summary", "bad", bad, "cancelled", cancelled, "long", state, "after", rs.getInt(1)); }
    }`);
    expect(r.stderr).toBe("");
    expect(r.lines.filter((x) => x["k"] === "late")).toEqual([]);
    expect(line(r.lines, "summary")).toMatchObject({ bad: 0, long: "57014", after: 42 });
  }, 180_000);

  it("a DELETE held for approval waits, and runs once a person approves it", async () => {
    const run = java(`
    try (Connection c = connect(); PreparedStatement ps = c.prepareStatement("delete from orders where id = ?")) {
      ps.setInt(1, 19);
      int n = ps.executeUpdate();
      SQLWarning w = ps.getWarnings();
      out("deleted", "n", n, "warning", w == null ? null : w.getMessage());
    }`);
    const id = await f.pending("delete from orders where id =");
    expect(await f.target("select count(*) from orders where id = 19")).toBe("1");
    // Longer than the 2 s statementTimeout: waiting for a person is not the statement's time.
    await new Promise((r) => setTimeout(r, 2500));
    await f.approve(id);
    const r = await run;
    expect(r.stderr).toBe("");
    expect(line(r.lines, "deleted")["n"]).toBe(1);
    expect(String(line(r.lines, "deleted")["warning"])).toContain("waiting for approval");
    expect(await f.target("select count(*) from orders where id = 19")).toBe("0");
  }, 180_000);

  it("the row limit holds for a prepared statement reused past prepareThreshold, and the connection goes on", async () => {
    const r = await java(`
    try (Connection c = connect("prepareThreshold=2"); PreparedStatement ps = c.prepareStatement("select id, email from customers where id > ? order by id")) {
      for (int i = 0; i < 6; i++) {
        ps.setInt(1, 0);
        int rows = 0; int clear = 0; String state = null;
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) { rows++; if (rs.getString(2).contains("@example.com")) clear++; }
        } catch (SQLException e) { state = e.getSQLState(); }
        SQLWarning w = ps.getWarnings();
        out("run", "i", i, "rows", rows, "clear", clear, "state", state, "warning", w == null ? null : w.getMessage());
        ps.clearWarnings();
        ps.setInt(1, 115);
        try (ResultSet rs = ps.executeQuery()) { int small = 0; while (rs.next()) small++; out("small", "i", i, "rows", small); }
      }
    }`);
    expect(r.stderr).toBe("");
    const runs = r.lines.filter((x) => x["k"] === "run");
    expect(runs).toHaveLength(6);
    // The result is cut at the limit with a notice (a warning in JDBC), or, when the cancel
    // reached the target before the statement ended, ends with the gateway's 57014: never more.
    for (const x of runs) {
      expect(x["clear"]).toBe(0);
      if (x["state"] === null) {
        expect(x["rows"]).toBe(MAX_ROWS);
        expect(String(x["warning"])).toContain(`cut at ${MAX_ROWS} rows`);
      } else {
        expect(x["state"]).toBe("57014");
        expect(Number(x["rows"])).toBeLessThanOrEqual(MAX_ROWS);
      }
    }
    expect(r.lines.filter((x) => x["k"] === "small").map((x) => x["rows"])).toEqual([5, 5, 5, 5, 5, 5]);
  }, 180_000);
});
