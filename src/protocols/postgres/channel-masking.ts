/**
 * Masking of the channels that are not result rows (pure: no I/O): the target's ErrorResponse
 * and NoticeResponse fields, NotificationResponse payloads (LISTEN/NOTIFY, `pg_notify`) and
 * FunctionCallResponse values (the fastpath interface: `loread` returns a large object's bytes).
 * The same content detectors as the rows run over them (one MaskChain of the rules' maskers).
 *
 * Column rules cannot be applied to these channels by origin (an error has no column), but an
 * error can echo a value of a column no detector recognizes (`select password::int from users`
 * → `invalid input syntax for type integer: "hunter2"`). When the statement reads a column a
 * column rule covers (ResultPlan.redactEchoes), the value-echoing parts of its errors and
 * notices are redacted whatever they hold:
 * - M (message): PostgreSQL quotes the values it echoes (`"%s"`); everything from the first
 *   quote to the last one becomes `"[REDACTED]"` (a value may itself hold quotes, so the span
 *   is taken greedily);
 * - D (detail: `Failing row contains (…)`, `Key (email)=(…) already exists`, a JSON token),
 *   W (context/where: `JSON data, line 1: …`, a PL/pgSQL `SQL statement "…"`) and q (internal
 *   query text): replaced whole.
 * Fields that never carry data pass untouched: S/V severity, C SQLSTATE, P/p positions, F/L/R
 * the server's source location.
 *
 * Limits (detectors still apply in each case): a value a function or DO block reads internally
 * and raises or casts (the statement does not name the column); a view over a covered column
 * when no column or relation guard makes the policy layer resolve views; notices the target
 * sends during login, before any rule is known (upstream.ts passes them on).
 * (protocol-error-fields; protocol-message-formats ErrorResponse, NoticeResponse,
 * NotificationResponse, FunctionCallResponse.)
 */
import type { MaskChain } from "../../masking/index.js";
import {
  BackendType as B,
  decodeErrorOrNotice,
  decodeFunctionCallResponse,
  decodeNotification,
  encodeErrorOrNoticeFields,
  encodeFunctionCallResponse,
  encodeNotification,
} from "./wire/index.js";

/** Error/notice fields that are structure, never data: left as the target sent them. */
const FIXED_FIELDS = new Set(["S", "V", "C", "P", "p", "F", "L", "R"]);
/** Fields replaced whole when the statement reads a column a column rule covers. */
const ECHO_FIELDS = new Set(["D", "W", "q"]);
/** What a redacted echo shows. */
export const ECHO_REDACTED = "[REDACTED]";
/** The count key redacted echoes are recorded under. */
export const ECHO_COUNT_KEY = "column:echo";

/**
 * Redact the quoted part of a message: from the first `"` or `'` to the last one. A message with
 * a single quote loses everything after it. No quote: unchanged (returns undefined).
 */
export function redactQuoted(message: string): string | undefined {
  let first = -1;
  let last = -1;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c === 0x22 || c === 0x27) {
      if (first < 0) first = i;
      last = i;
    }
  }
  if (first < 0) return undefined;
  const tail = last > first ? message.slice(last + 1) : "";
  return `${message.slice(0, first)}"${ECHO_REDACTED}"${tail}`;
}

export interface ChannelMasking {
  /** The detectors of the rules that apply (undefined or empty: none). */
  readonly chain: MaskChain | undefined;
  /** The statement reads a column a column rule covers: redact what may echo its values. */
  readonly redactEchoes: boolean;
}

function maskText(chain: MaskChain | undefined, text: string, counts: Record<string, number>): string | undefined {
  if (chain === undefined || chain.empty || text === "") return undefined;
  return chain.line(text, counts);
}

/**
 * An ErrorResponse or NoticeResponse body, masked: the whole new message, or undefined when
 * nothing changed (the original bytes are forwarded). A malformed body throws GW_PROTOCOL.
 */
export function maskErrorOrNotice(type: typeof B.ErrorResponse | typeof B.NoticeResponse, body: Buffer, how: ChannelMasking, counts: Record<string, number>): Buffer | undefined {
  const decoded = decodeErrorOrNotice(body);
  let changed = false;
  const out = new Map<string, string>();
  for (const [t, value] of decoded.fields) {
    let v = value;
    if (!FIXED_FIELDS.has(t)) {
      if (how.redactEchoes && ECHO_FIELDS.has(t) && v !== "") {
        v = ECHO_REDACTED;
        counts[ECHO_COUNT_KEY] = (counts[ECHO_COUNT_KEY] ?? 0) + 1;
      } else {
        if (how.redactEchoes && t === "M") {
          const r = redactQuoted(v);
          if (r !== undefined) {
            v = r;
            counts[ECHO_COUNT_KEY] = (counts[ECHO_COUNT_KEY] ?? 0) + 1;
          }
        }
        const m = maskText(how.chain, v, counts);
        if (m !== undefined) v = m;
      }
    }
    if (v !== value) changed = true;
    out.set(t, v);
  }
  return changed ? encodeErrorOrNoticeFields(type, out) : undefined;
}

/** A NotificationResponse body with its payload (and channel name) masked, or undefined when clean. */
export function maskNotification(body: Buffer, chain: MaskChain | undefined, counts: Record<string, number>): Buffer | undefined {
  const n = decodeNotification(body);
  const payload = maskText(chain, n.payload, counts);
  const channel = maskText(chain, n.channel, counts);
  if (payload === undefined && channel === undefined) return undefined;
  return encodeNotification(n.processId, channel ?? n.channel, payload ?? n.payload);
}

/**
 * A FunctionCallResponse body with its value masked by content (the bytes as UTF-8 text, e.g. a
 * large object read by `loread`), or undefined when clean. Strategy `null` gives a NULL result.
 */
export function maskFunctionResult(body: Buffer, chain: MaskChain | undefined, counts: Record<string, number>): Buffer | undefined {
  const value = decodeFunctionCallResponse(body);
  if (value === null || chain === undefined || chain.empty) return undefined;
  const masked = chain.range(value, 0, value.length, counts);
  if (masked === undefined) return undefined;
  return encodeFunctionCallResponse(masked);
}
