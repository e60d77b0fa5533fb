/**
 * The engine conformance suite (suite.ts) for the HTTP engine (src/protocols/http): a real local
 * HTTP API (below), the in-process gateway, and Node's http client on one keep-alive connection
 * per session (one connection and token = one session). A statement is `METHOD /path`. Native
 * forms are HTTP statuses with the JSON error body of INTERFACE.md: 403 for a deny and when the
 * gateway ends a session, 503 for an audit failure, 404 for an unknown connection, 401 for a bad
 * credential.
 */
import { randomBytes } from "node:crypto";
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { startTestGateway } from "../harness/gateway.js";
import { defineConformance, type ConformanceWorld, type EngineSession, type NativeError, type Outcome, recordedResults } from "./suite.js";

const DENY_RULE = "conformance-deny";
const HOLD_RULE = "conformance-hold";
const SECRET_EMAIL = `owner-${randomBytes(6).toString("hex")}@example.com`;

/** The target API: marks, a forbidden echo, a request that waits until its client goes, PII. */
async function startApi(): Promise<{ url: string; marks: Set<string>; running: Set<string>; stop(): Promise<void> }> {
  const marks = new Set<string>();
  const running = new Set<string>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const [, what, tag = ""] = (req.url ?? "/").split("/");
    req.resume();
    const text = (body: string): void => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    switch (what ?? "") {
      case "ok":
        return text(`ok-${tag}`);
      case "marks":
      case "held":
        marks.add(tag);
        return text(`marked ${tag}`);
      case "forbidden":
        return text(`LEAK-${tag.toUpperCase()}`);
      case "slow":
        running.add(tag);
        res.once("close", () => running.delete(tag));
        return;
      case "pii":
        return text(`owner: ${SECRET_EMAIL}`);
      default:
        res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    marks,
    running,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An error answer as its status and the `error.message` of its JSON body. */
function nativeOf(status: number, body: string): NativeError {
  let message = body;
  try {
    const m = (JSON.parse(body) as { error?: { message?: unknown } }).error?.message;
    if (typeof m === "string") message = m;
  } catch {
    // not JSON: the body as is
  }
  return { code: String(status), message };
}

function send(port: number, agent: Agent, token: string, text: string, onSocket?: (s: Socket) => void, headers: Record<string, string> = {}): Promise<Outcome> {
  const [method = "GET", path = "/"] = text.split(" ");
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, method, path, agent, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString("utf8")));
      res.on("end", () => resolve((res.statusCode ?? 0) < 400 ? { ok: true, output: body } : { ok: false, error: nativeOf(res.statusCode ?? 0, body) }));
      res.on("error", (e) => resolve({ ok: false, error: { code: "closed", message: e.message } }));
    });
    req.on("socket", (s: Socket) => onSocket?.(s));
    req.on("error", (e) => resolve({ ok: false, error: { code: "closed", message: e.message } }));
    req.end();
  });
}

async function start(): Promise<ConformanceWorld> {
  const api = await startApi();
  try {
    const gw = await startTestGateway({
      listen: { api: "127.0.0.1:0", http: "127.0.0.1:0" },
      serviceAccounts: [
        { name: "agent", groups: ["agents"] },
        { name: "approver", groups: ["approvers"] },
      ],
      connections: [{ name: "web", type: "http", baseUrl: api.url, auth: { bearer: "target-token-conformance" }, groups: ["agents"] }],
      policies: [
        { name: DENY_RULE, match: { paths: ["/forbidden/*"] }, action: "deny" },
        { name: HOLD_RULE, match: { methods: ["POST"], paths: ["/held/*"] }, action: "require_approval", approvers: ["approvers"] },
        { name: "conformance-mask", action: "mask", detectors: ["email"] },
      ],
    });
    const port = gw.gw.addresses.http?.port ?? 0;
    const approverToken = await gw.mint("approver", "1h");

    const open = (token: string): Promise<EngineSession> => {
      return Promise.resolve(openSession(token));
    };
    const openSession = (token: string): EngineSession => {
      // One connection for the whole session: requests go one after another on it.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      let socket: Socket | undefined;
      let resolveClosed: () => void = () => undefined;
      const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
      const watch = (s: Socket): void => {
        if (socket === s) return;
        socket = s;
        s.once("close", () => resolveClosed());
      };
      const session: EngineSession = {
        notices: [],
        run: (text: string) => send(port, agent, token, text.replace(/^(\w+) \//, "$1 /web/"), watch),
        closed: () => closed,
        close() {
          agent.destroy();
          if (socket === undefined) resolveClosed();
          return closed;
        },
      };
      sessionAgents.set(session, { agent, token });
      return session;
    };

    return {
      gw,
      protocol: "http",
      connection: "web",
      agent: "agent",
      approverToken,
      workload: {
        allowed: (tag) => ({ text: `GET /ok/${tag}`, output: `ok-${tag}` }),
        effect: (tag) => `POST /marks/${tag}`,
        held: (tag) => ({ text: `POST /held/${tag}`, rule: HOLD_RULE }),
        marked: (tag) => Promise.resolve(api.marks.has(tag)),
        denied: (tag) => ({ text: `GET /forbidden/${tag}`, rule: DENY_RULE, wouldPrint: `LEAK-${tag.toUpperCase()}` }),
        longRunning: (tag) => `GET /slow/${tag}`,
        running: (tag) => Promise.resolve(api.running.has(tag)),
        masked: { text: "GET /pii", original: SECRET_EMAIL, masked: "owner: [EMAIL]" },
        // A method override header: the engine refuses it, whatever the policies.
        async engineRefusal(s) {
          const o = await s.run("GET /ok/override");
          if (!o.ok) throw new Error(`the plain request failed: ${o.error.message}`);
          const same = sessionAgents.get(s);
          if (same === undefined) throw new Error("not a session of this adapter");
          const r = await send(port, same.agent, same.token, "GET /web/ok/override", undefined, { "x-http-method-override": "DELETE" });
          if (r.ok) throw new Error("the method override was not refused");
          return r.error;
        },
      },
      open: async (token) => {
        const s = await open(token);
        sessionTokens.set(s, token);
        // An HTTP session starts with the connection's first request (admission happens there).
        const first = await s.run("GET /ok/open");
        if (!first.ok) throw new Error(`the session's first request failed: ${first.error.code} ${first.error.message}`);
        return s;
      },
      async login(connection, credential) {
        const r = await send(port, new Agent({ keepAlive: false }), credential, `GET /${connection}/ok/login`);
        return r.ok ? undefined : r.error;
      },
      seen: (sessionId) => recordedResults(gw, sessionId),
      async stop() {
        await gw.stop();
        await api.stop();
      },
    };
  } catch (e) {
    await api.stop();
    throw e;
  }
}

const sessionTokens = new WeakMap<EngineSession, string>();
/** Each session's own connection (agent) and token, for requests the workload sends itself. */
const sessionAgents = new WeakMap<EngineSession, { readonly agent: Agent; readonly token: string }>();

defineConformance({
  engine: "http",
  native: {
    deny: "403",
    auditUnavailable: "503",
    auditUnavailableAtLogin: "503",
    unknownConnection: "404",
    badCredential: "401",
    sessionEnded: "403",
    loginRefusalSaysWhy: true,
  },
  start,
  skip: {
    hold: "HTTP has no message a client reads while its request waits (approvals, sync and async, are tested in test/http.test.ts)",
    "hold-denied": "HTTP has no message a client reads while its request waits, so the approval id cannot be read from the client (tested in test/http.test.ts)",
    "recording-refused-result": "responses are masked as they stream; a response is refused only for an encoding the gateway cannot decode, which this API never sends",
  },
});
