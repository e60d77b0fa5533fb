/**
 * The API server's answer when it refuses an upgrade (exec, attach, port-forward) instead of
 * switching protocols: its status and body, capped, passed on to the client as it came.
 */
import type { IncomingMessage } from "node:http";

/** At most this much of a refusal's body is kept. */
const MAX_ERROR_BODY = 64 * 1024;

export interface RefusedUpgrade {
  readonly ok: false;
  readonly status: number;
  readonly body: string;
}

export function refusedUpgrade(res: IncomingMessage): Promise<RefusedUpgrade> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    res.on("data", (c: Buffer) => {
      n += c.length;
      if (n <= MAX_ERROR_BODY) chunks.push(c);
    });
    res.on("end", () => resolve({ ok: false, status: res.statusCode ?? 502, body: Buffer.concat(chunks).toString("utf8") }));
    res.on("error", () => resolve({ ok: false, status: 502, body: "" }));
  });
}
