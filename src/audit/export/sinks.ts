/**
 * Where exported audit records go (issue 20): a JSON-lines file with rotation, a webhook (an
 * HMAC-SHA256-signed JSON body), and syslog (RFC 5424) over UDP, TCP or TLS (octet-counted
 * framing, RFC 6587 §3.4.1 / RFC 5425). A sink delivers one batch of already formatted records,
 * resolving when the receiver has them (file written, 2xx, TCP bytes flushed) and rejecting
 * otherwise; retries, cursors and durability are the exporter's (exporter.ts).
 */
import { createHmac } from "node:crypto";
import { createSocket } from "node:dgram";
import { appendFile, mkdir, rename, rm, stat } from "node:fs/promises";
import { connect as netConnect, type Socket } from "node:net";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { GatewayError } from "../../core/errors.js";

export interface ExportedRecord {
  /** The record as the sink's format renders it (a JSON object). */
  readonly body: Readonly<Record<string, unknown>>;
  /** For syslog: severity (RFC 5424 §6.2.1) and the event type as MSGID. */
  readonly severity: number;
  readonly msgid: string;
  readonly time: string;
}

export interface Sink {
  deliver(batch: readonly ExportedRecord[]): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------

export interface FileSinkOptions {
  readonly path: string;
  /** Rotate when the file would grow past this many bytes (default 64 MiB). */
  readonly maxBytes: number;
  /** Rotated files kept: path.1 (newest) … path.N. */
  readonly keep: number;
}

export class FileSink implements Sink {
  readonly #o: FileSinkOptions;

  constructor(o: FileSinkOptions) {
    this.#o = o;
  }

  async deliver(batch: readonly ExportedRecord[]): Promise<void> {
    const data = batch.map((r) => `${JSON.stringify(r.body)}\n`).join("");
    await mkdir(dirname(this.#o.path), { recursive: true });
    const size = await stat(this.#o.path).then(
      (s) => s.size,
      () => 0,
    );
    if (size > 0 && size + Buffer.byteLength(data) > this.#o.maxBytes) await this.#rotate();
    await appendFile(this.#o.path, data, { mode: 0o600 });
  }

  async #rotate(): Promise<void> {
    const p = this.#o.path;
    await rm(`${p}.${this.#o.keep}`, { force: true });
    for (let i = this.#o.keep - 1; i >= 1; i--) {
      await rename(`${p}.${i}`, `${p}.${i + 1}`).catch(() => undefined);
    }
    await rename(p, `${p}.1`);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------------------------------------

export interface WebhookSinkOptions {
  readonly url: string;
  /** Signs each body: `x-airlock-signature: sha256=HEX(HMAC-SHA256(secret, timestamp + "." + body))`. */
  readonly secret: string;
  readonly timeoutMs: number;
  readonly headers: Readonly<Record<string, string>>;
}

/** The signature a receiver recomputes to check a delivery (documented in the README). */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

export class WebhookSink implements Sink {
  readonly #o: WebhookSinkOptions;

  constructor(o: WebhookSinkOptions) {
    this.#o = o;
  }

  async deliver(batch: readonly ExportedRecord[]): Promise<void> {
    const body = JSON.stringify({ records: batch.map((r) => r.body) });
    const timestamp = String(Math.floor(Date.now() / 1000));
    let res: Response;
    try {
      res = await fetch(this.#o.url, {
        method: "POST",
        headers: { ...this.#o.headers, "content-type": "application/json", "x-airlock-timestamp": timestamp, "x-airlock-signature": webhookSignature(this.#o.secret, timestamp, body) },
        body,
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
    } catch (e) {
      throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the audit webhook could not be reached", { cause: e });
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.status < 200 || res.status > 299) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `the audit webhook answered ${res.status}`);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------------------------------------

export interface SyslogSinkOptions {
  readonly transport: "udp" | "tcp" | "tls";
  readonly host: string;
  readonly port: number;
  /** RFC 5424 facility (default 13, log audit). */
  readonly facility: number;
  readonly appName: string;
  /** TLS: CA bundle (PEM) to verify the receiver; default the system CAs. */
  readonly ca?: string;
  readonly servername?: string;
  readonly timeoutMs: number;
}

/** RFC 5424 §6: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG` with the JSON record as MSG (UTF-8, BOM). */
export function syslogLine(r: ExportedRecord, o: Pick<SyslogSinkOptions, "facility" | "appName">, host = hostname()): string {
  const pri = o.facility * 8 + r.severity;
  const field = (s: string, max: number): string => (s.replace(/[^\x21-\x7e]/g, "").slice(0, max) || "-");
  return `<${pri}>1 ${r.time} ${field(host, 255)} ${field(o.appName, 48)} ${process.pid} ${field(r.msgid, 32)} - \uFEFF${JSON.stringify(r.body)}`;
}

export class SyslogSink implements Sink {
  readonly #o: SyslogSinkOptions;
  #stream: Socket | TLSSocket | undefined;

  constructor(o: SyslogSinkOptions) {
    this.#o = o;
  }

  async deliver(batch: readonly ExportedRecord[]): Promise<void> {
    const lines = batch.map((r) => Buffer.from(syslogLine(r, this.#o), "utf8"));
    if (this.#o.transport === "udp") {
      await this.#udp(lines);
      return;
    }
    // RFC 6587 §3.4.1 octet counting: `LEN SP MSG`.
    const framed = Buffer.concat(lines.flatMap((l) => [Buffer.from(`${l.length} `, "latin1"), l]));
    const s = await this.#connected();
    await new Promise<void>((resolve, reject) => {
      s.write(framed, (e) => {
        if (e === undefined || e === null) resolve();
        else {
          this.#drop();
          reject(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the syslog receiver connection failed", { cause: e }));
        }
      });
    });
  }

  async #udp(lines: readonly Buffer[]): Promise<void> {
    const sock = createSocket(this.#o.host.includes(":") ? "udp6" : "udp4");
    try {
      for (const l of lines) {
        await new Promise<void>((resolve, reject) => {
          sock.send(l, this.#o.port, this.#o.host, (e) => (e === null ? resolve() : reject(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "syslog over UDP failed", { cause: e }))));
        });
      }
    } finally {
      sock.close();
    }
  }

  #drop(): void {
    this.#stream?.destroy();
    this.#stream = undefined;
  }

  #connected(): Promise<Socket | TLSSocket> {
    const current = this.#stream;
    if (current !== undefined && !current.destroyed && current.writable) return Promise.resolve(current);
    return new Promise((resolve, reject) => {
      const o = this.#o;
      const s =
        o.transport === "tls"
          ? tlsConnect({ host: o.host, port: o.port, servername: o.servername ?? o.host, ...(o.ca === undefined ? {} : { ca: o.ca }) })
          : netConnect({ host: o.host, port: o.port });
      const timer = setTimeout(() => fail(new Error("connect timeout")), o.timeoutMs);
      const fail = (e: unknown): void => {
        clearTimeout(timer);
        s.destroy();
        reject(new GatewayError("GW_UPSTREAM_UNAVAILABLE", `the syslog receiver ${o.host}:${o.port} could not be reached`, { cause: e }));
      };
      s.once("error", fail);
      s.once(o.transport === "tls" ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        s.off("error", fail);
        s.on("error", () => this.#drop());
        s.on("close", () => {
          if (this.#stream === s) this.#stream = undefined;
        });
        this.#stream = s;
        resolve(s);
      });
    });
  }

  close(): Promise<void> {
    const s = this.#stream;
    this.#stream = undefined;
    if (s === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      s.end(() => resolve());
      setTimeout(() => {
        s.destroy();
        resolve();
      }, 1000).unref();
    });
  }
}

// ---------------------------------------------------------------------------------------------

export interface OtlpSinkOptions {
  /** The collector's OTLP/HTTP logs endpoint, e.g. `http://collector:4318/v1/logs`. */
  readonly url: string;
  /** Extra request headers (API keys), secrets already resolved. */
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** `service.name` of the resource. */
  readonly serviceName: string;
  readonly serviceVersion: string;
}

/** OTLP AnyValue (opentelemetry/proto/common/v1/common.proto) in the protobuf JSON mapping. */
export type OtlpAnyValue =
  | { readonly stringValue: string }
  | { readonly boolValue: boolean }
  | { readonly intValue: string }
  | { readonly doubleValue: number }
  | { readonly arrayValue: { readonly values: readonly OtlpAnyValue[] } }
  | { readonly kvlistValue: { readonly values: readonly { readonly key: string; readonly value: OtlpAnyValue }[] } }
  | Record<string, never>;

/** A JSON value as an OTLP AnyValue: integers as `intValue` (int64, a string in JSON), objects as key-value lists. */
export function otlpValue(v: unknown, depth = 0): OtlpAnyValue {
  if (depth > 32) return { stringValue: "[too deep]" };
  if (v === null || v === undefined) return {};
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  if (typeof v === "number") return Number.isSafeInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map((x: unknown) => otlpValue(x, depth + 1)) } };
  if (typeof v === "object") {
    return { kvlistValue: { values: Object.entries(v as Record<string, unknown>).map(([key, value]) => ({ key, value: otlpValue(value, depth + 1) })) } };
  }
  // bigint, symbol, function: not JSON; named by type only.
  return { stringValue: `[${typeof v}]` };
}

/** Syslog severity (RFC 5424) → OTLP SeverityNumber (logs data model): warning → WARN (13), else INFO (9). */
function otlpSeverity(syslog: number): { readonly severityNumber: number; readonly severityText: string } {
  return syslog <= 4 ? { severityNumber: 13, severityText: "WARN" } : { severityNumber: 9, severityText: "INFO" };
}

/** The ExportLogsServiceRequest (protobuf JSON mapping) for one batch. */
export function otlpRequest(batch: readonly ExportedRecord[], o: Pick<OtlpSinkOptions, "serviceName" | "serviceVersion">, host = hostname()): unknown {
  const observed = `${BigInt(Date.now()) * 1_000_000n}`;
  return {
    resourceLogs: [
      {
        resource: {
          attributes: [
            { key: "service.name", value: { stringValue: o.serviceName } },
            { key: "service.version", value: { stringValue: o.serviceVersion } },
            { key: "host.name", value: { stringValue: host } },
          ],
        },
        scopeLogs: [
          {
            scope: { name: "airlock.audit", version: o.serviceVersion },
            logRecords: batch.map((r) => {
              const ms = Date.parse(r.time);
              const seq = r.body.seq;
              return {
                timeUnixNano: `${BigInt(Number.isFinite(ms) ? ms : Date.now()) * 1_000_000n}`,
                observedTimeUnixNano: observed,
                ...otlpSeverity(r.severity),
                eventName: `airlock.${r.msgid}`,
                body: otlpValue(r.body),
                attributes: [
                  { key: "airlock.event", value: { stringValue: r.msgid } },
                  ...(typeof seq === "number" ? [{ key: "airlock.seq", value: { intValue: String(seq) } }] : []),
                ],
              };
            }),
          },
        ],
      },
    ],
  };
}

/**
 * OpenTelemetry logs over OTLP/HTTP (the protobuf JSON encoding, `application/json`, which
 * every OTLP/HTTP receiver accepts): one ExportLogsServiceRequest per batch. A 2xx is a
 * delivery (a `partialSuccess` that rejects records is the receiver's final word about them:
 * resending the batch would not change it); anything else is retried by the exporter.
 */
export class OtlpSink implements Sink {
  readonly #o: OtlpSinkOptions;

  constructor(o: OtlpSinkOptions) {
    this.#o = o;
  }

  async deliver(batch: readonly ExportedRecord[]): Promise<void> {
    const body = JSON.stringify(otlpRequest(batch, this.#o));
    let res: Response;
    try {
      res = await fetch(this.#o.url, {
        method: "POST",
        headers: { ...this.#o.headers, "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
    } catch (e) {
      throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", "the OTLP collector could not be reached", { cause: e });
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.status < 200 || res.status > 299) throw new GatewayError("GW_UPSTREAM_UNAVAILABLE", `the OTLP collector answered ${res.status}`);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
