/**
 * What a client asks for in its StartupMessage besides user and database: session settings,
 * given as parameters of their own (node-postgres' `statement_timeout`) or inside `options`
 * (libpq's PGOPTIONS / `options='-c name=value'`, pgjdbc's and psycopg's `options`), and the
 * gateway's own `airlock.*` settings. Nothing here is dropped silently: every setting is either
 * forwarded to the target, consumed by the gateway, or refused with an error naming it.
 * (protocol-message-formats "StartupMessage"; runtime-config "Parameter Interaction via the
 * Shell": the server reads `options` as command-line switches, of which `-c name=value` and
 * `--name=value` set parameters.)
 */
import { GatewayError } from "../../core/errors.js";

/** Start-up parameters that are the protocol's or the gateway's, never session settings. */
const NOT_SETTINGS = new Set(["user", "database", "options", "replication"]);

/** Largest number of settings accepted in `options` (a real client sends a handful). */
const MAX_OPTION_SETTINGS = 64;

/**
 * Settings the gateway owns whatever the policies say:
 * - `standard_conforming_strings` is pinned on: the classifier reads string literals that way.
 * - `session_preload_libraries` / `local_preload_libraries` load code into the target's backend
 *   before any statement could be judged.
 * (`client_encoding` has its own check; `role` / `session_authorization` and the policies'
 * limits are the policy layer's, see isProtectedSetting in policy/sql-settings.ts.)
 */
const GATEWAY_OWNED = new Set(["standard_conforming_strings", "session_preload_libraries", "local_preload_libraries"]);

export interface StartupRequest {
  /** Settings to forward to the target (lower-cased names, `-` read as `_` as the server does). */
  readonly settings: ReadonlyMap<string, string>;
  /** `airlock.approval`, consumed by the gateway. */
  readonly approval?: "wait" | "async";
}

/**
 * The server's own splitting of `options` into arguments (pg_split_opts in
 * src/backend/utils/init/postinit.c): whitespace separates, a backslash makes the next
 * character literal (so `\ ` is a space inside an argument).
 */
export function splitOptions(options: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < options.length) {
    while (i < options.length && isSpace(options[i] ?? "")) i++;
    if (i >= options.length) break;
    let arg = "";
    let escaped = false;
    for (; i < options.length; i++) {
      const c = options[i] ?? "";
      if (isSpace(c) && !escaped) break;
      if (!escaped && c === "\\") {
        escaped = true;
        continue;
      }
      escaped = false;
      arg += c;
    }
    args.push(arg);
  }
  return args;
}

function isSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v";
}

/** `name=value` of `-c` / `--` (ParseLongOption: the name's dashes become underscores). */
function longOption(arg: string, how: string): [string, string] {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new GatewayError("GW_PROTOCOL", `options: ${how}${arg} requires a value (name=value)`);
  return [arg.slice(0, eq).replaceAll("-", "_").toLowerCase(), arg.slice(eq + 1)];
}

/** The settings in `options`, in order. Only `-c name=value` and `--name=value` set parameters. */
export function parseOptions(options: string): [string, string][] {
  const args = splitOptions(options);
  const out: [string, string][] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg.startsWith("--")) {
      out.push(longOption(arg.slice(2), "--"));
    } else if (arg === "-c") {
      const next = args[++i];
      if (next === undefined) throw new GatewayError("GW_PROTOCOL", "options: -c needs name=value after it");
      out.push(longOption(next, "-c "));
    } else if (arg.startsWith("-c")) {
      out.push(longOption(arg.slice(2), "-c "));
    } else {
      // The server's other switches (-B, -d, -e, -F, …) change settings the gateway would have
      // to model one by one; none is what drivers send.
      throw new GatewayError("GW_UNSUPPORTED", `options: ${JSON.stringify(arg.slice(0, 40))} is not supported through the gateway (use -c name=value or --name=value)`);
    }
    if (out.length > MAX_OPTION_SETTINGS) throw new GatewayError("GW_LIMIT", `options: more than ${MAX_OPTION_SETTINGS} settings`);
  }
  return out;
}

/** A setting name as the server would accept it (GUC names, with a dotted prefix for custom ones). */
const SETTING_NAME = /^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)*$/;

/**
 * Read a StartupMessage's settings: `options` first, then parameters of their own (the server
 * applies them in that order, so a parameter wins over the same setting in `options`).
 * Throws a GatewayError naming the setting for what cannot be forwarded; the caller decides
 * about policy-protected settings (they depend on the session).
 */
export function readStartupSettings(params: ReadonlyMap<string, string>): StartupRequest {
  const all: [string, string][] = [];
  const options = params.get("options");
  if (options !== undefined) all.push(...parseOptions(options));
  for (const [k, v] of params) {
    const name = k.toLowerCase();
    // `_pq_.*` are protocol options, answered by NegotiateProtocolVersion.
    if (NOT_SETTINGS.has(name) || name.startsWith("_pq_.")) continue;
    all.push([name, v]);
  }
  const settings = new Map<string, string>();
  let approval: "wait" | "async" | undefined;
  for (const [name, value] of all) {
    if (!SETTING_NAME.test(name)) throw new GatewayError("GW_PROTOCOL", `invalid setting name ${JSON.stringify(name.slice(0, 64))} at start-up`);
    if (name === "airlock.approval") {
      const v = value.trim().toLowerCase();
      if (v !== "wait" && v !== "async") throw new GatewayError("GW_UNSUPPORTED", "airlock.approval must be wait or async");
      approval = v;
      continue;
    }
    if (name.startsWith("airlock.")) throw new GatewayError("GW_UNSUPPORTED", `unknown gateway setting ${name} (the gateway knows airlock.approval)`);
    if (name === "client_encoding") {
      checkClientEncoding(value);
      continue; // the gateway asks the target for UTF8 itself
    }
    if (GATEWAY_OWNED.has(name)) {
      if (name === "standard_conforming_strings" && value.trim().toLowerCase() === "on") continue;
      throw new GatewayError("GW_POLICY_DENIED", `${name} is set by the gateway and cannot be changed at start-up`);
    }
    settings.set(name, value);
  }
  return approval === undefined ? { settings } : { settings, approval };
}

/**
 * The gateway decodes, judges and masks text as UTF-8, so client and target must both use
 * UTF8. Another client encoding is refused, never replaced behind the client's back (it would
 * send and expect bytes in that encoding). Names are compared as the server does
 * (pg_char_to_encoding ignores case and non-alphanumerics): UTF8, utf-8, UNICODE.
 */
export function checkClientEncoding(value: string): void {
  const key = value.toLowerCase().replace(/[^a-z0-9]/g, "");
  if (key === "utf8" || key === "unicode") return;
  throw new GatewayError(
    "GW_UNSUPPORTED",
    `client_encoding ${JSON.stringify(value.slice(0, 40))} is not supported: the gateway speaks UTF8 only (set client_encoding=UTF8, e.g. PGCLIENTENCODING=UTF8)`,
  );
}
