/**
 * Which keys a Redis command touches, from the target's own command table (`COMMAND`), so that
 * the answer is the server's, version for version, module commands included. Pure: the table
 * is built from a COMMAND reply; no I/O.
 *
 * Redis 7 describes keys with key specifications (redis.io/docs/reference/key-specs): where to
 * begin searching (an argument index, or after a keyword) and how to find keys from there (a
 * range, or a count argument). `keysOf` runs the same algorithm redis-server runs
 * (db.c getKeysUsingKeySpecs). A spec flagged `incomplete` (SORT … BY/GET patterns, MIGRATE's
 * empty-key form) or a command known only by Redis 6's legacy first/last/step with `movablekeys`
 * makes the answer `complete: false`: policies about keys then fail closed.
 * Container commands (`OBJECT ENCODING`, `XINFO STREAM`, `CONFIG GET`) are resolved to their
 * subcommand (`object|encoding`), which carries the key specs.
 */
import type { RespValue } from "./wire/resp.js";

type BeginSearch = { readonly kind: "index"; readonly pos: number } | { readonly kind: "keyword"; readonly keyword: string; readonly startfrom: number } | { readonly kind: "unknown" };
type FindKeys =
  | { readonly kind: "range"; readonly lastkey: number; readonly keystep: number; readonly limit: number }
  | { readonly kind: "keynum"; readonly keynumidx: number; readonly firstkey: number; readonly keystep: number }
  | { readonly kind: "unknown" };

export interface KeySpec {
  readonly begin: BeginSearch;
  readonly find: FindKeys;
  readonly incomplete: boolean;
}

export interface CommandSpec {
  /** Lower case; a subcommand as `container|sub`. */
  readonly name: string;
  readonly arity: number;
  readonly flags: ReadonlySet<string>;
  readonly legacy: { readonly first: number; readonly last: number; readonly step: number };
  /** Undefined for servers before Redis 7 (no key specs). */
  readonly keySpecs?: readonly KeySpec[];
  readonly subcommands: ReadonlyMap<string, CommandSpec>;
}

export interface CommandKeys {
  /** The command's name as judged: lower case, `container|sub` for a subcommand. */
  readonly name: string;
  readonly keys: readonly Buffer[];
  /** False when the server's table cannot say every key (incomplete spec, legacy movable keys). */
  readonly complete: boolean;
  /** Flags from the server's table (`write`, `readonly`, `admin`, `pubsub`, `blocking`, …). */
  readonly flags: ReadonlySet<string>;
  /** The server's table does not have this command (it will refuse it, or it is new to us). */
  readonly unknown: boolean;
}

function text(v: RespValue | undefined): string | undefined {
  if (v === undefined) return undefined;
  switch (v.type) {
    case "simple":
    case "error":
      return v.value;
    case "bulk":
      return v.value?.toString("utf8");
    case "verbatim":
      return v.value.toString("utf8");
    case "integer":
      return v.value.toString();
    case "array":
    case "null":
    case "boolean":
    case "double":
    case "bignum":
    case "bulkError":
    case "map":
    case "set":
    case "push":
    case "attribute":
      return undefined;
  }
}

function num(v: RespValue | undefined): number {
  if (v?.type === "integer") return Number(v.value);
  const t = text(v);
  return t === undefined ? 0 : Number(t);
}

function list(v: RespValue | undefined): readonly RespValue[] {
  if (v === undefined) return [];
  if ((v.type === "array" && v.value !== null) || v.type === "set" || v.type === "push") return v.value ?? [];
  return [];
}

/** A RESP3 map, or a RESP2 flat array of key/value pairs, as an object of its text keys. */
function record(v: RespValue | undefined): Map<string, RespValue> {
  const out = new Map<string, RespValue>();
  if (v === undefined) return out;
  if (v.type === "map") {
    for (const [k, x] of v.value) {
      const key = text(k);
      if (key !== undefined) out.set(key, x);
    }
    return out;
  }
  const items = list(v);
  for (let i = 0; i + 1 < items.length; i += 2) {
    const key = text(items[i]);
    const x = items[i + 1];
    if (key !== undefined && x !== undefined) out.set(key, x);
  }
  return out;
}

function keySpec(v: RespValue): KeySpec {
  const r = record(v);
  const flags = new Set(list(r.get("flags")).map((f) => (text(f) ?? "").toLowerCase()));
  const bs = record(r.get("begin_search"));
  const bsSpec = record(bs.get("spec"));
  let begin: BeginSearch = { kind: "unknown" };
  if (text(bs.get("type")) === "index") begin = { kind: "index", pos: num(bsSpec.get("index")) };
  else if (text(bs.get("type")) === "keyword") begin = { kind: "keyword", keyword: text(bsSpec.get("keyword")) ?? "", startfrom: num(bsSpec.get("startfrom")) };
  const fk = record(r.get("find_keys"));
  const fkSpec = record(fk.get("spec"));
  let find: FindKeys = { kind: "unknown" };
  if (text(fk.get("type")) === "range") find = { kind: "range", lastkey: num(fkSpec.get("lastkey")), keystep: num(fkSpec.get("keystep")), limit: num(fkSpec.get("limit")) };
  else if (text(fk.get("type")) === "keynum") find = { kind: "keynum", keynumidx: num(fkSpec.get("keynumidx")), firstkey: num(fkSpec.get("firstkey")), keystep: num(fkSpec.get("keystep")) };
  return { begin, find, incomplete: flags.has("incomplete") };
}

function commandSpec(v: RespValue): CommandSpec | undefined {
  const a = list(v);
  const name = text(a[0])?.toLowerCase();
  if (name === undefined || name === "") return undefined;
  const flags = new Set(list(a[2]).map((f) => (text(f) ?? "").toLowerCase()));
  const subcommands = new Map<string, CommandSpec>();
  for (const s of list(a[9])) {
    const sub = commandSpec(s);
    if (sub !== undefined) subcommands.set(sub.name.slice(sub.name.indexOf("|") + 1), sub);
  }
  const specs = a[8];
  return {
    name,
    arity: num(a[1]),
    flags,
    legacy: { first: num(a[3]), last: num(a[4]), step: num(a[5]) },
    ...(specs === undefined ? {} : { keySpecs: list(specs).map(keySpec) }),
    subcommands,
  };
}

/** The target's command table, from its answer to `COMMAND`. */
export class CommandTable {
  readonly #commands = new Map<string, CommandSpec>();

  constructor(reply: RespValue) {
    for (const c of list(reply)) {
      const spec = commandSpec(c);
      if (spec !== undefined) this.#commands.set(spec.name, spec);
    }
  }

  get size(): number {
    return this.#commands.size;
  }

  /** The spec of `args` (resolving a container's subcommand), or undefined when unknown. */
  specOf(args: readonly Buffer[]): CommandSpec | undefined {
    const name = args[0]?.toString("latin1").toLowerCase();
    if (name === undefined) return undefined;
    const top = this.#commands.get(name);
    if (top === undefined || top.subcommands.size === 0) return top;
    const sub = args[1]?.toString("latin1").toLowerCase();
    return (sub === undefined ? undefined : top.subcommands.get(sub)) ?? top;
  }

  keysOf(args: readonly Buffer[]): CommandKeys {
    const spec = this.specOf(args);
    const raw = args[0]?.toString("latin1").toLowerCase() ?? "";
    if (spec === undefined) return { name: raw, keys: [], complete: false, flags: new Set(), unknown: true };
    const { keys, complete } = keysBySpec(spec, args);
    return { name: spec.name, keys, complete, flags: spec.flags, unknown: false };
  }
}

/** db.c getKeysUsingKeySpecs, and the legacy first/last/step before Redis 7. */
export function keysBySpec(spec: CommandSpec, argv: readonly Buffer[]): { keys: Buffer[]; complete: boolean } {
  const argc = argv.length;
  const keys: Buffer[] = [];
  if (spec.keySpecs === undefined) {
    const { first, last, step } = spec.legacy;
    if (first > 0 && step > 0) {
      const end = last < 0 ? argc + last : last;
      for (let i = first; i <= end && i < argc; i += step) keys.push(argv[i] ?? Buffer.alloc(0));
    }
    return { keys, complete: !spec.flags.has("movablekeys") };
  }
  let complete = true;
  for (const ks of spec.keySpecs) {
    if (ks.incomplete) complete = false;
    let first = 0;
    if (ks.begin.kind === "index") {
      first = ks.begin.pos;
    } else if (ks.begin.kind === "keyword") {
      const startIndex = ks.begin.startfrom > 0 ? ks.begin.startfrom : argc + ks.begin.startfrom;
      const endIndex = ks.begin.startfrom > 0 ? argc - 1 : 0;
      const kw = ks.begin.keyword.toLowerCase();
      for (let i = startIndex; i !== endIndex; i = startIndex <= endIndex ? i + 1 : i - 1) {
        if (i >= argc || i < 1) break;
        if (argv[i]?.toString("latin1").toLowerCase() === kw) {
          first = i + 1;
          break;
        }
      }
      if (first === 0) continue; // keyword absent: this spec names no key
    } else {
      complete = false;
      continue;
    }
    let last: number;
    let step: number;
    if (ks.find.kind === "range") {
      if (ks.find.lastkey >= 0) last = first + ks.find.lastkey;
      else if (ks.find.limit === 0) last = argc + ks.find.lastkey;
      else last = first + (Math.floor((argc - first) / ks.find.limit) + ks.find.lastkey);
      step = ks.find.keystep;
    } else if (ks.find.kind === "keynum") {
      const idx = first + ks.find.keynumidx;
      const n = idx < argc ? Number(argv[idx]?.toString("latin1")) : NaN;
      // An invalid count: the server refuses the command itself (no key is reached).
      if (!Number.isSafeInteger(n) || n < 0) continue;
      first += ks.find.firstkey;
      last = first + n - 1;
      step = ks.find.keystep;
    } else {
      complete = false;
      continue;
    }
    if (step <= 0) {
      complete = false;
      continue;
    }
    for (let i = first; i <= last; i += step) {
      // Too few arguments: the server refuses the command (arity or syntax error).
      if (i >= argc || i < first) break;
      keys.push(argv[i] ?? Buffer.alloc(0));
    }
  }
  return { keys, complete };
}

/**
 * A `COMMAND` reply as `redis-cli --json COMMAND` prints it (strings, integers, arrays, objects
 * for RESP3 maps) back as the reply value, so a saved table judges like the live one.
 */
export function respFromJson(v: unknown): RespValue {
  if (v === null || v === undefined) return { type: "null" };
  if (typeof v === "string") return { type: "bulk", value: Buffer.from(v, "utf8") };
  if (typeof v === "number") return Number.isInteger(v) ? { type: "integer", value: BigInt(v) } : { type: "double", value: String(v) };
  if (typeof v === "boolean") return { type: "boolean", value: v };
  if (Array.isArray(v)) return { type: "array", value: v.map(respFromJson) };
  if (typeof v === "object") return { type: "map", value: Object.entries(v).map(([k, x]) => [{ type: "bulk", value: Buffer.from(k, "utf8") }, respFromJson(x)] as const) };
  return { type: "null" };
}
