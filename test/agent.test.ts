/**
 * Issue 19: the network-resident agent, end to end. The gateway runs in this process; agents
 * are real `airlock agent` processes (the compiled CLI) in their own network namespace, joined
 * to ours by a veth pair. The target PostgreSQL is reachable from the agents' namespace only
 * (at 127.0.0.1:Q there, which a forwarder inside the namespace carries to the harness server);
 * the gateway is configured with that same address, where nothing listens on its side. The
 * target password is a canary that exists only in the agents' environment.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { execFile } from "node:child_process";
import pg from "pg";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../src/audit/types.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { freePort } from "./harness/ports.js";
import { until } from "./harness/until.js";
import { askpass, clientOptions, runSshClient, startSshd, type SshdServer } from "./harness/sshd.js";

const repo = join(import.meta.dirname, "..");
const CANARY = `canary-${randomBytes(12).toString("hex")}`;
const NS = `alagent${process.pid % 100000}`;
const VETH = `alv${process.pid % 100000}`;
const SUBNET = 10 + (process.pid % 200);
const HOST_IP = `10.213.${SUBNET}.1`;
const NS_IP = `10.213.${SUBNET}.2`;

function netnsWorks(): boolean {
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

const ip = (...args: string[]): void => void execFileSync("ip", args, { stdio: "pipe" });

let buildDir = "";
let cli = "";
let server: PgServer;
let t: TestGateway;
let forwarder: ChildProcess | undefined;
let nsPort = 0;
let nsSshPort = 0;
let sshd: SshdServer;
const relays: Server[] = [];
let caFile = "";
let edgeToken = "";
let botToken = "";
const agents = new Map<string, ChildProcess>();
const agentLogs = new Map<string, string>();

function startAgent(name: string, extra: { token?: string; group?: string; allow?: string[] } = {}): ChildProcess {
  const child = spawn(
    "ip",
    [
      "netns", "exec", NS, process.execPath, cli, "agent",
      "--gateway", `wss://${HOST_IP}:${t.gw.addresses.agents?.port ?? 0}`,
      "--token", extra.token ?? edgeToken,
      "--group", extra.group ?? "dc-east",
      "--name", name,
      "--ca", caFile,
      "--secret", "env:AGENT_PG_PASSWORD",
      ...(extra.allow ?? []).flatMap((a) => ["--allow", a]),
    ],
    { env: { PATH: process.env["PATH"] ?? "", AGENT_PG_PASSWORD: CANARY }, stdio: ["ignore", "ignore", "pipe"] },
  );
  agentLogs.set(name, "");
  child.stderr.setEncoding("utf8").on("data", (d: string) => agentLogs.set(name, (agentLogs.get(name) ?? "") + d));
  agents.set(name, child);
  return child;
}

/** The agents of dc-east (the group most tests use). */
function connectedAgents(): { name: string; streams: number }[] {
  return t.gw.agents
    .list()
    .filter((a) => a.group === "dc-east")
    .map((a) => ({ name: a.name, streams: a.streams }));
}

async function auditRecords(): Promise<readonly AuditRecord[]> {
  await t.gw.audit.flush();
  return t.gw.store.readAudit(0, 100_000);
}

function pgClient(connection: string, token: string): pg.Client {
  return new pg.Client({ host: "127.0.0.1", port: t.pgPort, database: connection, user: "bot", password: token, connectionTimeoutMillis: 15_000 });
}

/** Every file under a directory, as bytes. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

describe.skipIf(!netnsWorks())("network-resident agent (separate processes, separate network namespace)", () => {
  beforeAll(async () => {
    // The CLI, compiled (bin/airlock.js runs dist/, which a test must not depend on).
    mkdirSync(join(repo, ".airlock"), { recursive: true });
    buildDir = mkdtempSync(join(repo, ".airlock", "agent-cli-"));
    const tsconfig = join(buildDir, "tsconfig.json");
    writeFileSync(tsconfig, JSON.stringify({ extends: join(repo, "tsconfig.build.json"), compilerOptions: { outDir: join(buildDir, "out"), rootDir: repo, incremental: false }, include: [], files: [join(repo, "src/cli/main.ts")] }));
    const compiled = promisify(execFile)(join(repo, "node_modules/.bin/tsc"), ["-p", tsconfig], { cwd: repo });
    cli = join(buildDir, "out", "src", "cli", "main.js");

    // The agents' network: a namespace with loopback and a veth pair to ours.
    try {
      ip("netns", "del", NS);
    } catch {
      // not there
    }
    ip("netns", "add", NS);
    ip("link", "add", VETH, "type", "veth", "peer", "name", `${VETH}b`);
    ip("link", "set", `${VETH}b`, "netns", NS);
    ip("addr", "add", `${HOST_IP}/30`, "dev", VETH);
    ip("link", "set", VETH, "up");
    ip("netns", "exec", NS, "ip", "addr", "add", `${NS_IP}/30`, "dev", `${VETH}b`);
    ip("netns", "exec", NS, "ip", "link", "set", `${VETH}b`, "up");
    ip("netns", "exec", NS, "ip", "link", "set", "lo", "up");

    server = await startPostgres({ users: [{ name: "app", password: CANARY, auth: "scram-sha-256" }], databases: ["orders"] });
    await server.psql(
      `create table customers (id int primary key, email text not null); insert into customers values (1, 'ann@example.com'), (2, 'bob@example.com');
       alter table customers owner to app;`,
      { database: "orders" },
    );
    sshd = await startSshd();
    // Our side: relays on the veth address to the harness servers (loopback-only).
    const relayTo = async (port: number): Promise<number> => {
      const at = await freePort();
      const r = createServer((c) => {
        const u = connect(port, "127.0.0.1");
        c.pipe(u).pipe(c);
        c.on("error", () => u.destroy());
        u.on("error", () => c.destroy());
      });
      await new Promise<void>((ok) => r.listen(at, HOST_IP, ok));
      relays.push(r);
      return at;
    };
    const pgRelay = await relayTo(server.port);
    const sshRelay = await relayTo(sshd.port);
    // Their side: 127.0.0.1:nsPort (and nsSshPort) inside the namespace → the relays. The gateway
    // is configured with those same addresses, which on its side are closed ports.
    nsPort = await freePort();
    nsSshPort = await freePort();
    const pairs = JSON.stringify([[nsPort, pgRelay], [nsSshPort, sshRelay]]);
    forwarder = spawn(
      "ip",
      ["netns", "exec", NS, process.execPath, "-e", `const net=require("net");let n=0;for(const [from,to] of ${pairs})net.createServer(s=>{const u=net.connect(to,"${HOST_IP}");s.pipe(u).pipe(s);s.on("error",()=>u.destroy());u.on("error",()=>s.destroy())}).listen(from,"127.0.0.1",()=>{if(++n===2)console.log("ready")})`],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((r) => forwarder?.stdout?.once("data", () => r()));

    // The gateway's certificate names the veth address the agents dial; they verify it.
    const pems = await generate([{ name: "commonName", value: "airlock-gateway" }], {
      keyType: "ec",
      curve: "P-256",
      extensions: [
        { name: "basicConstraints", cA: true },
        { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: HOST_IP }] },
      ],
    });
    caFile = join(buildDir, "gateway-ca.pem");
    writeFileSync(caFile, pems.cert);

    t = await startTestGateway({
      listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0", ssh: "127.0.0.1:0", agents: `${HOST_IP}:0` },
      tls: { cert: pems.cert, key: pems.private },
      serviceAccounts: [
        { name: "edge", groups: ["edge-east"] },
        { name: "bot", groups: ["agents"] },
      ],
      agents: { groups: [{ name: "dc-east", allow: ["edge-east"] }, { name: "dc-west", allow: ["edge-west"] }, { name: "dc-locked", allow: ["edge-east"] }], heartbeat: "1s" },
      connections: [
        { name: "orders", type: "postgres", host: "127.0.0.1", port: nsPort, database: "orders", user: "app", password: "env:AGENT_PG_PASSWORD", credentialsOn: "agent", via: "dc-east", groups: ["agents"], sslmode: "disable", pool: false },
        { name: "orders-direct", type: "postgres", host: "127.0.0.1", port: nsPort, database: "orders", user: "app", password: "env:AGENT_PG_PASSWORD", groups: ["agents"], sslmode: "disable" },
        { name: "web1", type: "ssh", host: "127.0.0.1", port: nsSshPort, user: sshd.user, privateKey: `file:${sshd.clientKeyPath}`, hostKey: sshd.hostKey, via: "dc-east", groups: ["agents"] },
        { name: "locked-pg", type: "postgres", host: "127.0.0.1", port: nsPort, database: "orders", user: "app", password: "env:AGENT_PG_PASSWORD", credentialsOn: "agent", via: "dc-locked", groups: ["agents"], sslmode: "disable", pool: false },
        { name: "locked-ssh", type: "ssh", host: "127.0.0.1", port: nsSshPort, user: sshd.user, privateKey: `file:${sshd.clientKeyPath}`, hostKey: sshd.hostKey, via: "dc-locked", groups: ["agents"] },
        { name: "west", type: "postgres", host: "127.0.0.1", port: nsPort, database: "orders", user: "app", password: "env:AGENT_PG_PASSWORD", credentialsOn: "agent", via: "dc-west", groups: ["agents"], sslmode: "disable" },
      ],
      policies: [{ name: "hide-email", action: "mask", columns: ["customers.email"], strategy: "redact" }],
    });
    edgeToken = await t.mint("edge", "1h");
    botToken = await t.mint("bot", "1h");
    await compiled;
    startAgent("east-1");
    startAgent("east-2");
    await until("two agents connected", () => (connectedAgents().length === 2 ? true : undefined), 30_000).catch((e: unknown) => {
      throw new Error(`${String(e)}; agent logs: ${[...agentLogs.values()].join("").slice(0, 2000)}`);
    });
  }, 300_000);

  afterAll(async () => {
    for (const a of agents.values()) a.kill("SIGKILL");
    forwarder?.kill("SIGKILL");
    await t.stop();
    for (const r of relays) r.close();
    await server.stop();
    await sshd.stop();
    try {
      ip("netns", "del", NS);
    } catch {
      // gone already
    }
    try {
      ip("link", "del", VETH);
    } catch {
      // removed with the namespace
    }
    rmSync(buildDir, { recursive: true, force: true });
  });

  it("psql reaches the target through an agent, with masking; the gateway alone cannot reach it", async () => {
    const r = await t.psql("orders", botToken, ["-A", "-t", "-c", "select id, email from customers order by id"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual(["1|[EMAIL]", "2|[EMAIL]"]);
    // The same address dialed by the gateway itself: nothing there.
    const direct = await t.psql("orders-direct", botToken, ["-c", "select 1"]);
    expect(direct.code).not.toBe(0);
    expect(direct.stderr).toContain("the target is unavailable");
  });

  it("ssh through the agent: an exec reaches the target host (the gateway logs in with its own key)", async () => {
    const pass = askpass(buildDir, botToken);
    const r = await runSshClient("ssh", [...clientOptions(), "-p", String(t.gw.addresses.ssh?.port ?? 0), "web1@127.0.0.1", "echo through-the-agent; whoami"], { askpassPath: pass });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual(["through-the-agent", sshd.user]);
  });

  it("no agent of the group connected: a clean ErrorResponse with SQLSTATE 08001 naming the group", async () => {
    const r = await t.psql("west", botToken, ["-c", "select 1"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('airlock: connection "west": no agent of group "dc-west" is connected');
    const c = pgClient("west", botToken);
    const e: unknown = await c.connect().catch((x: unknown) => x);
    expect((e as { code?: string }).code).toBe("08001");
    await c.end().catch(() => undefined);
  });

  it("airlock agents list and GET /v1/agents show the connected agents", async () => {
    const res = await t.api("/v1/agents");
    expect(res.status).toBe(200);
    const list = (res.body as { agents: { name: string; group: string; version: string; address: string; lastSeen: string }[] }).agents;
    expect(list.map((a) => a.name).sort()).toEqual(["east-1", "east-2"]);
    for (const a of list) {
      expect(a.group).toBe("dc-east");
      expect(a.address.startsWith(NS_IP)).toBe(true);
      expect(a.version).toMatch(/^\d+\.\d+/);
    }
    const out = await promisify(execFile)(process.execPath, [cli, "agents", "list", "--api", t.apiUrl], { env: { ...process.env, AIRLOCK_TOKEN: t.gw.adminToken } });
    expect(out.stdout).toContain("east-1");
    expect(out.stdout).toContain("dc-east");
    expect(out.stdout).toContain("STREAMS");
    // A non-auditor may not list agents.
    expect((await t.api("/v1/agents", { token: botToken })).status).toBe(403);
    // Each connect is audited with the agent's id, group, name, version and address.
    const connects = (await auditRecords()).filter((r) => r.type === "agent.connect" && r.decision === "allow");
    for (const a of list) {
      const rec = connects.find((r) => r.details?.["name"] === a.name);
      expect(rec, a.name).toBeDefined();
      expect(rec?.details).toMatchObject({ group: "dc-east", version: a.version, agentId: (a as { id?: string }).id });
      expect(rec?.clientAddress).toBe(a.address);
      expect(rec?.principal?.id).toMatch(/edge/);
    }
  });

  it("an agent with a token of the wrong group, or a bad token, is refused and never registered", async () => {
    const wrong = startAgent("intruder", { token: botToken });
    const bad = startAgent("forger", { token: "not-a-token" });
    await until("refusals logged", () => ((agentLogs.get("intruder") ?? "").includes("refused") && (agentLogs.get("forger") ?? "").includes("refused") ? true : undefined), 20_000);
    expect(connectedAgents().map((a) => a.name).sort()).toEqual(["east-1", "east-2"]);
    // Both refusals are audited (agent.connect, deny) with the reason's code and the address.
    const refused = (await auditRecords()).filter((r) => r.type === "agent.connect" && r.decision === "deny");
    expect(refused.map((r) => r.code).sort()).toEqual(expect.arrayContaining(["GW_ACCESS_DENIED", "GW_AUTH_INVALID"]));
    for (const r of refused) expect(r.clientAddress?.startsWith(NS_IP)).toBe(true);
    wrong.kill("SIGKILL");
    bad.kill("SIGKILL");
    agents.delete("intruder");
    agents.delete("forger");
  });

  it("failover: killing the agent that carries a session ends it cleanly; new sessions go through the other agent", async () => {
    const before = new Map(connectedAgents().map((a) => [a.name, a.streams]));
    const c = pgClient("orders", botToken);
    await c.connect();
    expect((await c.query("select count(*)::int as n from customers")).rows[0]).toEqual({ n: 2 });
    const carrier = await until("the carrying agent", () => connectedAgents().find((a) => a.streams > (before.get(a.name) ?? 0))?.name);
    const sessionId = await until("the live session", () => t.gw.registry.list().find((s) => s.connection === "orders")?.id);
    const errored = new Promise<Error>((resolve) => c.on("error", resolve));
    agents.get(carrier)?.kill("SIGKILL");
    agents.delete(carrier);
    // The gateway notices the tunnel's loss (socket close, at the latest three missed heartbeats).
    await until("the dead agent unregistered", () => (connectedAgents().every((a) => a.name !== carrier) ? true : undefined), 20_000);
    const failure = await Promise.race([
      c.query("select 1").then(
        () => "unexpected success",
        (e: unknown) => (e instanceof Error ? e.message : String(e)),
      ),
      errored.then((e) => e.message),
    ]);
    expect(failure).not.toBe("unexpected success");
    await c.end().catch(() => undefined);
    await until("agent.disconnect audited", async () => ((await auditRecords()).some((r) => r.type === "agent.disconnect" && r.details?.["name"] === carrier && r.details["group"] === "dc-east") ? true : undefined), 20_000);
    await until("the session recorded as ended", async () => {
      const r = await t.api(`/v1/sessions/${sessionId}`);
      const s = (r.body as { session?: { endedAt?: string; live: boolean } }).session;
      return s?.endedAt !== undefined && !s.live ? true : undefined;
    }, 20_000);
    const r = await t.psql("orders", botToken, ["-A", "-t", "-c", "select count(*) from customers"]);
    expect(r.stdout.trim()).toBe("2");
    // Bring a replacement back for later tests.
    startAgent(carrier);
    await until("two agents again", () => (connectedAgents().length === 2 ? true : undefined), 30_000);
  });

  it("an agent with an allowlist dials only what it allows: another target is refused cleanly (and the allowed one works)", async () => {
    const locked = startAgent("locked-1", { group: "dc-locked", allow: [`127.0.0.1:${nsPort}`] });
    try {
      await until("the locked agent connected", () => (t.gw.agents.list().some((a) => a.group === "dc-locked") ? true : undefined), 30_000);
      const ok = await t.psql("locked-pg", botToken, ["-A", "-t", "-c", "select count(*) from customers"]);
      expect(ok.stderr).toBe("");
      expect(ok.stdout.trim()).toBe("2");
      const pass = askpass(buildDir, botToken);
      const r = await runSshClient("ssh", [...clientOptions(), "-p", String(t.gw.addresses.ssh?.port ?? 0), "locked-ssh@127.0.0.1", "echo should-not-run"], { askpassPath: pass });
      expect(r.code).not.toBe(0);
      expect(r.stdout).not.toContain("should-not-run");
      expect(r.stderr).toContain("not in the agent's allowlist");
      expect(agentLogs.get("locked-1")).toContain("refused to dial a target outside the allowlist");
    } finally {
      locked.kill("SIGKILL");
      agents.delete("locked-1");
    }
  });

  it("without an allowlist an agent dials only the targets the gateway announced at connect: a connection added later is refused", async () => {
    const r = await t.api("/v1/console/connections", {
      body: { connection: { name: "late", type: "postgres", host: "127.0.0.1", port: 9, database: "orders", user: "app", via: "dc-east", groups: ["agents"], sslmode: "disable" } },
    });
    expect(r.status, r.text).toBe(201);
    const q = await t.psql("late", botToken, ["-c", "select 1"]); // 127.0.0.1:9 was not announced
    expect(q.code).not.toBe(0);
    expect(q.stderr).toContain(`the agent of group "dc-east" refused to dial the target: it is not in the agent's allowlist`);
    expect((await t.api("/v1/console/connections/late/disable", { body: {} })).status).toBe(200);
  });

  it("load is shared: concurrent sessions are spread over both agents", async () => {
    const clients = Array.from({ length: 4 }, () => pgClient("orders", botToken));
    await Promise.all(clients.map((c) => c.connect()));
    const spread = connectedAgents();
    expect(spread.every((a) => a.streams >= 1)).toBe(true);
    await Promise.all(clients.map((c) => c.query("select 1")));
    await Promise.all(clients.map((c) => c.end()));
  });

  it("the agent-side secret (canary) never reaches the gateway: not in its config, logs, files, store or API answers", async () => {
    // The gateway process has no such variable: it could not have resolved the reference itself.
    expect(Object.values(process.env)).not.toContain(CANARY);
    expect(JSON.stringify(t.gw.config)).not.toContain(CANARY);
    expect(t.logs()).not.toContain(CANARY);
    await t.gw.audit.flush();
    for (const f of filesUnder(t.dataDir)) expect(readFileSync(f).includes(CANARY), f).toBe(false);
    for (const path of ["/v1/agents", "/v1/sessions?limit=100", "/v1/audit?limit=1000", "/v1/console/connections"]) {
      const r = await t.api(path);
      expect(r.text).not.toContain(CANARY);
    }
    // And the agent did use it: the target accepted the SCRAM login only the canary can pass.
    const r = await t.psql("orders", botToken, ["-A", "-t", "-c", "select current_user"]);
    expect(r.stdout.trim()).toBe("app");
  });

  it("streams of ended sessions are released on both agents (only the catalog's one side session stays)", async () => {
    // src/runtime/catalogs.ts keeps one side connection per PostgreSQL connection for catalog look-ups.
    const open = (): number => connectedAgents().reduce((n, a) => n + a.streams, 0);
    await until("no open session streams", () => (open() <= 1 ? true : undefined), 10_000).catch((e: unknown) => {
      throw new Error(`${String(e)}: ${JSON.stringify(connectedAgents())}`);
    });
  });
});
