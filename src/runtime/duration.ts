import { GatewayError } from "../core/errors.js";

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parse `500ms`, `30s`, `15m`, `1h`, `7d`, or `1h30m` into milliseconds. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(trimmed); m !== null; m = re.exec(trimmed)) {
    const n = Number(m[1]);
    const unit = UNITS[m[2] ?? ""];
    if (unit === undefined) break;
    total += n * unit;
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== trimmed.length || !Number.isFinite(total)) {
    throw new GatewayError("GW_BAD_REQUEST", `invalid duration "${text}" (use e.g. 30s, 15m, 1h, 1h30m)`);
  }
  return Math.round(total);
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
