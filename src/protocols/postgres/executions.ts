/**
 * One result as it reaches the client (what was sent, masked, refused), and the pure helpers
 * of the proxy loop.
 */
import type { DenyDecision, MaskRule } from "../../core/decision.js";
import type { FieldAction, RuleMasker } from "./result-masking.js";

export interface ResultAcc {
  rowCount: number;
  rows: (string | null)[][];
  truncated: boolean;
  /** Rows of this result actually sent to the client. */
  sent: number;
  /** How each field is masked, once the fields are resolved. */
  actions?: FieldAction[] | undefined;
  /** The fields were resolved and `actions` decided. */
  planned?: boolean;
  /** COPY out in progress: text (0) or binary (1) format. */
  copyFormat?: number | undefined;
  /** The result is refused: rows are dropped and its completion becomes this refusal. */
  refused?: DenyDecision | undefined;
  /** maxRows was exceeded and a cancel was sent. */
  cancelled?: boolean;
  masked: Record<string, number>;
}

export function newResult(): ResultAcc {
  return { rowCount: 0, rows: [], truncated: false, sent: 0, masked: {} };
}

export const EMPTY = Buffer.alloc(0);

/** Replace the row count in a command tag (`SELECT 5000` → `SELECT 100`). */
export function tagWithRows(tag: string, rows: number): string {
  const i = tag.lastIndexOf(" ");
  return i > 0 && /^\d+$/.test(tag.slice(i + 1)) ? `${tag.slice(0, i)} ${rows}` : tag;
}

/**
 * Mask one line of COPY text/CSV output. Fields are masked one by one (tab-separated text
 * format) so that the null strategy can emit `\N`; CSV lines are masked as a whole. The
 * replacement tokens contain no tab, newline, quote or backslash, so the line stays valid.
 */
export function maskCopyLine(line: string, rules: readonly MaskRule[], maskerFor: (r: MaskRule) => RuleMasker, counts: Record<string, number>): string | undefined {
  const detectors = rules.filter((r) => r.detectors.length > 0).map(maskerFor);
  if (detectors.length === 0) return undefined;
  const nl = line.endsWith("\n") ? "\n" : "";
  const body = nl === "" ? line : line.slice(0, -1);
  const state = { changed: false };
  const fields = body.split("\t").map((field) => {
    let current: string | null = field;
    for (const m of detectors) {
      if (current === null) break;
      const r = m.maskText(current);
      if (r === undefined) continue;
      current = r.value;
      for (const [k, n] of Object.entries(r.counts)) counts[k] = (counts[k] ?? 0) + n;
    }
    if (current !== field) state.changed = true;
    return current === null ? "\\N" : current;
  });
  return state.changed ? fields.join("\t") + nl : undefined;
}

/** A value as text for the recording: text format as UTF-8, binary as `\x` hex; capped. */
export function renderValue(v: Buffer, format: number, maxBytes: number): string {
  if (format === 1) {
    const shown = v.subarray(0, Math.floor(maxBytes / 2));
    return `\\x${shown.toString("hex")}${shown.length < v.length ? "…" : ""}`;
  }
  if (v.length <= maxBytes) return v.toString("utf8");
  return `${v.subarray(0, maxBytes).toString("utf8")}…`;
}
