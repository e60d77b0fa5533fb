import { describe, expect, it } from "vitest";
import { GatewayMetrics } from "./metrics.js";

function value(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe("GatewayMetrics", () => {
  it("counts sessions, statements, auth failures, bytes and audit records", async () => {
    const m = new GatewayMetrics();
    m.sessionOpened("postgres");
    m.sessionOpened("postgres");
    m.sessionClosed("postgres", "client_closed");
    m.sessionDenied("postgres");
    m.statement("postgres", "allow");
    m.statement("postgres", "allow");
    m.statement("postgres", "deny");
    m.authFailure("postgres", "GW_AUTH_EXPIRED");
    m.bytes("postgres", "from_client", 100);
    m.bytes("postgres", "from_client", 23);
    m.bytes("postgres", "to_client", 0);
    m.auditRecords(3);
    m.auditWriteError();
    m.upstreamConnected("postgres", 0.003);
    const text = await m.render();
    expect(value(text, 'airlock_sessions_active{protocol="postgres"}')).toBe(1);
    expect(value(text, 'airlock_sessions_total{protocol="postgres",outcome="client_closed"}')).toBe(1);
    expect(value(text, 'airlock_sessions_total{protocol="postgres",outcome="denied"}')).toBe(1);
    expect(value(text, 'airlock_statements_total{protocol="postgres",decision="allow"}')).toBe(2);
    expect(value(text, 'airlock_statements_total{protocol="postgres",decision="deny"}')).toBe(1);
    expect(value(text, 'airlock_auth_failures_total{protocol="postgres",code="GW_AUTH_EXPIRED"}')).toBe(1);
    expect(value(text, 'airlock_bytes_total{protocol="postgres",direction="from_client"}')).toBe(123);
    expect(value(text, 'airlock_bytes_total{protocol="postgres",direction="to_client"}')).toBeUndefined();
    expect(value(text, "airlock_audit_records_total")).toBe(3);
    expect(value(text, "airlock_audit_write_errors_total")).toBe(1);
    expect(value(text, 'airlock_upstream_connect_seconds_count{protocol="postgres"}')).toBe(1);
    expect(value(text, 'airlock_upstream_connect_seconds_bucket{le="0.005",protocol="postgres"}')).toBe(1);
    expect(value(text, 'airlock_upstream_connect_seconds_bucket{le="0.0025",protocol="postgres"}')).toBe(0);
    expect(m.contentType).toContain("text/plain");
    await m.close();
  });

  it("keeps two instances independent (own registry, not the global one)", async () => {
    const a = new GatewayMetrics();
    const b = new GatewayMetrics();
    a.statement("postgres", "deny");
    expect(value(await a.render(), 'airlock_statements_total{protocol="postgres",decision="deny"}')).toBe(1);
    expect(value(await b.render(), 'airlock_statements_total{protocol="postgres",decision="deny"}')).toBeUndefined();
    await a.close();
    await b.close();
  });
});
