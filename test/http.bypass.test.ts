/**
 * The HTTP engine's permanent regression list of bypass attempts (issue 15): path tricks that
 * would reach a denied path, method overrides, and request-smuggling shapes sent as raw bytes.
 * Each attempt must be refused, or reach the target only as the path that was judged.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startUpstream, type Upstream } from "./harness/http-upstream.js";
import { runProcess } from "./harness/redis.js";

let up: Upstream;
let gw: TestGateway;
let port: number;
let token: string;

beforeAll(async () => {
  up = await startUpstream();
  gw = await startTestGateway({
    listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    connections: [{ name: "api", type: "http", baseUrl: up.url, auth: { bearer: "bypass-target-token" }, groups: ["agents"] }],
    policies: [
      { name: "no-admin", connections: ["api"], match: { paths: ["/admin", "/admin/*"] }, action: "deny" },
      { name: "no-delete", connections: ["api"], match: { methods: ["DELETE"] }, action: "deny" },
    ],
  });
  port = gw.gw.addresses.http?.port ?? 0;
  token = await gw.mint("agent");
}, 60_000);

afterAll(async () => {
  await gw.stop();
  await up.stop();
});

/** Send raw bytes, return the status line of the first response. */
function raw(bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let got = "";
    s.on("data", (b: Buffer) => (got += b.toString("latin1")));
    s.on("close", () => resolve(got.split("\r\n")[0] ?? ""));
    s.on("error", () => resolve(got.split("\r\n")[0] ?? ""));
    s.write(bytes);
    setTimeout(() => s.end(), 1500);
  });
}

const reachedAdmin = (): boolean => up.seen.some((s) => /^\/admin/i.test(decodeURIComponent(s.url.replace(/%(?![0-9a-f]{2})/gi, ""))) || s.method === "DELETE");

describe("HTTP bypass attempts", () => {
  const paths = [
    "/api/admin",
    "/api/admin/",
    "/api/ADMIN/users",
    "/api/x/../admin",
    "/api/x/%2e%2e/admin",
    "/api/x/%2E%2E/admin",
    "/api/%2e/admin",
    "/api/x/%252e%252e/admin",
    "/api//admin",
    "/api/./admin",
    "/api/admin;jsessionid=1/users",
    "/api/x/..;/admin",
    "/api/admin%2fusers",
    "/api/%61dmin",
    "/api/x/..%2fadmin",
    "/api/x/..%5cadmin",
  ];
  for (const p of paths) {
    it(`refuses ${p}`, async () => {
      const r = await runProcess("curl", ["-sS", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", "-H", `Authorization: Bearer ${token}`, `http://127.0.0.1:${port}${p}`]);
      expect(["400", "403"]).toContain(r.stdout);
      expect(reachedAdmin()).toBe(false);
    });
  }

  it("refuses method overrides, in headers and in the query", async () => {
    for (const h of ["X-HTTP-Method-Override: DELETE", "X-HTTP-Method: DELETE", "X-Method-Override: DELETE"]) {
      const r = await runProcess("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", h, "-H", `Authorization: Bearer ${token}`, `http://127.0.0.1:${port}/api/users/1`]);
      expect(r.stdout).toBe("400");
    }
    const q = await runProcess("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", `Authorization: Bearer ${token}`, `http://127.0.0.1:${port}/api/users/1?_method=DELETE`]);
    expect(q.stdout).toBe("400");
    expect(reachedAdmin()).toBe(false);
  });

  const auth = (): string => `Authorization: Bearer ${token}\r\n`;
  it("refuses Content-Length with Transfer-Encoding (CL.TE / TE.CL)", async () => {
    const line = await raw(`POST /api/payments HTTP/1.1\r\nHost: x\r\n${auth()}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nDELETE /api/users/1 HTTP/1.1\r\nHost: x\r\n${auth()}\r\n`);
    expect(line).toMatch(/^HTTP\/1\.1 400/);
    expect(reachedAdmin()).toBe(false);
  });

  it("refuses duplicate Content-Length", async () => {
    expect(await raw(`POST /api/payments HTTP/1.1\r\nHost: x\r\n${auth()}Content-Length: 2\r\nContent-Length: 30\r\n\r\n{}`)).toMatch(/^HTTP\/1\.1 400/);
  });

  it("refuses obs-fold (a header continued on the next line)", async () => {
    expect(await raw(`GET /api/users HTTP/1.1\r\nHost: x\r\n${auth()}X-Foo: a\r\n  b\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400/);
  });

  it("refuses a bad chunked encoding and a TE that is not chunked-last", async () => {
    expect(await raw(`POST /api/payments HTTP/1.1\r\nHost: x\r\n${auth()}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`)).toMatch(/^HTTP\/1\.1 (400|501)/);
    expect(await raw(`POST /api/payments HTTP/1.1\r\nHost: x\r\n${auth()}Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400/);
  });

  it("judges every pipelined request on its own", async () => {
    const one = `GET /api/users HTTP/1.1\r\nHost: x\r\n${auth()}\r\n`;
    const two = `DELETE /api/users/1 HTTP/1.1\r\nHost: x\r\n${auth()}Connection: close\r\n\r\n`;
    const got = await new Promise<string>((resolve) => {
      const s = connect(port, "127.0.0.1");
      let text = "";
      s.on("data", (b: Buffer) => (text += b.toString("latin1")));
      s.on("close", () => resolve(text));
      s.write(one + two);
    });
    expect(got).toMatch(/HTTP\/1\.1 200/);
    expect(got).toMatch(/HTTP\/1\.1 403/);
    expect(reachedAdmin()).toBe(false);
  });

  it("never forwards the agent's Authorization, even duplicated", async () => {
    const before = up.seen.length;
    await raw(`GET /api/echo HTTP/1.1\r\nHost: x\r\n${auth()}Authorization: Bearer second-token\r\nConnection: close\r\n\r\n`);
    for (const s of up.seen.slice(before)) expect(JSON.stringify(s.headers)).not.toContain(token);
  });
});
