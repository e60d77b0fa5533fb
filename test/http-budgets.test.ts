/**
 * Budgets on HTTP responses (issue 21), end to end with curl and Node's fetch against the
 * harness API: a response is one row, its body counts toward `bytes` as it streams; a body
 * that runs out of budget mid-stream is cut so that the client sees an incomplete body (never
 * a short body that looks whole), and the cut is audited; once spent, requests are refused
 * with 429 and Retry-After before they reach the target; budgets near their end are told in
 * `x-airlock-budget-warning` on every response from then on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../src/audit/types.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startUpstream, type Upstream } from "./harness/http-upstream.js";
import { runProcess } from "./harness/redis.js";
import { until } from "./harness/until.js";

let up: Upstream;
let gw: TestGateway;
let base: string;

beforeAll(async () => {
  up = await startUpstream();
  gw = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    serviceAccounts: [
      { name: "curl-agent", groups: ["agents"] },
      { name: "fetch-agent", groups: ["agents"] },
      { name: "h2-agent", groups: ["agents"] },
      { name: "rows-agent", groups: ["agents"] },
    ],
    connections: [
      { name: "api", type: "http", baseUrl: up.url, auth: { bearer: "target-token" }, groups: ["agents"] },
      { name: "masked", type: "http", baseUrl: up.url, auth: { bearer: "target-token" }, groups: ["agents"] },
      // No credential, no mask: bodies pass untouched, Content-Length kept.
      { name: "plain", type: "http", baseUrl: up.url, groups: ["agents"] },
    ],
    policies: [{ name: "pii", connections: ["masked"], action: "mask", detectors: ["email"] }],
    budgets: [
      { name: "api-bytes", connections: ["api", "masked", "plain"], principals: ["curl-agent", "fetch-agent", "h2-agent"], window: "1h", bytes: 10_000, warnAt: 0.5 },
      { name: "api-rows", connections: ["api"], principals: ["rows-agent"], window: "1h", rows: 3, warnAt: 0.6 },
    ],
  });
  base = `http://127.0.0.1:${gw.gw.addresses.http?.port ?? 0}`;
}, 60_000);

afterAll(async () => {
  await gw.stop();
  await up.stop();
});

async function curl(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runProcess("curl", ["-sS", "--max-time", "20", ...args]);
}

/** curl -i: status, headers (lower-cased names, values joined), body. */
async function curlFull(token: string, path: string, extra: readonly string[] = []): Promise<{ code: number | null; status: number; headers: Map<string, string[]>; body: string; stderr: string }> {
  const r = await curl(["-i", ...extra, "-H", `Authorization: Bearer ${token}`, `${base}${path}`]);
  const split = r.stdout.indexOf("\r\n\r\n");
  const head = split < 0 ? r.stdout : r.stdout.slice(0, split);
  const body = split < 0 ? "" : r.stdout.slice(split + 4);
  const lines = head.split("\r\n");
  const status = Number(/^HTTP\/\S+ (\d+)/.exec(lines[0] ?? "")?.[1] ?? "0");
  const headers = new Map<string, string[]>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i < 0) continue;
    const k = l.slice(0, i).trim().toLowerCase();
    headers.set(k, [...(headers.get(k) ?? []), l.slice(i + 1).trim()]);
  }
  return { code: r.code, status, headers, body, stderr: r.stderr };
}

async function auditCut(principal: string): Promise<AuditRecord> {
  return until(`the budget cut of ${principal} in the audit log`, async () => {
    const a = (await gw.api("/v1/audit?afterSeq=0&limit=1000")).body as { records: AuditRecord[] };
    return a.records.find((r) => r.type === "db.result" && r.principal?.name === principal && r.decision === "deny" && r.rule === "api-bytes");
  });
}

/** The counters of a budget for one principal (by name: the subject is its id). */
function usedOf(budget: string, name: string): Promise<{ rows: number; bytes: number; statements: number }> {
  return until(`the counters of ${budget}`, async () => {
    const list = (await gw.api("/v1/budgets")).body as { budgets: { budget: string; subject: string; used: { rows: number; bytes: number; statements: number } }[] };
    return list.budgets.find((b) => b.budget === budget && b.subject.endsWith(name))?.used;
  });
}

describe("budgets on HTTP responses", () => {
  it("curl: bodies count toward bytes, a warning header from warnAt on, a chunked body cut mid-stream, then 429 before the target", async () => {
    const token = await gw.mint("curl-agent");
    const first = await curlFull(token, "/api/bytes?n=3000");
    expect(first.status).toBe(200);
    expect(first.body.length).toBe(3000);
    expect(first.headers.has("x-airlock-budget-warning")).toBe(false);
    const second = await curlFull(token, "/api/bytes?n=3000");
    expect(second.body.length).toBe(3000);
    expect(second.headers.has("x-airlock-budget-warning")).toBe(false);
    // 6000 of 10000 used: past warnAt 0.5, so this response and every later one carry the warning.
    const third = await curlFull(token, "/api/bytes?n=3000");
    expect(third.status).toBe(200);
    expect(third.headers.get("x-airlock-budget-warning")?.[0]).toMatch(/^budget api-bytes: 6000 of 10000 bytes used in this 1h window \(it resets at \d{4}-/);
    // 9000 used: a chunked body of 3000 gets the 1000 bytes that fit, then ends without its last chunk.
    const seenBefore = up.seen.length;
    const cut = await curlFull(token, "/api/bytes?n=3000&chunked=1");
    expect(cut.status).toBe(200);
    expect(cut.headers.get("transfer-encoding")?.[0]).toBe("chunked");
    expect(cut.headers.get("x-airlock-budget-warning")?.[0]).toContain("9000 of 10000 bytes");
    expect(cut.code).toBe(18); // CURLE_PARTIAL_FILE: "transfer closed with outstanding read data remaining"
    expect(cut.stderr).toMatch(/outstanding read data remaining/);
    expect(cut.body.length).toBeLessThanOrEqual(1000);
    expect(up.seen.length).toBe(seenBefore + 1);
    expect((await usedOf("api-bytes", "curl-agent")).bytes).toBe(10_000);
    // Spent: refused with 429, Retry-After at the window's end, the refusal JSON; the target never sees it.
    const refused = await curlFull(token, "/api/bytes?n=10");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("x-airlock-refusal")?.[0]).toBe("GW_LIMIT");
    const retry = Number(refused.headers.get("retry-after")?.[0]);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(3600);
    const err = (JSON.parse(refused.body) as { error: { code: string; message: string; rule: string } }).error;
    expect(err).toMatchObject({ code: "GW_LIMIT", rule: "api-bytes" });
    expect(err.message).toMatch(/^airlock: budget api-bytes is spent: 10000 bytes per 1h \(it resets at /);
    expect(up.seen.length).toBe(seenBefore + 1);
    const audited = await auditCut("curl-agent");
    expect(audited.message).toMatch(/budget api-bytes is spent.*the response body was cut after 1000 bytes/);
  });

  it("Node fetch: a Content-Length body cut mid-stream fails the read (never a short body that looks whole)", async () => {
    const token = await gw.mint("fetch-agent");
    const auth = { authorization: `Bearer ${token}` };
    const ok = await fetch(`${base}/plain/bytes?n=8000`, { headers: auth });
    expect((await ok.text()).length).toBe(8000);
    const r = await fetch(`${base}/plain/bytes?n=5000`, { headers: auth });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-length")).toBe("5000");
    expect(r.headers.get("x-airlock-budget-warning")).toContain("8000 of 10000 bytes");
    await expect(r.text()).rejects.toThrow(/terminated/);
    const again = await fetch(`${base}/plain/bytes?n=10`, { headers: auth });
    expect(again.status).toBe(429);
    expect(again.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("GW_LIMIT");
    await auditCut("fetch-agent");
  });

  it("masked bodies count as the client receives them (decoded, masked), and HTTP/2 streams are reset on a cut", async () => {
    const token = await gw.mint("h2-agent");
    // The masked connection decodes and rewrites: the budget counts the bytes sent after masking.
    const users = await curlFull(token, "/masked/users", ["--http2-prior-knowledge"]);
    expect(users.status).toBe(200);
    expect(users.body).toContain("[EMAIL]");
    expect((await usedOf("api-bytes", "h2-agent")).bytes).toBe(Buffer.byteLength(users.body));
    const big = await curlFull(token, "/masked/bytes?n=20000&chunked=1", ["--http2-prior-knowledge"]);
    expect(big.status).toBe(200);
    expect(big.code).not.toBe(0);
    expect(big.body.length).toBeLessThan(10_000);
    const refused = await curlFull(token, "/masked/users", ["--http2-prior-knowledge"]);
    expect(refused.status).toBe(429);
  });

  it("a response is one row: the rows budget counts answered requests, warns from warnAt on, then refuses before the target", async () => {
    const token = await gw.mint("rows-agent");
    const auth = { authorization: `Bearer ${token}` };
    const a = await fetch(`${base}/api/users`, { headers: auth });
    await a.text();
    expect(a.headers.get("x-airlock-budget-warning")).toBeNull();
    // The response being answered counts: two of three rows used is past warnAt 0.6.
    const b = await fetch(`${base}/api/users`, { method: "HEAD", headers: auth });
    expect(b.status).toBe(200);
    expect(b.headers.get("x-airlock-budget-warning")).toMatch(/^budget api-rows: 2 of 3 rows used/);
    const c = await fetch(`${base}/api/users`, { headers: auth });
    expect(await c.text()).toContain("Ana");
    expect(c.headers.get("x-airlock-budget-warning")).toMatch(/^budget api-rows: 3 of 3 rows used/);
    const seen = up.seen.length;
    const d = await fetch(`${base}/api/users`, { headers: auth });
    expect(d.status).toBe(429);
    expect(((await d.json()) as { error: { message: string } }).error.message).toContain("budget api-rows is spent: 3 rows per 1h");
    expect(up.seen.length).toBe(seen);
  });
});

