/**
 * HTTP/2 to clients on the HTTP listener (issue 15): the real curl with
 * `--http2-prior-knowledge` (h2c on the plain listener) and `--http2` on the TLS listener (h2
 * by ALPN), `--http1.1` on the same TLS port, and Node's own http2 client over TLS, against the
 * local API of test/harness/http-upstream.ts. Masking (detectors and JSON paths), deny, body
 * rules, approvals, SSE streaming, recording and the refusal marker work as on HTTP/1.1: the
 * same handlers serve both.
 */
import { readFileSync } from "node:fs";
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from "node:http2";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startUpstream, type Upstream } from "./harness/http-upstream.js";
import { runProcess } from "./harness/redis.js";
import { until } from "./harness/until.js";

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
    { name: "ssn-field", connections: ["api"], match: { paths: ["/users"] }, action: "mask", columns: ["$[*].ssn"] },
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
  ["curl --http2 over TLS (h2 by ALPN)", "h2"],
] as const)("HTTP/2 clients: %s", (_title, mode) => {
  const gw = (): TestGateway => (mode === "h2c" ? plain : secure);
  const base = (): string => `${mode === "h2c" ? "http" : "https"}://127.0.0.1:${gw().gw.addresses.http?.port ?? 0}/api`;
  const ca = (): string => join(secure.dataDir, "tls", "cert.pem");

  it("proxies with masking and the gateway's credential, over HTTP/2", async () => {
    const token = await gw().mint("agent");
    const r = await curl2(`${base()}/users`, token, [], mode, ca());
    expect(r.version).toBe("2");
    expect(r.status).toBe(200);
    const users = JSON.parse(r.body) as { name: string; email: string; card: string; ssn: string }[];
    expect(users.map((u) => u.email)).toEqual(["[EMAIL]", "[EMAIL]"]);
    expect(users[0]?.name).toBe("Ana");
    expect(r.body).not.toContain("078-05-1120");
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
    expect(r.version).toBe("2");
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

describe("HTTP/2 and HTTP/1.1 on one TLS port", () => {
  const port = (): number => secure.gw.addresses.http?.port ?? 0;
  const ca = (): string => join(secure.dataDir, "tls", "cert.pem");

  it("curl --http1.1 to the same https port is answered in HTTP/1.1, masked the same", async () => {
    const token = await secure.mint("agent");
    const r = await runProcess("curl", ["-sS", "--max-time", "20", "--http1.1", "--cacert", ca(), "-H", `Authorization: Bearer ${token}`, "-w", "\n%{http_version} %{http_code}", `https://127.0.0.1:${port()}/api/users`]);
    expect(r.stderr).toBe("");
    const lines = r.stdout.split("\n");
    expect(lines.pop()).toBe("1.1 200");
    const users = JSON.parse(lines.join("\n")) as { email: string; ssn: string }[];
    expect(users.map((u) => u.email)).toEqual(["[EMAIL]", "[EMAIL]"]);
    expect(lines.join("\n")).not.toContain("078-05-1120");
  });

  describe("Node's http2 client (h2 by ALPN)", () => {
    let session: ClientHttp2Session;
    let token: string;

    beforeAll(async () => {
      token = await secure.mint("agent");
      session = connect(`https://127.0.0.1:${port()}`, { ca: readFileSync(ca(), "utf8") });
      await new Promise<void>((resolve, reject) => {
        session.once("connect", () => resolve());
        session.once("error", reject);
      });
    });

    afterAll(() => {
      session.close();
    });

    interface H2Answer {
      readonly headers: IncomingHttpHeaders;
      readonly body: string;
      /** When each DATA chunk arrived (ms since the request). */
      readonly arrivals: readonly number[];
    }

    function request(path: string, method = "GET", body?: string, headers: Record<string, string> = {}): Promise<H2Answer> {
      return new Promise((resolve, reject) => {
        const started = performance.now();
        const stream = session.request({ ":method": method, ":path": path, authorization: `Bearer ${token}`, ...headers }, { endStream: body === undefined });
        let answer: IncomingHttpHeaders = {};
        const chunks: Buffer[] = [];
        const arrivals: number[] = [];
        stream.on("response", (h) => (answer = h));
        stream.on("data", (c: Buffer) => {
          chunks.push(c);
          arrivals.push(performance.now() - started);
        });
        stream.on("end", () => resolve({ headers: answer, body: Buffer.concat(chunks).toString("utf8"), arrivals }));
        stream.on("error", reject);
        if (body !== undefined) stream.end(body);
      });
    }

    it("negotiates h2 on the gateway's TLS listener", () => {
      expect(session.alpnProtocol).toBe("h2");
      expect(session.encrypted).toBe(true);
    });

    it("masks a JSON body by detectors and by JSON path, with the gateway's credential injected", async () => {
      const r = await request("/api/users?via=node-h2");
      expect(r.headers[":status"]).toBe(200);
      const users = JSON.parse(r.body) as { name: string; email: string; card: string; ssn: string }[];
      expect(users.map((u) => u.name)).toEqual(["Ana", "Bob"]);
      expect(users.map((u) => u.email)).toEqual(["[EMAIL]", "[EMAIL]"]);
      expect(r.body).not.toContain("078-05-1120");
      expect(r.body).not.toContain("4111 1111");
      const seen = up.seen.filter((x) => x.url === "/users?via=node-h2").at(-1);
      expect(seen?.headers.authorization).toBe(`Bearer ${CANARY}`);
      expect(JSON.stringify(seen?.headers)).not.toContain(token);
    });

    it("denies with 403, the JSON error body and the refusal marker; the target never sees it", async () => {
      const before = up.seen.length;
      const r = await request("/api/admin/users");
      expect(r.headers[":status"]).toBe(403);
      expect(r.headers["x-airlock-refusal"]).toBe("GW_POLICY_DENIED");
      expect(String(r.headers["content-type"])).toContain("application/json");
      expect((JSON.parse(r.body) as { error: { code: string; rule: string } }).error).toMatchObject({ code: "GW_POLICY_DENIED", rule: "no-admin" });
      expect(up.seen.length).toBe(before);
    });

    it("never shows the target's credential to the client, even when the target echoes it (canary)", async () => {
      const r = await request("/api/echo?canary=h2", "POST", JSON.stringify({ hello: "world" }), { "content-type": "application/json" });
      expect(r.headers[":status"]).toBe(200);
      expect(r.body).not.toContain(CANARY);
      expect(JSON.stringify(r.headers)).not.toContain(CANARY);
      expect((JSON.parse(r.body) as { body: string }).body).toBe('{"hello":"world"}');
      expect(secure.logs()).not.toContain(CANARY);
    });

    it("streams Server-Sent Events as they come (masked), not after the target's end", async () => {
      const r = await request("/api/sse");
      expect(r.body.match(/^data: /gm)).toHaveLength(3);
      expect(r.body).not.toMatch(/sse\d@example\.com/);
      // The target writes an event every 20 ms: a buffered answer would arrive in one piece at the end.
      expect(r.arrivals.length).toBeGreaterThanOrEqual(2);
      expect((r.arrivals.at(-1) ?? 0) - (r.arrivals[0] ?? 0)).toBeGreaterThan(15);
    });

    it("streams a large JSON array masked, valid JSON", async () => {
      const r = await request("/api/big?n=5000");
      const rows = JSON.parse(r.body) as { i: number; email: string }[];
      expect(rows).toHaveLength(5000);
      expect(rows.every((x) => x.email === "[EMAIL]")).toBe(true);
      expect(r.arrivals.length).toBeGreaterThan(1);
    });

    it("records the h2 exchanges masked, without the credential", async () => {
      const shown = await until("the h2 exchange in a session recording", async () => {
        const list = (await secure.api("/v1/sessions?limit=100")).body as { sessions: { id: string }[] };
        for (const { id } of list.sessions) {
          const text = (await secure.api(`/v1/sessions/${id}`)).text;
          if (text.includes("via=node-h2")) return text;
        }
        return undefined;
      });
      expect(shown).not.toContain(CANARY);
      expect(shown).not.toContain("ana.garcia@example.es");
      expect(shown).not.toContain("078-05-1120");
    });
  });
});
