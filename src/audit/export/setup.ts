/**
 * The audit exporter from the `audit.sinks` configuration (used by runtime/gateway.ts): each
 * sink built with its secrets resolved, cursors under `<dataDir>/audit/sinks`.
 */
import type { Logger } from "pino";
import type { SecretRef } from "../../core/secret.js";
import type { Config } from "../../runtime/config.js";
import type { Store } from "../../store/types.js";
import { AuditExporter, type ExportSink } from "./exporter.js";
import { GATEWAY_VERSION } from "../../observability/version.js";
import { FileSink, OtlpSink, SyslogSink, WebhookSink, type Sink } from "./sinks.js";

type SinkConfig = Config["audit"]["sinks"][number];

async function sinkOf(c: SinkConfig, resolveSecret: (ref: SecretRef) => Promise<string>): Promise<Sink> {
  switch (c.type) {
    case "file":
      return new FileSink({ path: c.path, maxBytes: c.maxBytes, keep: c.keep });
    case "webhook":
      return new WebhookSink({ url: c.url, secret: await resolveSecret(c.secret), timeoutMs: c.timeout, headers: c.headers });
    case "syslog": {
      const ca = c.ca === undefined ? undefined : await resolveSecret(c.ca);
      return new SyslogSink({
        transport: c.transport,
        host: c.host,
        port: c.port,
        facility: c.facility,
        appName: c.appName,
        timeoutMs: c.timeout,
        ...(ca === undefined ? {} : { ca }),
        ...(c.servername === undefined ? {} : { servername: c.servername }),
      });
    }
    case "otlp": {
      const headers: Record<string, string> = {};
      for (const [k, ref] of Object.entries(c.headers)) headers[k] = await resolveSecret(ref);
      return new OtlpSink({ url: c.url, headers, timeoutMs: c.timeout, serviceName: c.serviceName, serviceVersion: GATEWAY_VERSION });
    }
  }
}

export async function createAuditExporter(
  audit: Config["audit"],
  deps: { readonly store: Store; readonly dir: string; readonly resolveSecret: (ref: SecretRef) => Promise<string>; readonly logger: Logger },
): Promise<AuditExporter> {
  const sinks: ExportSink[] = [];
  for (const c of audit.sinks) {
    const f = c.filter;
    sinks.push({
      name: c.name,
      filter: {
        ...(f.types === undefined ? {} : { types: f.types }),
        ...(f.decisions === undefined ? {} : { decisions: f.decisions }),
        ...(f.connections === undefined ? {} : { connections: f.connections }),
      },
      sink: await sinkOf(c, deps.resolveSecret),
      format: c.format,
    });
  }
  return new AuditExporter({ store: deps.store, dir: deps.dir, sinks, logger: deps.logger, headEveryMs: audit.headInterval });
}
