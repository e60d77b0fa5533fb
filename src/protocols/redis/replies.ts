/**
 * Redis replies on the way back (pure): masked by the plan of the command that produced them,
 * and rendered as short text for the recording. The masking library decides what a value
 * holds; here only RESP's shapes are walked.
 *
 * - Detector rules run over every string a reply carries: bulk and verbatim strings, simple
 *   strings, errors (an error can echo a value), map keys and values, nested aggregates, pushes.
 * - Whole-value rules (a `mask` policy matching keys or commands with no detectors) replace
 *   every bulk/verbatim string of the reply: the values of what it matched. Field names stay
 *   readable where the shape says which strings are names: RESP3 map keys, and the even
 *   positions of a RESP2 field/value list (HGETALL, HRANDFIELD … WITHVALUES, CONFIG GET).
 * - Under a whole-value rule, numbers are values too (GETBIT, BITFIELD, ZSCORE in RESP3, INCR's
 *   new value, LCS … LEN): they become nulls, except the replies of commands whose numbers
 *   describe structure, not content (EXISTS, TTL, DEL, LLEN, …).
 * - Strategy `null` turns a bulk string into a null (`$-1`, RESP3 `_`).
 */
import type { MaskRule } from "../../core/decision.js";
import { MaskChain, NULL_IN_TEXT, type RuleMasker } from "../../masking/index.js";
import type { RespValue } from "./wire/resp.js";

export interface ReplyPlan {
  readonly detect: MaskChain | undefined;
  /** The first whole-value rule and its masker. */
  readonly whole: { readonly rule: string; readonly masker: RuleMasker; readonly countKey: string } | undefined;
}

export function replyPlan(masks: readonly MaskRule[], maskerFor: (rule: MaskRule) => RuleMasker): ReplyPlan | undefined {
  if (masks.length === 0) return undefined;
  const wholeRule = masks.find((m) => m.columns.length > 0);
  const detectors = masks.filter((m) => m.columns.length === 0 && m.detectors.length > 0);
  return {
    detect: detectors.length === 0 ? undefined : new MaskChain(detectors.map(maskerFor)),
    whole: wholeRule === undefined ? undefined : { rule: wholeRule.rule, masker: maskerFor(wholeRule), countKey: `key:${wholeRule.rule}` },
  };
}

/** Commands whose numeric replies describe a key's structure or a write's count, not its content. */
const STRUCTURAL = new Set([
  "exists", "type", "ttl", "pttl", "expiretime", "pexpiretime", "expire", "pexpire", "expireat", "pexpireat", "persist",
  "del", "unlink", "touch", "strlen", "llen", "hlen", "scard", "zcard", "xlen", "hexists", "hstrlen", "sismember", "smismember",
  "object|encoding", "object|refcount", "object|idletime", "object|freq", "memory|usage", "dbsize", "wait", "publish",
  "set", "mset", "msetnx", "setnx", "hset", "hsetnx", "lpush", "rpush", "sadd", "zadd", "srem", "hdel", "lrem", "zrem", "xadd", "xdel", "xtrim",
]);

/** Commands whose RESP2 array reply alternates field names and values. */
const FIELD_VALUE_REPLIES = new Set(["hgetall", "hrandfield", "config|get"]);

export interface MaskContext {
  readonly resp3: boolean;
  /** The command (lower case, `container|sub`) whose reply this is. */
  readonly command: string;
  /** Numbers are masked too (a whole-value rule, a command whose numbers can be content). */
  readonly numbers?: boolean;
}

/** The masked reply, or undefined when nothing changed. Adds counts per kind. */
export function maskReply(v: RespValue, plan: ReplyPlan, ctx: MaskContext, counts: Record<string, number>): RespValue | undefined {
  const names = FIELD_VALUE_REPLIES.has(ctx.command);
  const numbers = plan.whole !== undefined && !STRUCTURAL.has(ctx.command);
  return walk(v, plan, { ...ctx, numbers }, counts, 0, names, false);
}

function nullValue(ctx: MaskContext): RespValue {
  return ctx.resp3 ? { type: "null" } : { type: "bulk", value: null };
}

function maskString(b: Buffer, plan: ReplyPlan, counts: Record<string, number>, isName: boolean): Buffer | null | undefined {
  if (plan.whole !== undefined && !isName) {
    counts[plan.whole.countKey] = (counts[plan.whole.countKey] ?? 0) + 1;
    const text = b.toString("utf8");
    const out = plan.whole.masker.maskWhole(text, plan.whole.masker.kindOf(text));
    return out === null ? null : Buffer.from(out, "utf8");
  }
  return plan.detect?.range(b, 0, b.length, counts);
}

function maskLine(s: string, plan: ReplyPlan, counts: Record<string, number>): string | undefined {
  const r = plan.detect?.text(s, counts);
  return r === null ? NULL_IN_TEXT : r;
}

function walk(v: RespValue, plan: ReplyPlan, ctx: MaskContext, counts: Record<string, number>, depth: number, fieldValue: boolean, isName: boolean): RespValue | undefined {
  switch (v.type) {
    case "bulk": {
      if (v.value === null) return undefined;
      const out = maskString(v.value, plan, counts, isName);
      if (out === undefined) return undefined;
      return out === null ? nullValue(ctx) : { type: "bulk", value: out };
    }
    case "verbatim": {
      const out = maskString(v.value, plan, counts, isName);
      if (out === undefined) return undefined;
      return out === null ? nullValue(ctx) : { type: "verbatim", format: v.format, value: out };
    }
    case "bulkError": {
      const out = plan.detect?.range(v.value, 0, v.value.length, counts);
      if (out === undefined) return undefined;
      return { type: "bulkError", value: out ?? Buffer.from(NULL_IN_TEXT) };
    }
    case "simple": {
      const out = maskLine(v.value, plan, counts);
      return out === undefined ? undefined : { type: "simple", value: out };
    }
    case "error": {
      const out = maskLine(v.value, plan, counts);
      return out === undefined ? undefined : { type: "error", value: out };
    }
    case "integer":
    case "double":
    case "bignum":
      if (ctx.numbers !== true || plan.whole === undefined) return undefined;
      counts[plan.whole.countKey] = (counts[plan.whole.countKey] ?? 0) + 1;
      return nullValue(ctx);
    case "null":
    case "boolean":
      return undefined;
    case "array": {
      if (v.value === null) return undefined;
      const out = walkList(v.value, plan, ctx, counts, depth, fieldValue && depth === 0);
      return out === undefined ? undefined : { type: "array", value: out };
    }
    case "set": {
      const out = walkList(v.value, plan, ctx, counts, depth, false);
      return out === undefined ? undefined : { type: "set", value: out };
    }
    case "push": {
      const out = walkList(v.value, plan, ctx, counts, depth, false);
      return out === undefined ? undefined : { type: "push", value: out };
    }
    case "map": {
      const out = walkPairs(v.value, plan, ctx, counts, depth);
      return out === undefined ? undefined : { type: "map", value: out };
    }
    case "attribute": {
      const attributes = walkPairs(v.attributes, plan, ctx, counts, depth);
      const value = walk(v.value, plan, ctx, counts, depth + 1, fieldValue, isName);
      if (attributes === undefined && value === undefined) return undefined;
      return { type: "attribute", attributes: attributes ?? v.attributes, value: value ?? v.value };
    }
  }
}

function walkList(items: readonly RespValue[], plan: ReplyPlan, ctx: MaskContext, counts: Record<string, number>, depth: number, fieldValue: boolean): RespValue[] | undefined {
  let out: RespValue[] | undefined;
  items.forEach((item, i) => {
    const m = walk(item, plan, ctx, counts, depth + 1, false, fieldValue && i % 2 === 0);
    if (m === undefined) return;
    out ??= [...items];
    out[i] = m;
  });
  return out;
}

function walkPairs(
  pairs: readonly (readonly [RespValue, RespValue])[],
  plan: ReplyPlan,
  ctx: MaskContext,
  counts: Record<string, number>,
  depth: number,
): [RespValue, RespValue][] | undefined {
  let out: [RespValue, RespValue][] | undefined;
  pairs.forEach(([k, x], i) => {
    const mk = walk(k, plan, ctx, counts, depth + 1, false, true);
    const mx = walk(x, plan, ctx, counts, depth + 1, false, false);
    if (mk === undefined && mx === undefined) return;
    out ??= pairs.map(([a, b]) => [a, b]);
    out[i] = [mk ?? k, mx ?? x];
  });
  return out;
}

/** Short text of a reply for the recording (redis-cli-like), at most `max` characters. */
export function previewReply(v: RespValue, max: number): string {
  const parts: string[] = [];
  let size = 0;
  const add = (s: string): boolean => {
    parts.push(s);
    size += s.length;
    return size < max;
  };
  const quote = (b: Buffer): string => JSON.stringify(b.toString("utf8"));
  const go = (x: RespValue): boolean => {
    switch (x.type) {
      case "simple":
        return add(x.value);
      case "error":
        return add(`(error) ${x.value}`);
      case "integer":
        return add(`(integer) ${x.value.toString()}`);
      case "bulk":
        return add(x.value === null ? "(nil)" : quote(x.value));
      case "verbatim":
        return add(quote(x.value));
      case "bulkError":
        return add(`(error) ${x.value.toString("utf8")}`);
      case "null":
        return add("(nil)");
      case "boolean":
        return add(x.value ? "(true)" : "(false)");
      case "double":
        return add(`(double) ${x.value}`);
      case "bignum":
        return add(`(big number) ${x.value}`);
      case "array":
      case "set":
      case "push": {
        if (x.value === null) return add("(nil)");
        if (!add(x.type === "push" ? ">[" : "[")) return false;
        for (let i = 0; i < x.value.length; i++) {
          if (i > 0 && !add(", ")) return false;
          const item = x.value[i];
          if (item !== undefined && !go(item)) return false;
        }
        return add("]");
      }
      case "map":
        if (!add("{")) return false;
        for (let i = 0; i < x.value.length; i++) {
          const pair = x.value[i];
          if (pair === undefined) continue;
          if ((i > 0 && !add(", ")) || !go(pair[0]) || !add(": ") || !go(pair[1])) return false;
        }
        return add("}");
      case "attribute":
        return go(x.value);
    }
  };
  go(v);
  const text = parts.join("");
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** How many elements a reply has, for the recording's row count (1 for a scalar, 0 for nil). */
export function replySize(v: RespValue): number {
  switch (v.type) {
    case "array":
      return v.value === null ? 0 : v.value.length;
    case "set":
    case "push":
    case "map":
      return v.value.length;
    case "null":
      return 0;
    case "bulk":
      return v.value === null ? 0 : 1;
    case "attribute":
      return replySize(v.value);
    case "simple":
    case "error":
    case "integer":
    case "verbatim":
    case "bulkError":
    case "boolean":
    case "double":
    case "bignum":
      return 1;
  }
}
