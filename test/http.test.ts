/**
 * The HTTP engine against a real local API (test/harness/http-upstream.ts), through real
 * clients: curl and Node's fetch (undici), and the `ws` WebSocket client. Guardrails by
 * method/path/body, masking (JSON streamed, text, SSE, gzip/br decoded, headers), credential
 * injection (bearer, OAuth2 client credentials) and the canary: the target's credential never
 * reaches the agent, the agent's token never reaches the target.
 */
import { WebSocket } from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET, UPSTREAM_OAUTH_TOKEN, startUpstream, type Upstream } from "./harness/http-upstream.js";
import { runProcess } from "./harness/redis.js";
import { until } from "./harness/until.js";

const CANARY = "target-bearer-CANARY-7c1d2e";
let up: Upstream;
let gw: TestGateway;
let base: string;

beforeAll(async () => {
  up = await startUpstream();
  gw = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    serviceAccounts: [
      { name: "agent", groups: ["agents"] },
      { name: "boss", groups: ["approvers"] },
      { name: "outsider", groups: ["nobody"] },
    ],
    connections: [
      { name: "api", type: "http", baseUrl: up.url, auth: { bearer: CANARY }, groups: ["agents"] },
      {
        name: "oauth",
        type: "http",
        baseUrl: `${up.url}/oauth`,
        auth: { oauth2ClientCredentials: { tokenUrl: `${up.url}/oauth/token`, clientId: UPSTREAM_CLIENT_ID, clientSecret: UPSTREAM_CLIENT_SECRET, scopes: ["read"] } },
        groups: ["agents"],
      },
    ],
    policies: [
      { name: "no-admin", connections: ["api"], match: { paths: ["/admin", "/admin/*"] }, action: "deny", message: "the admin API is off limits" },
      { name: "no-deletes", connections: ["api"], match: { methods: ["DELETE"] }, action: "deny" },
      { name: "big-payments", connections: ["api"], match: { methods: ["POST"], paths: ["/payments"], body: ["$.amount > 1000"] }, action: "require_approval", approvers: ["approvers"], mode: "async" },
      { name: "pii", connections: ["api"], action: "mask", detectors: ["email", "credit_card"] },
      { name: "ssn-field", connections: ["api"], match: { paths: ["/users"] }, action: "mask", columns: ["$[*].ssn", "header:set-cookie"] },
      { name: "cookie", connections: ["api"], match: { paths: ["/cookie"] }, action: "mask", columns: ["header:set-cookie"] },
      { name: "no-ws-drop", connections: ["api"], match: { methods: ["WS"], paths: ["/ws"], body: ['$.op == "drop"'] }, action: "deny", message: "no drops over the socket" },
      { name: "ws-ids", connections: ["api"], match: { paths: ["/ws"] }, action: "mask", columns: ["$.ssn"] },
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

describe("HTTP engine", () => {
  it("proxies curl with the token, masks JSON by detectors and paths, and injects the target's credential", async () => {
    const token = await gw.mint("agent");
    const r = await curl(["-H", `Authorization: Bearer ${token}`, `${base}/api/users`]);
    expect(r.code).toBe(0);
    const users = JSON.parse(r.stdout) as { email: string; card: string; ssn: string; name: string }[];
    expect(users[0]?.name).toBe("Ana");
    expect(users[0]?.email).toBe("[EMAIL]");
    expect(r.stdout).not.toContain("4111 1111");
    expect(r.stdout).not.toContain("078-05-1120");
    const seen = up.seen.filter((s) => s.url === "/users").at(-1);
    expect(seen?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(JSON.stringify(seen?.headers)).not.toContain(token);
  });

  it("never shows the target's credential to the agent, even when the target echoes it (canary)", async () => {
    const token = await gw.mint("agent");
    const r = await fetch(`${base}/api/echo?x=1`, { headers: { authorization: `Bearer ${token}` } });
    const text = await r.text();
    expect(r.status).toBe(200);
    expect(text).not.toContain(CANARY);
    expect(text).toContain("[REDACTED]");
    expect(JSON.stringify([...r.headers])).not.toContain(CANARY);
    // The agent's own token never reached the target.
    expect(JSON.stringify(up.seen)).not.toContain(token);
    // Nor logs nor recordings nor audit.
    expect(gw.logs()).not.toContain(CANARY);
    const sessions = await gw.api("/v1/sessions?limit=100");
    expect(sessions.text).not.toContain(CANARY);
    // The audit log ships to the store asynchronously: wait for this request's record there.
    const audit = await until("the request's audit record in the store", async () => {
      const a = await gw.api("/v1/audit?limit=1000");
      return a.text.includes("http.request") ? a : undefined;
    });
    expect(audit.text).not.toContain(CANARY);
  });

  it("refuses a missing or bad token with 401 and WWW-Authenticate, an unknown connection with 404", async () => {
    const none = await fetch(`${base}/api/users`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    const body = (await none.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("GW_AUTH_MISSING");
    const bad = await fetch(`${base}/api/users`, { headers: { authorization: "Bearer nope" } });
    expect(bad.status).toBe(401);
    const token = await gw.mint("agent");
    const unknown = await fetch(`${base}/nope/users`, { headers: { authorization: `Bearer ${token}` } });
    expect(unknown.status).toBe(404);
    const outsider = await gw.mint("outsider");
    const denied = await fetch(`${base}/api/users`, { headers: { authorization: `Bearer ${outsider}` } });
    expect(denied.status).toBe(403);
  });

  it("denies by path and method with 403 and the JSON error naming the rule", async () => {
    const token = await gw.mint("agent");
    const r = await curl(["-H", `Authorization: Bearer ${token}`, "-w", "\n%{http_code}", `${base}/api/admin/users`]);
    const lines = r.stdout.trim().split("\n");
    const status = lines.pop();
    const json = lines.join("\n");
    expect(status).toBe("403");
    const body = JSON.parse(json) as { error: { code: string; message: string; rule: string } };
    expect(body.error).toMatchObject({ code: "GW_POLICY_DENIED", rule: "no-admin" });
    expect(body.error.message).toMatch(/^airlock: the admin API is off limits/);
    const del = await fetch(`${base}/api/users/1`, { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
    expect(del.status).toBe(403);
    expect(del.headers.get("x-airlock-refusal")).toBe("GW_POLICY_DENIED");
    expect(up.seen.some((s) => s.url.startsWith("/admin") || s.method === "DELETE")).toBe(false);
  });

  it("marks the gateway's refusals with x-airlock-refusal, never the target's own errors", async () => {
    const token = await gw.mint("agent");
    const none = await fetch(`${base}/api/users`);
    expect(none.headers.get("x-airlock-refusal")).toBe("GW_AUTH_MISSING");
    // The target's 403 passes as the target's (its forged marker dropped), body untouched.
    const target = await fetch(`${base}/api/forbidden`, { headers: { authorization: `Bearer ${token}` } });
    expect(target.status).toBe(403);
    expect(target.headers.get("x-airlock-refusal")).toBeNull();
    expect(((await target.json()) as { error: { message: string } }).error.message).toBe("not yours");
    const held = await fetch(`${base}/api/payments`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ amount: 7777 }) });
    expect(held.status).toBe(202);
    const heldBody = (await held.json()) as { error: { code: string } };
    expect(held.headers.get("x-airlock-refusal")).toBe(heldBody.error.code);
  });

  it("holds a large payment for approval (async: 202 with the approval id), passes a small one", async () => {
    const token = await gw.mint("agent");
    const small = await fetch(`${base}/api/payments`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ amount: 10 }) });
    expect(small.status).toBe(201);
    const big = await fetch(`${base}/api/payments`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ amount: 5000 }) });
    expect(big.status).toBe(202);
    expect(big.headers.get("retry-after")).toBe("5");
    const held = (await big.json()) as { approval: { id: string; status: string } };
    expect(held.approval.status).toBe("pending");
    const boss = await gw.mint("boss");
    const approve = await gw.api(`/v1/approvals/${held.approval.id}/approve`, { method: "POST", body: {}, token: boss });
    expect(approve.status).toBeLessThan(300);
    const again = await fetch(`${base}/api/payments`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ amount: 5000 }) });
    expect(again.status).toBe(201);
    // A body that must be inspected but is not JSON: refused (fail closed).
    const opaque = await fetch(`${base}/api/payments`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "text/plain" }, body: "amount=5000" });
    expect(opaque.status).toBe(403);
    expect(((await opaque.json()) as { error: { message: string } }).error.message).toMatch(/fail closed/);
  });

  it("decodes gzip and brotli for masking, masks text and Set-Cookie, rewrites redirects", async () => {
    const token = await gw.mint("agent");
    const h = { authorization: `Bearer ${token}` };
    const gz = await curl(["--compressed", "-H", `Authorization: Bearer ${token}`, `${base}/api/gzip`]);
    expect(JSON.parse(gz.stdout)).toEqual({ email: "[EMAIL]", n: 1 });
    const br = await fetch(`${base}/api/br`, { headers: h });
    expect(await br.text()).toBe("contact: [EMAIL]\n");
    const text = await fetch(`${base}/api/text`, { headers: h });
    const t = await text.text();
    expect(t).not.toContain("carol@example.com");
    expect(t).not.toContain("4111 1111 1111 1111");
    const cookie = await fetch(`${base}/api/cookie`, { headers: h });
    expect(cookie.headers.get("set-cookie")).toBe("[REDACTED]");
    const redirect = await fetch(`${base}/api/redirect`, { headers: h, redirect: "manual" });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe("/api/users?from=redirect");
  });

  it("streams a large JSON array masked, valid, without buffering it whole", async () => {
    const token = await gw.mint("agent");
    const r = await fetch(`${base}/api/big?n=20000`, { headers: { authorization: `Bearer ${token}` } });
    const text = await r.text();
    const rows = JSON.parse(text) as { i: number; email: string }[];
    expect(rows).toHaveLength(20000);
    expect(rows.every((x) => x.email === "[EMAIL]")).toBe(true);
  });

  it("streams Server-Sent Events, masked event by event", async () => {
    const token = await gw.mint("agent");
    const r = await curl(["-N", "-H", `Authorization: Bearer ${token}`, `${base}/api/sse`]);
    expect(r.stdout.match(/^data: /gm)).toHaveLength(3);
    expect(r.stdout).not.toMatch(/sse\d@example\.com/);
    expect(r.stdout).toContain("[EMAIL]");
  });

  it("handles Expect: 100-continue (curl sends it for larger bodies) and refuses before the body on a bad token", async () => {
    const token = await gw.mint("agent");
    const body = JSON.stringify({ amount: 1, pad: "x".repeat(2000) });
    const ok = await curl(["-H", `Authorization: Bearer ${token}`, "-H", "Expect: 100-continue", "-H", "content-type: application/json", "--data-binary", body, "-w", "\n%{http_code}", `${base}/api/payments`]);
    expect(ok.stdout.trim().endsWith("201")).toBe(true);
    const bad = await curl(["-H", "Authorization: Bearer wrong", "-H", "Expect: 100-continue", "--data-binary", body, "-w", "\n%{http_code}", `${base}/api/payments`]);
    expect(bad.stdout.trim().endsWith("401")).toBe(true);
  });

  it("fetches and uses an OAuth2 client-credentials token, never shown to the agent", async () => {
    const token = await gw.mint("agent");
    const r = await fetch(`${base}/oauth/protected`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true });
    expect(up.seen.filter((s) => s.url === "/oauth/token")).toHaveLength(1);
    const again = await fetch(`${base}/oauth/protected`, { headers: { authorization: `Bearer ${token}` } });
    expect(again.status).toBe(200);
    expect(up.seen.filter((s) => s.url === "/oauth/token")).toHaveLength(1);
    expect(gw.logs()).not.toContain(UPSTREAM_OAUTH_TOKEN);
    expect(gw.logs()).not.toContain(UPSTREAM_CLIENT_SECRET);
  });

  it("relays a WebSocket frame by frame: target text masked (detectors, JSON paths), the credential scrubbed, client messages judged", async () => {
    const token = await gw.mint("agent");
    const url = `${base.replace("http", "ws")}/api/ws`;
    const open = (): Promise<WebSocket> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
        ws.once("open", () => resolve(ws));
        ws.once("error", reject);
      });
    const ask = (ws: WebSocket, msg: string): Promise<string> =>
      new Promise((resolve) => {
        ws.once("message", (m: Buffer) => resolve(m.toString()));
        ws.send(msg);
      });
    const ws = await open();
    // Every message on /api/ws is JSON here: a body rule (no-ws-drop) must read it (text that is not JSON would be refused).
    expect(await ask(ws, JSON.stringify({ say: "write to dave@example.com" }))).toBe("echo: write to [EMAIL]");
    const json = JSON.parse(await ask(ws, JSON.stringify({ op: "get", ssn: "078-05-1120", who: "eve@example.com" }))) as Record<string, string>;
    expect(json.op).toBe("get");
    expect(json.ssn).not.toContain("078-05");
    expect(json.who).toBe("[EMAIL]");
    // The target answering with the gateway's credential: scrubbed.
    const leaked = await ask(ws, JSON.stringify({ secret: true }));
    expect(leaked).not.toContain(CANARY);
    expect(leaked).toContain("[REDACTED]");
    // A client message a deny rule matches: never sent; the socket closes with 1008 and the rule.
    const messages = (): number => up.seen.filter((x) => x.method === "WS").length;
    const before = messages();
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => {
      ws.once("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
      ws.send(JSON.stringify({ op: "drop", table: "users" }));
    });
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/^airlock: no drops over the socket \(rule: no-ws-drop\)/);
    expect(messages()).toBe(before);
    // A message the rule must read but cannot (binary, or text that is not JSON): refused too (fail closed).
    for (const [msg, binary] of [[Buffer.from([1, 2, 3]), true], [Buffer.from("drop users"), false]] as const) {
      const w = await open();
      const why = await new Promise<{ code: number; reason: string }>((resolve) => {
        w.once("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
        w.send(msg, { binary });
      });
      expect(why.code).toBe(1008);
      expect(why.reason).toContain("fail closed");
    }
    expect(messages()).toBe(before);
    // A connection with no rules on frames: relayed as is.
    const reply = await new Promise<string>((resolve, reject) => {
      const w = new WebSocket(`${base.replace("http", "ws")}/oauth/ws`, { headers: { authorization: `Bearer ${token}` } });
      w.on("open", () => w.send("hello"));
      w.on("message", (m: Buffer) => {
        resolve(m.toString());
        w.close();
      });
      w.on("error", reject);
    });
    expect(reply).toBe("echo: hello");
  });

  it("records each exchange in the session, masked", async () => {
    const token = await gw.mint("agent");
    await fetch(`${base}/api/users`, { headers: { authorization: `Bearer ${token}`, connection: "close" } });
    const list = await gw.api("/v1/sessions?limit=100");
    expect(list.text).toContain("api");
    expect(list.text).not.toContain("ana.garcia@example.es");
  });
});
