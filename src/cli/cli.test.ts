import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiServer } from "../api/server.js";
import type { ApiServer } from "../api/server.js";
import type { AuditVerifyResult } from "../audit/types.js";
import type { SessionInfo } from "../core/session.js";
import { writeAdminToken } from "../identity/admin.js";
import { TokenService } from "../identity/tokens.js";
import { createLogger } from "../observability/logger.js";
import { GatewayMetrics } from "../observability/metrics.js";
import { SessionRegistry } from "../policy/registry.js";
import { FileRecordingStore } from "../recording/file-store.js";
import type { RecordingEntry, RecordingInput } from "../recording/types.js";
import { openStore } from "../store/index.js";
import type { Store } from "../store/types.js";
import { runCli, tokenIdFrom } from "./cli.js";

let root: string;
let dataDir: string;
let store: Store;
let tokens: TokenService;
let api: ApiServer;
let apiUrl: string;
let adminToken: string;
let registry: SessionRegistry;
let metrics: GatewayMetrics;
let recordings: FileRecordingStore;
let auditResult: AuditVerifyResult = { ok: true, records: 7, lastSeq: 7 };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "airlock-cli-"));
  dataDir = join(root, "data");
  store = await openStore({ dataDir });
  recordings = new FileRecordingStore({ dataDir });
  const logger = createLogger({ level: "silent" });
  tokens = await TokenService.open({
    keyDir: join(dataDir, "keys"),
    store,
    serviceAccounts: [{ name: "ci-bot", groups: ["agents"], sshPublicKeys: [] }],
    defaultTtlMs: 15 * 60_000,
    maxTtlMs: 3_600_000,
    logger,
  });
  adminToken = await writeAdminToken(dataDir);
  registry = new SessionRegistry();
  metrics = new GatewayMetrics();
  api = await createApiServer({
    store,
    tokens,
    recordings,
    audit: { verify: () => Promise.resolve(auditResult) },
    liveSessions: registry,
    adminToken,
    metrics,
    logger,
  });
  const addr = await api.listen("127.0.0.1", 0);
  apiUrl = `http://127.0.0.1:${addr.port}`;
});

afterAll(async () => {
  await api.close();
  await tokens.close();
  await metrics.close();
  await recordings.close();
  await store.close();
  await rm(root, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    text: () => chunks.join(""),
  };
}

async function cli(argv: string[], env: NodeJS.ProcessEnv = { AIRLOCK_API: apiUrl, AIRLOCK_TOKEN: adminToken }, cwd = root): Promise<Run> {
  const out = sink();
  const err = sink();
  const code = await runCli(argv, { stdout: out.stream, stderr: err.stream, env, cwd });
  return { code, stdout: out.text(), stderr: err.text() };
}

function expectOneErrorLine(r: Run, code: number): string {
  expect(r.code).toBe(code);
  expect(r.stderr).toMatch(/^airlock: [^\n]+\n$/);
  return r.stderr;
}

function sessionInfo(id: string, tokenId: string): SessionInfo {
  return {
    id,
    clientProtocol: "postgres", targetType: "postgres",
    connection: "orders",
    principal: { kind: "service_account", id: "sa:ci-bot", name: "ci-bot", groups: ["agents"], tokenId },
    clientAddress: "127.0.0.1:50000",
    startedAt: new Date(),
    attributes: {},
  };
}

describe("airlock token", () => {
  it("create prints only the token and a newline", async () => {
    const r = await cli(["token", "create", "--service-account", "ci-bot", "--ttl", "5m"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    const principal = await tokens.verify(r.stdout.trim());
    expect(principal.name).toBe("ci-bot");
    const ttl = (principal.expiresAt?.getTime() ?? 0) - Date.now();
    expect(ttl).toBeGreaterThan(4 * 60_000);
    expect(ttl).toBeLessThanOrEqual(5 * 60_000 + 1000);
  });

  it("create reports API refusals and usage errors as one line", async () => {
    const unknown = await cli(["token", "create", "--service-account", "nobody"]);
    expect(expectOneErrorLine(unknown, 1)).toBe('airlock: unknown service account "nobody"\n');
    expect(unknown.stdout).toBe("");
    const tooLong = await cli(["token", "create", "--service-account", "ci-bot", "--ttl", "2h"]);
    expect(expectOneErrorLine(tooLong, 1)).toContain("1h");
    expectOneErrorLine(await cli(["token", "create"]), 2);
    expectOneErrorLine(await cli(["token", "create", "--service-account", "ci-bot", "--ttl", "soon"]), 2);
    expectOneErrorLine(await cli(["tokn"]), 2);
  });

  it("revoke by id and by the whole token ends live sessions", async () => {
    const a = await tokens.mint("ci-bot", { createdBy: "test" });
    const live = registry.register(sessionInfo(randomUUID(), a.id));
    const r1 = await cli(["token", "revoke", a.id]);
    expect(r1.code).toBe(0);
    expect(r1.stdout).toBe(`revoked ${a.id} (1 live sessions ended)\n`);
    expect(live.signal.aborted).toBe(true);
    live.unregister();

    const b = await tokens.mint("ci-bot", { createdBy: "test" });
    const r2 = await cli(["token", "revoke", b.token]);
    expect(r2.stdout).toBe(`revoked ${b.id} (0 live sessions ended)\n`);
    await expect(tokens.verify(b.token)).rejects.toMatchObject({ code: "GW_AUTH_REVOKED" });

    const missing = await cli(["token", "revoke", randomUUID()]);
    expect(expectOneErrorLine(missing, 1)).toContain("no token");
    expectOneErrorLine(await cli(["token", "revoke", "a b; rm -rf /"]), 2);
  });

  it("tokenIdFrom reads the jti of a token without verifying it", () => {
    const payload = Buffer.from(JSON.stringify({ jti: "abc-123" })).toString("base64url");
    expect(tokenIdFrom(`eyJhbGciOiJub25lIn0.${payload}.`)).toBe("abc-123");
    expect(tokenIdFrom(" 0f8fad5b-d9cb-469f-a165-70867728950e ")).toBe("0f8fad5b-d9cb-469f-a165-70867728950e");
  });
});

describe("airlock sessions", () => {
  const done = randomUUID();
  const running = randomUUID();
  const paced = randomUUID();

  beforeAll(async () => {
    await store.insertSession({
      id: done,
      protocol: "postgres",
      connection: "orders",
      principalId: "sa:ci-bot",
      principalKind: "service_account",
      principalName: "ci-bot",
      groups: ["agents"],
      clientAddress: "10.1.2.3:4444",
      startedAt: new Date("2026-03-01T10:00:00Z"),
      attributes: { application_name: "psql" },
    });
    await store.endSession(done, {
      endedAt: new Date("2026-03-01T10:05:00Z"),
      reason: "client_closed",
      statements: 3,
      bytesFromClient: 1,
      bytesToClient: 2,
    });
    await store.insertSession({
      id: running,
      protocol: "postgres",
      connection: "billing",
      principalId: "sa:ci-bot",
      principalKind: "service_account",
      principalName: "ci-bot",
      groups: ["agents"],
      clientAddress: "10.1.2.3:5555",
      startedAt: new Date("2026-03-02T10:00:00Z"),
      attributes: {},
    });
    // Written through the real recorder (it stamps `t` itself).
    const inputs: RecordingInput[] = [
      { kind: "header", sessionId: done, protocol: "postgres", connection: "orders", principal: "sa:ci-bot", startedAt: "2026-03-01T10:00:00.000Z", version: 1 },
      { kind: "query", seq: 1, stage: "parse", sql: "SELECT id, email\nFROM customers WHERE id = $1", decision: "allow" },
      {
        kind: "result",
        seq: 1,
        resultKind: "execute",
        params: ["42"],
        commandTag: "SELECT 2",
        rowCount: 2,
        columns: ["id", "email"],
        rows: [
          ["42", "[EMAIL]"],
          ["1000", null],
        ],
        durationMs: 3,
      },
      { kind: "query", seq: 2, stage: "simple", sql: "DROP TABLE customers", decision: "deny", rule: "no-destructive-ddl", message: "DROP is not allowed here" },
      { kind: "query", seq: 3, stage: "simple", sql: "select '\u001b[2Jgotcha'", decision: "allow" },
      { kind: "result", seq: 3, resultKind: "simple", rowCount: 0, error: { sqlstate: "42P01", message: "relation does not exist" }, durationMs: 1 },
      { kind: "end", reason: "client_closed" },
    ];
    const recorder = recordings.open(done);
    for (const e of inputs) recorder.append(e);
    await recorder.close();

    // A recording with known times for the replay pacing test, in the store's own file format.
    const timed: RecordingEntry[] = [
      { t: 0, kind: "header", sessionId: paced, protocol: "postgres", connection: "orders", principal: "sa:ci-bot", startedAt: "2026-03-01T10:00:00.000Z", version: 1 },
      { t: 1000, kind: "query", seq: 1, stage: "simple", sql: "select 1", decision: "allow" },
      { t: 2000, kind: "end", reason: "client_closed" },
    ];
    const { dir, file } = recordings.pathOf(paced);
    await mkdir(dir, { recursive: true });
    await writeFile(file, timed.map((e) => `${JSON.stringify(e)}\n`).join(""));
    await store.insertSession({
      id: paced,
      protocol: "postgres",
      connection: "orders",
      principalId: "sa:ci-bot",
      principalKind: "service_account",
      principalName: "ci-bot",
      groups: [],
      clientAddress: "10.1.2.3:6666",
      startedAt: new Date("2026-02-01T10:00:00Z"),
      attributes: {},
    });
  });

  it("list shows a table with live and ended sessions, and JSON with --json", async () => {
    const live = registry.register({ ...sessionInfo(running, "t"), connection: "billing" });
    try {
      const r = await cli(["sessions", "list"]);
      expect(r.code).toBe(0);
      const lines = r.stdout.trimEnd().split("\n");
      expect(lines[0]).toMatch(/^ID\s+PRINCIPAL\s+CONNECTION\s+CLIENT\s+STARTED\s+ENDED\s+STATEMENTS$/);
      const doneLine = lines.find((l) => l.startsWith(done));
      const runningLine = lines.find((l) => l.startsWith(running));
      expect(doneLine).toMatch(/sa:ci-bot\s+orders\s+10\.1\.2\.3:4444\s+2026-03-01 10:00:00Z\s+2026-03-01 10:05:00Z\s+3$/);
      expect(runningLine).toMatch(/billing\s+10\.1\.2\.3:5555\s+2026-03-02 10:00:00Z\s+live\s+-$/);
      // Columns are aligned: every row's CONNECTION column starts at the same offset.
      expect(doneLine!.indexOf("orders")).toBe(runningLine!.indexOf("billing"));

      const j = await cli(["sessions", "list", "--json", "--connection", "orders", "--limit", "5"]);
      const parsed = JSON.parse(j.stdout) as { sessions: { id: string }[] };
      expect(parsed.sessions.map((s) => s.id)).toEqual([done, paced]);
      expectOneErrorLine(await cli(["sessions", "list", "--limit", "zero"]), 2);
    } finally {
      live.unregister();
    }
  });

  it("show prints the header and every statement with decisions, params, rows and errors", async () => {
    const r = await cli(["sessions", "show", done]);
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^Session\s+/);
    expect(out).toMatch(/Principal\s+sa:ci-bot \(service_account\) groups: agents/);
    expect(out).toMatch(/Connection\s+orders \(postgres\)/);
    expect(out).toMatch(/Client\s+10\.1\.2\.3:4444/);
    expect(out).toMatch(/Ended\s+2026-03-01 10:05:00Z \(client_closed\)/);
    expect(out).toMatch(/#1 \+\d+\.\d{3}s parse allow\n {4}SELECT id, email\n {4}FROM customers WHERE id = \$1\n/);
    expect(out).toContain("    params: $1='42'\n");
    expect(out).toContain("    -> SELECT 2, 2 rows (3 ms)\n");
    expect(out).toContain("    | id    email\n    | ----  -------\n    | 42    [EMAIL]\n    | 1000  NULL\n");
    expect(out).toMatch(/Attributes\s+application_name=psql/);
    expect(out).toMatch(/#2 \+\d+\.\d{3}s simple deny \[no-destructive-ddl\]: DROP is not allowed here\n {4}DROP TABLE customers\n/);
    expect(out).toContain("error 42P01: relation does not exist");
    // Terminal escapes recorded from a client are shown, not executed.
    expect(out).not.toContain("\u001b");
    expect(out).toContain("\\x1b[2Jgotcha");

    const j = await cli(["sessions", "show", done, "--json"]);
    const parsed = JSON.parse(j.stdout) as { session: { id: string }; recording: unknown[] };
    expect(parsed.session.id).toBe(done);
    expect(parsed.recording).toHaveLength(7);

    expect(expectOneErrorLine(await cli(["sessions", "show", randomUUID()]), 1)).toContain("no session");
  });

  it("replay prints the recording in order (--speed 0: no delay)", async () => {
    const r = await cli(["sessions", "replay", done, "--speed", "0"]);
    expect(r.code).toBe(0);
    const idx = (s: string): number => r.stdout.indexOf(s);
    expect(idx("session " + done + " started")).toBeGreaterThanOrEqual(0);
    expect(idx("#1 ")).toBeGreaterThan(idx("started"));
    expect(idx("#2 ")).toBeGreaterThan(idx("#1 "));
    expect(idx("session ended: client_closed")).toBeGreaterThan(idx("#3 "));
    expectOneErrorLine(await cli(["sessions", "replay", done, "--speed", "-1"]), 2);
  });

  it("replay waits between entries at real speed scaled by --speed", async () => {
    const started = Date.now();
    const r = await cli(["sessions", "replay", paced, "--speed", "10"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("#1 +1.000s simple allow");
    // The recording spans 2000 ms; at 10x that is about 200 ms (only a lower bound is checked).
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });
});

describe("airlock audit verify", () => {
  it("exits 0 when intact and 1 with the first failing record", async () => {
    auditResult = { ok: true, records: 7, lastSeq: 7 };
    const ok = await cli(["audit", "verify"]);
    expect(ok).toEqual({ code: 0, stdout: "audit chain intact: 7 records (last seq 7)\n", stderr: "" });
    auditResult = { ok: false, records: 4, failedSeq: 3, reason: "hash_mismatch", detail: "record 3 was modified" };
    const bad = await cli(["audit", "verify"]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe("audit chain broken at seq 3: hash_mismatch: record 3 was modified\n");
    const j = await cli(["audit", "verify", "--json"]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toEqual(auditResult);
  });
});

describe("finding the API and the credential", () => {
  it("uses listen.api and <dataDir>/admin.token from ./airlock.yaml", async () => {
    const dir = join(root, "project");
    await mkdir(dir, { recursive: true });
    const port = new URL(apiUrl).port;
    // dataDir is relative to the config file's directory.
    await writeFile(join(dir, "airlock.yaml"), `dataDir: ../data\nlisten:\n  api: 127.0.0.1:${port}\n`);
    auditResult = { ok: true, records: 1, lastSeq: 1 };
    const r = await cli(["audit", "verify"], {}, dir);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);

    // --api beats the config; AIRLOCK_API beats the config too.
    const viaFlag = await cli(["audit", "verify", "--api", apiUrl], {}, dir);
    expect(viaFlag.code).toBe(0);
    const wrongEnv = await cli(["audit", "verify"], { AIRLOCK_API: "http://127.0.0.1:1" }, dir);
    expect(wrongEnv.stderr).toBe("airlock: cannot reach the gateway API at http://127.0.0.1:1: connection refused\n");
  });

  it("says when no credential is available, and when it is wrong", async () => {
    const empty = join(root, "empty");
    await mkdir(empty, { recursive: true });
    const none = await cli(["sessions", "list"], { AIRLOCK_API: apiUrl }, empty);
    expect(expectOneErrorLine(none, 1)).toContain("admin.token");
    const wrong = await cli(["sessions", "list"], { AIRLOCK_API: apiUrl, AIRLOCK_TOKEN: "airlock_admin_wrong" });
    expect(expectOneErrorLine(wrong, 1)).toBe("airlock: invalid token\n");
  });

  it("reports an unreachable API with its address", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const a = s.address();
        const p = typeof a === "object" && a !== null ? a.port : 0;
        s.close(() => resolve(p));
      });
    });
    const r = await cli(["token", "create", "--service-account", "ci-bot"], { AIRLOCK_API: `http://127.0.0.1:${port}`, AIRLOCK_TOKEN: adminToken });
    expect(expectOneErrorLine(r, 1)).toBe(`airlock: cannot reach the gateway API at http://127.0.0.1:${port}: connection refused\n`);
    expectOneErrorLine(await cli(["sessions", "list", "--api", "ftp://x"]), 2);
  });
});

describe("airlock config", () => {
  it("validate says OK or names the bad keys", async () => {
    const good = join(root, "good.yaml");
    await writeFile(good, "listen:\n  api: 127.0.0.1:8780\nserviceAccounts:\n  - name: ci-bot\n");
    expect(await cli(["config", "validate", "--config", good], {})).toEqual({ code: 0, stdout: "configuration OK\n", stderr: "" });
    const bad = join(root, "bad.yaml");
    await writeFile(bad, "listen:\n  api: nowhere\nconnections:\n  - name: x\n    type: postgres\n");
    const r = await cli(["config", "validate"], { AIRLOCK_CONFIG: bad });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^airlock: invalid configuration/);
    expect(r.stderr).toContain("listen.api");
    expect(r.stderr).toContain("connections[0]");
    const missing = await cli(["config", "validate"], {}, join(root, "empty-for-config"));
    expect(missing.code).toBe(2);
  });

  it("schema prints the JSON Schema", async () => {
    const r = await cli(["config", "schema"], {});
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { properties?: Record<string, unknown> };
    expect(Object.keys(schema.properties ?? {})).toEqual(expect.arrayContaining(["dataDir", "listen", "connections", "policies"]));
  });
});

describe("help and usage", () => {
  it("every command has --help (exit 0); no command is a usage error", async () => {
    for (const argv of [[], ["token"], ["token", "create"], ["token", "revoke"], ["sessions", "list"], ["sessions", "show"], ["sessions", "replay"], ["audit", "verify"], ["config", "validate"], ["config", "schema"], ["gateway"]]) {
      const r = await cli([...argv, "--help"], {});
      expect(r.code, argv.join(" ")).toBe(0);
      expect(r.stdout, argv.join(" ")).toContain("Usage: airlock");
    }
    const none = await cli([], {});
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("Usage: airlock");
  });
});
