// Typed calls to the gateway's API: every answer is parsed with the server's own zod schemas
// (src/api/console-schemas.ts). The browser's session is an HttpOnly cookie the page never
// sees; state-changing calls carry the session's CSRF token in X-Airlock-CSRF.
import type { z } from "zod";
import { errorBody } from "../../src/api/console-schemas.js";

let csrf = "";

export function setCsrf(token: string): void {
  csrf = token;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (method !== "GET") headers["x-airlock-csrf"] = csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new ApiError(res.status, "GW_BAD_RESPONSE", `unexpected answer (${res.status})`);
  }
  if (!res.ok) {
    const e = errorBody.safeParse(json);
    throw new ApiError(res.status, e.success ? e.data.error.code : "GW_ERROR", e.success ? e.data.error.message : `request failed (${res.status})`);
  }
  return schema.parse(json);
}

export function get<T>(path: string, schema: z.ZodType<T>): Promise<T> {
  return call("GET", path, schema);
}

export function post<T>(path: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
  return call("POST", path, schema, body);
}

export async function getText(path: string): Promise<string> {
  const res = await fetch(path, { credentials: "same-origin" });
  if (!res.ok) throw new ApiError(res.status, "GW_ERROR", `request failed (${res.status})`);
  return res.text();
}

export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}
