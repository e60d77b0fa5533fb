/**
 * Audit export (issue 20) end to end: a real gateway exports its audit chain to a webhook
 * receiver that fails and recovers, a JSON-lines file, a real rsyslogd over UDP, TCP and TLS
 * (RFC 5424, octet-counted framing on TCP/TLS), and an OTLP/HTTP logs receiver (OCSF-formatted
 * records, checked against the OTLP JSON mapping and the OCSF schema). Nothing is lost across
 * the receiver's outage or a gateway restart, filters select, bodies are signed, and chain heads
 * match the store.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, timingSafeEqual } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { AuditRecord } from "../src/audit/types.js";
import { createLogger } from "../src/observability/logger.js";
import { parseConfig, type RawConfig } from "../src/runtime/config.js";
import { startGateway, type RunningGateway } from "../src/runtime/gateway.js";
import { freePort } from "./harness/ports.js";
import { localhostCertificate } from "./harness/tls.js";
import { until } from "./harness/until.js";

const SECRET = "webhook-signing-secret-for-tests";

interface Received {
  readonly records: Record<string, unknown>[];
  readonly bad: number;
}

/** A webhook receiver that answers 503 while `down`, checks every signature, and keeps what it accepted. */
async function receiver(): Promise<{ url: string; got: Received; setDown(v: boolean): void; attempts(): number; close(): Promise<void> }> {
  const got: { records: Record<string, unknown>[]; bad: number } = { records: [], bad: 0 };
  let down = false;
  let attempts = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      attempts++;
      if (down) {
        res.writeHead(503).end();
        return;
      }
      const body = Buffer.concat(chunks).toString("utf8");
      const ts = String(req.headers["x-airlock-timestamp"] ?? "");
      const sig = Buffer.from(String(req.headers["x-airlock-signature"] ?? ""));
      const want = Buffer.from(`sha256=${createHmac("sha256", SECRET).update(`${ts}.${body}`).digest("hex")}`);
      if (sig.length !== want.length || !timingSafeEqual(sig, want)) {
        got.bad++;
        res.writeHead(401).end();
        return;
      }
      got.records.push(...(JSON.parse(body) as { records: Record<string, unknown>[] }).records);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const a = server.address();
  const port = typeof a === "object" && a !== null ? a.port : 0;
  return {
    url: `http://127.0.0.1:${port}/audit`,
    got,
    setDown: (v) => (down = v),
    attempts: () => attempts,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** OTLP AnyValue in the protobuf JSON mapping (opentelemetry/proto/common/v1/common.proto), strictly. */
type AnyValue = { stringValue: string } | { boolValue: boolean } | { intValue: string } | { doubleValue: number } | { arrayValue: { values: AnyValue[] } } | { kvlistValue: { values: { key: string; value: AnyValue }[] } } | Record<string, never>;
const anyValue: z.ZodType<AnyValue> = z.lazy(() =>
  z.union([
    z.strictObject({ stringValue: z.string() }),
    z.strictObject({ boolValue: z.boolean() }),
    z.strictObject({ intValue: z.string().regex(/^-?\d+$/) }),
    z.strictObject({ doubleValue: z.number() }),
    z.strictObject({ arrayValue: z.strictObject({ values: z.array(anyValue) }) }),
    z.strictObject({ kvlistValue: z.strictObject({ values: z.array(z.strictObject({ key: z.string(), value: anyValue })) }) }),
    z.strictObject({}),
  ]),
);
const keyValue = z.strictObject({ key: z.string(), value: anyValue });
const nanos = z.string().regex(/^\d{19}$/);
/** ExportLogsServiceRequest (opentelemetry/proto/collector/logs/v1, logs/v1/logs.proto) as JSON. */
const exportLogsRequest = z.strictObject({
  resourceLogs: z.array(
    z.strictObject({
      resource: z.strictObject({ attributes: z.array(keyValue) }),
      scopeLogs: z.array(
        z.strictObject({
          scope: z.strictObject({ name: z.string(), version: z.string() }),
          logRecords: z.array(
            z.strictObject({
              timeUnixNano: nanos,
              observedTimeUnixNano: nanos,
              severityNumber: z.number().int().min(1).max(24),
              severityText: z.string(),
              eventName: z.string(),
              body: anyValue,
              attributes: z.array(keyValue),
            }),
          ),
        }),
      ),
    }),
  ),
});

function fromAnyValue(v: AnyValue): unknown {
  if ("stringValue" in v) return v.stringValue;
  if ("boolValue" in v) return v.boolValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("arrayValue" in v) return v.arrayValue.values.map(fromAnyValue);
  if ("kvlistValue" in v) return Object.fromEntries(v.kvlistValue.values.map((e) => [e.key, fromAnyValue(e.value)]));
  return null;
}

/** An OTLP/HTTP logs receiver (POST /v1/logs): 503 while down, 400 for anything that is not a valid request. */
async function otlpReceiver(): Promise<{ url: string; events: Record<string, unknown>[]; invalid: string[]; setDown(v: boolean): void; refused(): number; close(): Promise<void> }> {
  const events: Record<string, unknown>[] = [];
  const invalid: string[] = [];
  let down = false;
  let refused = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (down) {
        refused++;
        res.writeHead(503).end();
        return;
      }
      const parsed = exportLogsRequest.safeParse(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      if (req.url !== "/v1/logs" || req.headers["content-type"] !== "application/json" || req.headers["x-api-key"] !== OTLP_KEY || !parsed.success) {
        invalid.push(parsed.success ? `${req.url ?? ""} ${String(req.headers["content-type"])}` : parsed.error.message.slice(0, 500));
        res.writeHead(400).end();
        return;
      }
      for (const rl of parsed.data.resourceLogs) for (const sl of rl.scopeLogs) for (const lr of sl.logRecords) events.push(fromAnyValue(lr.body) as Record<string, unknown>);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const a = server.address();
  const port = typeof a === "object" && a !== null ? a.port : 0;
  return {
    url: `http://127.0.0.1:${port}/v1/logs`,
    events,
    invalid,
    setDown: (v) => (down = v),
    refused: () => refused,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const OTLP_KEY = "otlp-api-key-for-tests";

/** A real rsyslogd in the foreground, listening on UDP and TCP, writing each raw message to a file. */
async function rsyslog(dir: string): Promise<{ udp: number; tcp: number; tls: number; ca: string; out: string; stop(): Promise<void> }> {
  const udp = await freePort();
  const tcp = await freePort();
  const tls = await freePort();
  const out = join(dir, "received.log");
  const conf = join(dir, "rsyslog.conf");
  // TLS (RFC 5425) through rsyslog's OpenSSL stream driver, with a self-signed certificate the
  // gateway's sink is given as its CA.
  const pems = await localhostCertificate();
  const ca = join(dir, "syslog-cert.pem");
  const key = join(dir, "syslog-key.pem");
  writeFileSync(ca, pems.cert);
  writeFileSync(key, pems.key, { mode: 0o600 });
  writeFileSync(
    conf,
    [
      `global(workDirectory="${dir}" maxMessageSize="64k" defaultNetstreamDriverCAFile="${ca}" defaultNetstreamDriverCertFile="${ca}" defaultNetstreamDriverKeyFile="${key}")`,
      'module(load="imudp")',
      'module(load="imtcp")',
      `input(type="imudp" address="127.0.0.1" port="${udp}" ruleset="airlock")`,
      `input(type="imtcp" address="127.0.0.1" port="${tcp}" ruleset="airlock")`,
      `input(type="imtcp" address="127.0.0.1" port="${tls}" ruleset="airlock" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")`,
      'template(name="raw" type="string" string="%rawmsg%\\n")',
      `ruleset(name="airlock") { action(type="omfile" file="${out}" template="raw") }`,
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn("rsyslogd", ["-n", "-f", conf, "-i", join(dir, "rsyslogd.pid")], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr?.on("data", (b: Buffer) => (err += b.toString()));
  await until(
    "rsyslogd to listen",
    async () => {
      if (child.exitCode !== null) throw new Error(`rsyslogd exited: ${err}`);
      const { connect } = await import("node:net");
      return new Promise<true | undefined>((resolve) => {
        const s = connect({ host: "127.0.0.1", port: tcp });
        s.once("connect", () => {
          s.destroy();
          resolve(true);
        });
        s.once("error", () => resolve(undefined));
      });
    },
    20_000,
  );
  return {
    udp,
    tcp,
    tls,
    ca,
    out,
    async stop() {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

const dirs: string[] = [];
let hook: Awaited<ReturnType<typeof receiver>>;
let otlp: Awaited<ReturnType<typeof otlpReceiver>>;
let syslog: Awaited<ReturnType<typeof rsyslog>>;
let dataDir: string;
let jsonl: string;
let gw: RunningGateway | undefined;

function config(): RawConfig {
  return {
    dataDir,
    listen: { api: "127.0.0.1:0" },
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    audit: {
      headInterval: "1s",
      sinks: [
        { name: "siem", type: "webhook", url: hook.url, secret: SECRET },
        { name: "local", type: "file", path: jsonl, maxBytes: 4096, keep: 3 },
        { name: "tokens-udp", type: "syslog", transport: "udp", host: "127.0.0.1", port: syslog.udp, filter: { types: ["token.create"] } },
        { name: "tcp", type: "syslog", transport: "tcp", host: "127.0.0.1", port: syslog.tcp },
        { name: "tls", type: "syslog", transport: "tls", host: "127.0.0.1", port: syslog.tls, ca: `file:${syslog.ca}`, servername: "localhost", filter: { types: ["token.create"] } },
        { name: "otel", type: "otlp", url: otlp.url, headers: { "x-api-key": OTLP_KEY }, format: "ocsf" },
      ],
    },
  };
}

async function start(): Promise<RunningGateway> {
  return startGateway(parseConfig(config()), { logger: createLogger({ level: "silent" }) });
}

/** A token minted through the API: audited as token.create. */
async function mint(g: RunningGateway): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${g.addresses.api?.port ?? 0}/v1/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${g.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ serviceAccount: "agent", ttl: "1m" }),
  });
  if (res.status !== 201) throw new Error(`mint failed: ${res.status}`);
}

async function storeRecords(g: RunningGateway): Promise<AuditRecord[]> {
  await g.audit.flush();
  return [...(await g.store.readAudit(0, 1_000_000))];
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "airlock-export-"));
  dirs.push(dir);
  dataDir = join(dir, "gw");
  jsonl = join(dir, "export", "audit.jsonl");
  hook = await receiver();
  otlp = await otlpReceiver();
  syslog = await rsyslog(dir);
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await hook.close();
  await otlp.close();
  await syslog.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("audit export", () => {
  it("delivers every record, in order and signed, through a receiver outage and a gateway restart", async () => {
    hook.setDown(true);
    otlp.setDown(true);
    gw = await start();
    for (let i = 0; i < 5; i++) await mint(gw);
    await until("failed deliveries while the receiver is down", () => (hook.attempts() >= 2 ? true : undefined));
    // Restart while the receiver is still down: the sink's cursor is on disk.
    await gw.close();
    gw = await start();
    for (let i = 0; i < 3; i++) await mint(gw);
    hook.setDown(false);
    otlp.setDown(false);
    const all = await storeRecords(gw);
    const last = all[all.length - 1]?.seq ?? 0;
    await until("the webhook to catch up", () => (hook.got.records.some((r) => r["type"] !== "audit.head" && r["seq"] === last) ? true : undefined), 30_000);
    const seqs = [...new Set(hook.got.records.filter((r) => r["type"] !== "audit.head").map((r) => r["seq"] as number))];
    expect(seqs).toEqual(all.map((r) => r.seq));
    expect(hook.got.bad).toBe(0);
    // The exported record is the chained record itself (its hash verifies against the store's).
    const byseq = new Map(all.map((r) => [r.seq, r.hash]));
    for (const r of hook.got.records.filter((x) => x["type"] !== "audit.head")) expect(r["hash"]).toBe(byseq.get(r["seq"] as number));
  }, 180_000);

  it("publishes the chain head to every sink, matching the store", async () => {
    const g = gw;
    if (g === undefined) throw new Error("no gateway");
    const head = await until("an audit.head at the webhook", () => hook.got.records.filter((r) => r["type"] === "audit.head").at(-1));
    const all = await storeRecords(g);
    expect(all.find((r) => r.seq === head["seq"])?.hash).toBe(head["hash"]);
  }, 60_000);

  it("writes JSON lines with rotation, and syslog over UDP and TLS (filtered) and TCP to a real rsyslogd", async () => {
    const g = gw;
    if (g === undefined) throw new Error("no gateway");
    for (let i = 0; i < 20; i++) await mint(g);
    const all = await storeRecords(g);
    const last = all[all.length - 1]?.seq ?? 0;
    await until("the file sink to catch up", () => (existsSync(jsonl) && readFileSync(jsonl, "utf8").includes(`"seq":${last},`) ? true : undefined), 30_000);
    expect(existsSync(`${jsonl}.1`)).toBe(true);
    const lines = [jsonl, `${jsonl}.1`, `${jsonl}.2`, `${jsonl}.3`].filter(existsSync).flatMap((f) => readFileSync(f, "utf8").trim().split("\n"));
    for (const l of lines) expect(() => JSON.parse(l) as unknown).not.toThrow();
    const received = await until(
      "rsyslogd to have the newest token over TCP",
      () => {
        const t = existsSync(syslog.out) ? readFileSync(syslog.out, "utf8") : "";
        // Once over UDP and once over TLS (token.create passes those sinks' filters), and once over TCP.
        return t.split("\n").filter((m) => m.includes(`"seq":${last},`) && m.includes(" token.create - ")).length >= 3 ? t : undefined;
      },
      30_000,
    );
    const messages = received.trim().split("\n");
    // RFC 5424 header: <PRI>1 TIMESTAMP HOST APP PROCID MSGID - BOM+JSON; facility 13 (log audit), severity 6.
    const mine = messages.filter((m) => m.includes(`"seq":${last},`) && !m.includes("audit.head"));
    const tokenLine = mine[0] ?? "";
    expect(tokenLine).toMatch(/^<110>1 \d{4}-\d\d-\d\dT[^ ]+ \S+ airlock \d+ token\.create - /);
    expect(mine.length).toBe(3);
    // TCP took everything; the UDP and TLS sinks' filters let only token.create (and heads)
    // through, so every other type arrived exactly once.
    const count = (type: string): number => messages.filter((m) => m.includes(`"type":"${type}"`)).length;
    const starts = all.filter((r) => r.type === "gateway.start").length;
    expect(count("gateway.start")).toBe(starts);
  }, 120_000);
});

describe("audit export over OTLP, as OCSF", () => {
  let validators: Map<number, ValidateFunction>;
  beforeAll(() => {
    const file = JSON.parse(readFileSync(new URL("./fixtures/ocsf/schema-1.8.0.json", import.meta.url), "utf8")) as {
      classes: Record<string, { class_uid: number; schema: object }>;
      $defs: Record<string, object>;
    };
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    validators = new Map(Object.values(file.classes).map((c) => [c.class_uid, ajv.compile({ ...c.schema, $defs: file.$defs })]));
  });

  it("delivers every record, through the collector's outage and a restart, as valid OCSF events", async () => {
    const g = gw;
    if (g === undefined) throw new Error("no gateway");
    const all = await storeRecords(g);
    const last = all[all.length - 1]?.seq ?? 0;
    const seqOf = (e: Record<string, unknown>): number | undefined => {
      const u = e["unmapped"] as { airlock?: { type?: string; seq?: number } } | undefined;
      return u?.airlock?.type === "audit.head" ? undefined : u?.airlock?.seq;
    };
    await until("the OTLP sink to catch up", () => (otlp.events.some((e) => seqOf(e) === last) ? true : undefined), 30_000);
    expect(otlp.invalid).toEqual([]);
    expect(otlp.refused()).toBeGreaterThan(0);
    const seqs = [...new Set(otlp.events.map(seqOf).filter((x): x is number => x !== undefined))].filter((x) => x <= last);
    expect(seqs).toEqual(all.map((r) => r.seq));
    for (const e of otlp.events) {
      const v = validators.get(e["class_uid"] as number);
      if (v === undefined) throw new Error(`no OCSF class ${String(e["class_uid"])}`);
      expect(v(e), JSON.stringify(v.errors)).toBe(true);
    }
    // The chain position survives the format: metadata.uid is the record's chain hash.
    const byseq = new Map(all.map((r) => [r.seq, r.hash]));
    for (const e of otlp.events) {
      const s = seqOf(e);
      if (s !== undefined && s <= last) expect((e["metadata"] as { uid: string }).uid).toBe(byseq.get(s));
    }
    expect(otlp.events.some((e) => e["class_uid"] === 0 && (e["unmapped"] as { airlock: { type: string } }).airlock.type === "audit.head")).toBe(true);
  }, 60_000);
});
