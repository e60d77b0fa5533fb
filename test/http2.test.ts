/**
 * HTTP/2 to clients on the HTTP listener (issue 15): the real curl with
 * `--http2-prior-knowledge` (h2c on the plain listener); `--http2` on the TLS listener falls
 * back to HTTP/1.1 (h2 by ALPN is not offered yet) and still works,
 * against the local API of test/harness/http-upstream.ts. Masking, deny, body rules, approvals
 * and the refusal marker work as on HTTP/1.1: the same handlers serve both.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startUpstream, type Upstream } from "./harness/http-upstream.js";
import { runProcess } from "./harness/redis.js";

const CANARY = "h2-target-bearer-CANARY-3e9a";
let up: Upstream;
let plain: TestGateway;
let secure: TestGateway;

const config = (): Parameters<typeof startTestGateway>[0] => ({
  serviceAccounts: [{ name: "agent", groups: ["agents"] }],
  connections: [{ name: "api", type: "http", baseUrl: up.url, auth: { bearer: CANARY }, groups: ["agents"] }],
  policies: [
    { name: "no-admin", connections: ["api"], match: { paths: ["/admin/*"] }, action: "deny", message: "the admin API is off limits" },
    { name: "big-payments", connections: ["api"], match: { methods: ["POST"], paths: ["/payments"], body: ["$.amount > 1000"] }, action: "require_approval", approvers: ["agents"], mode: "async" },
    { name: "pii", connections: ["api"], action: "mask", detectors: ["email", "credit_card"] },
  ],
});

beforeAll(async () => {
  up = await startUpstream();
  plain = await startTestGateway({ ...config(), listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" } });
  secure = await startTestGateway({ ...config(), listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" }, tls: { selfSigned: true } });
}, 60_000);

afterAll(async () => {
  await plain.stop();
  await secure.stop();
  await up.stop();
});

interface CurlResult {
  readonly version: string;
  readonly status: number;
  readonly headers: string;
  readonly body: string;
}

/** curl over HTTP/2: `-w` prints the protocol version and status after the body. */
async function curl2(url: string, token: string, args: readonly string[], mode: "h2c" | "h2", ca?: string): Promise<CurlResult> {
  const flags = mode === "h2c" ? ["--http2-prior-knowledge"] : ["--http2", "--cacert", ca ?? ""];
  const r = await runProcess("curl", ["-sS", "--max-time", "20", ...flags, "-D", "-", "-H", `Authorization: Bearer ${token}`, ...args, "-w", "\n%{http_version} %{http_code}", url]);
  expect(r.stderr).toBe("");
  const lines = r.stdout.split("\n");
  const [version = "", status = "0"] = (lines.pop() ?? "").split(" ");
  const text = lines.join("\n");
  const cut = text.indexOf("\r\n\r\n");
  return { version, status: Number(status), headers: text.slice(0, cut).toLowerCase(), body: text.slice(cut + 4) };
}

// `h2` runs the same checks through the TLS listener; the version assertions say which protocol answered.
describe.each([
  ["h2c (prior knowledge)", "h2c"],
  ["curl --http2 over TLS (answered in HTTP/1.1: h2 not offered by ALPN yet)", "h2"],
] as const)("HTTP/2 clients: %s", (_title, mode) => {
  const gw = (): TestGateway => (mode === "h2c" ? plain : secure);
  const base = (): string => `${mode === "h2c" ? "http" : "https"}://127.0.0.1:${gw().gw.addresses.http?.port ?? 0}/api`;
  const ca = (): string => join(secure.dataDir, "tls", "cert.pem");

  it("proxies with masking and the gateway's credential, over HTTP/2", async () => {
    const token = await gw().mint("agent");
    const r = await curl2(`${base()}/users`, token, [], mode, ca());
    expect(r.version).toBe(mode === "h2c" ? "2" : "1.1");
    expect(r.status).toBe(200);
    const users = JSON.parse(r.body) as { name: string; email: string; card: string }[];
    expect(users.map((u) => u.email)).toEqual(["[EMAIL]", "[EMAIL]"]);
    expect(r.body).not.toContain("4111 1111");
    expect(up.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
    // Pseudo-headers are not forwarded as headers.
    expect(Object.keys(up.seen.at(-1)?.headers ?? {}).some((k) => k.startsWith(":"))).toBe(false);
    const echo = await curl2(`${base()}/echo`, token, [], mode, ca());
    expect(echo.body).not.toContain(CANARY);
    expect(echo.body).not.toContain(token);
  });

  it("denies with 403, the JSON error and x-airlock-refusal; the target never sees the request", async () => {
    const token = await gw().mint("agent");
    const before = up.seen.length;
    const r = await curl2(`${base()}/admin/users`, token, [], mode, ca());
    expect(r.version).toBe(mode === "h2c" ? "2" : "1.1");
    expect(r.status).toBe(403);
    expect(r.headers).toContain("x-airlock-refusal: gw_policy_denied");
    expect((JSON.parse(r.body) as { error: { rule: string; message: string } }).error).toMatchObject({ rule: "no-admin", message: "airlock: the admin API is off limits" });
    expect(up.seen.length).toBe(before);
    const none = await curl2(`${base()}/users`, "", [], mode, ca());
    expect(none.status).toBe(401);
  });

  it("judges request bodies sent over HTTP/2 streams: a small payment passes with its body, a big one is held", async () => {
    const token = await gw().mint("agent");
    const small = await curl2(`${base()}/payments`, token, ["-H", "content-type: application/json", "--data-binary", JSON.stringify({ amount: 10, note: "x".repeat(3000) })], mode, ca());
    expect(small.status).toBe(201);
    expect(up.seen.at(-1)?.body).toContain('"amount":10');
    const big = await curl2(`${base()}/payments`, token, ["-H", "content-type: application/json", "--data-binary", JSON.stringify({ amount: 5000 })], mode, ca());
    expect(big.status).toBe(202);
    expect(big.headers).toContain("x-airlock-approval:");
  });

  it("streams Server-Sent Events masked over HTTP/2", async () => {
    const token = await gw().mint("agent");
    const r = await curl2(`${base()}/sse`, token, ["-N"], mode, ca());
    expect(r.body.match(/^data: /gm)).toHaveLength(3);
    expect(r.body).not.toMatch(/sse\d@example\.com/);
  });
});
