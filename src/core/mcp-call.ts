/**
 * The text form of an MCP tool call (issue 16, gateway half): `TOOL {"json":"arguments"}`, the
 * way audit records, recordings and approvers show it and the way check_policy / the console's
 * "try it" accept it. The arguments are serialized with sorted keys, so two calls with the same
 * arguments have one text (an async approval is bound to it), and capped for people.
 */
import { GatewayError } from "./errors.js";

const MAX_TEXT = 16 * 1024;
const MAX_DEPTH = 64;

/** JSON.stringify answers undefined for undefined, functions and symbols (its types say string). */
const stringify: (value: unknown) => string | undefined = JSON.stringify;

/** A JSON text for any value: `null` where JSON has none. */
export function jsonOrNull(value: unknown): string {
  return stringify(value) ?? "null";
}

/** JSON with object keys sorted at every level; bounded in depth. */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > MAX_DEPTH) throw new GatewayError("GW_LIMIT", "the arguments nest too deeply");
  if (Array.isArray(value)) return `[${value.map((v: unknown) => canonicalJson(v, depth + 1)).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k], depth + 1)}`);
    return `{${entries.join(",")}}`;
  }
  return jsonOrNull(value);
}

/** `tool {"a":1}` for people, capped (the cap is marked). */
export function mcpCallText(tool: string, args: Readonly<Record<string, unknown>>): string {
  const text = `${tool} ${canonicalJson(args)}`;
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT)}… (${text.length} characters)`;
}

/** Parse `tool {json}` (or a bare tool name). Throws GW_BAD_REQUEST naming the problem. */
export function parseMcpCallText(text: string): { readonly tool: string; readonly arguments: Readonly<Record<string, unknown>> } {
  const t = text.trim();
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(t);
  const tool = m?.[1];
  if (tool === undefined || tool.length > 200) throw new GatewayError("GW_BAD_REQUEST", 'expected a tool call as TOOL {"argument": "value"}');
  const rest = m?.[2]?.trim() ?? "";
  if (rest === "") return { tool, arguments: {} };
  let args: unknown;
  try {
    args = JSON.parse(rest);
  } catch {
    throw new GatewayError("GW_BAD_REQUEST", "the arguments after the tool name must be a JSON object");
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) throw new GatewayError("GW_BAD_REQUEST", "the arguments after the tool name must be a JSON object");
  return { tool, arguments: args as Record<string, unknown> };
}
