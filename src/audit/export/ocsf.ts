/**
 * Audit records as OCSF 1.8 events (issue 20): an export sink with `format: ocsf` sends each
 * record as the OCSF class that describes it, so that a SIEM that speaks OCSF (Security Lake,
 * Splunk, Sentinel, …) files Airlock's evidence next to everything else. The mapping is
 * documented as a table in the README ("Audit export → OCSF"); this file is its one source.
 *
 * | Airlock record                         | OCSF class (class_uid)        | activity                       |
 * |----------------------------------------|-------------------------------|--------------------------------|
 * | auth.failure                           | Authentication (3002)         | Logon (1), status Failure      |
 * | session.start / session.end            | Authentication (3002)         | Logon (1) / Logoff (2)         |
 * | agent.connect / agent.disconnect       | Authentication (3002)         | Logon (1) / Logoff (2), service "agent:GROUP" |
 * | db.query, db.result (SQL, Redis)       | Datastore Activity (6005)     | from the statement's verb      |
 * | ssh.command                            | SSH Activity (4007)           | Other (99), "Command"          |
 * | http.request, k8s.request              | HTTP Activity (4002)          | from the HTTP method           |
 * | everything else (approvals, grants, tokens, gateway, protocol.request, audit.head) | Base Event (0) | Other (99) |
 *
 * Every event carries: `metadata` (product Airlock, OCSF version, `sequence` = the record's
 * chain seq, `uid` = its chain hash, `correlation_uid` = the session id), `time` (ms),
 * `severity_id`, `status_id` (Success for allow, Failure for deny/failure), the security-control
 * profile's `action_id` / `disposition_id` (Allowed / Blocked) and `policy.name` (the rule) for
 * judged records, `actor.user` / `user` from the principal, `src_endpoint.ip` from the client
 * address, and the Airlock fields OCSF has no attribute for under `unmapped.airlock` (type,
 * decision code, details, prevHash), so nothing of the record is lost.
 */
import { isIP } from "node:net";
import type { AuditRecord } from "../types.js";

export const OCSF_VERSION = "1.8.0";

type Json = string | number | boolean | null | readonly Json[] | { readonly [k: string]: Json };
type Obj = Record<string, Json>;

const CLASS = {
  base: { uid: 0, category: 0, name: "Base Event", categoryName: "Uncategorized" },
  authentication: { uid: 3002, category: 3, name: "Authentication", categoryName: "Identity & Access Management" },
  http: { uid: 4002, category: 4, name: "HTTP Activity", categoryName: "Network Activity" },
  ssh: { uid: 4007, category: 4, name: "SSH Activity", categoryName: "Network Activity" },
  datastore: { uid: 6005, category: 6, name: "Datastore Activity", categoryName: "Application Activity" },
} as const;
type ClassKey = keyof typeof CLASS;

/** Datastore Activity's activity ids (OCSF 1.8) by the statement's leading verb. */
const DATASTORE_ACTIVITY: Readonly<Record<string, readonly [number, string]>> = {
  select: [4, "Query"],
  with: [4, "Query"],
  table: [4, "Query"],
  show: [8, "List"],
  describe: [8, "List"],
  explain: [4, "Query"],
  get: [1, "Read"],
  mget: [1, "Read"],
  hget: [1, "Read"],
  hgetall: [1, "Read"],
  keys: [8, "List"],
  scan: [8, "List"],
  update: [2, "Update"],
  insert: [5, "Write"],
  copy: [5, "Write"],
  merge: [5, "Write"],
  set: [5, "Write"],
  hset: [5, "Write"],
  create: [6, "Create"],
  delete: [7, "Delete"],
  drop: [7, "Delete"],
  truncate: [7, "Delete"],
  del: [7, "Delete"],
  unlink: [7, "Delete"],
  flushall: [7, "Delete"],
  flushdb: [7, "Delete"],
};

/** HTTP Activity's activity ids (OCSF 1.8) by method. */
const HTTP_ACTIVITY: Readonly<Record<string, number>> = { CONNECT: 1, DELETE: 2, GET: 3, HEAD: 4, OPTIONS: 5, POST: 6, PUT: 7, TRACE: 8, PATCH: 9 };

function classOf(r: AuditRecord): ClassKey {
  switch (r.type) {
    case "auth.failure":
    case "session.start":
    case "session.end":
    case "agent.connect":
    case "agent.disconnect":
      return "authentication";
    case "db.query":
    case "db.result":
    case "result.flagged":
    case "canary.tripped":
      return "datastore";
    case "ssh.command":
      return "ssh";
    case "http.request":
    case "k8s.request":
      return "http";
    case "connection.change":
    case "policy.change":
    case "connection.test":
    case "secrets.rotate":
    case "mcp.tool_call":
    case "mcp.pin":
    case "protocol.request":
    case "token.create":
    case "token.revoke":
    case "gateway.start":
    case "gateway.stop":
    case "approval.requested":
    case "approval.decided":
    case "approval.expired":
    case "approval.cancelled":
    case "approval.used":
    case "grant.expired":
    case "grant.revoked":
      return "base";
  }
}

function activity(cls: ClassKey, r: AuditRecord): readonly [number, string] {
  switch (cls) {
    case "authentication":
      return r.type === "session.end" || r.type === "agent.disconnect" ? [2, "Logoff"] : [1, "Logon"];
    case "datastore": {
      if (r.type === "db.result" || r.type === "result.flagged" || r.type === "canary.tripped") return [1, "Read"];
      const verb = /^[\s(]*([A-Za-z]+)/.exec(r.statement ?? "")?.[1]?.toLowerCase();
      return (verb === undefined ? undefined : DATASTORE_ACTIVITY[verb]) ?? [99, "Other"];
    }
    case "http": {
      const method = httpOf(r).method;
      const id = method === undefined ? undefined : HTTP_ACTIVITY[method];
      return id === undefined || method === undefined ? [99, "Other"] : [id, `${method.slice(0, 1)}${method.slice(1).toLowerCase()}`];
    }
    case "ssh":
      return [99, "Command"];
    case "base":
      return [99, r.type];
  }
}

/** An HTTP-shaped record's method and request target: from its details, else its statement (`METHOD /path?query`). */
function httpOf(r: AuditRecord): { readonly method?: string; readonly target?: string } {
  const m = /^([A-Z]+)\s+(\S+)/.exec(r.statement ?? "");
  const method = typeof r.details?.method === "string" ? r.details.method.toUpperCase() : m?.[1];
  const target = typeof r.details?.path === "string" ? r.details.path : m?.[2];
  return { ...(method === undefined ? {} : { method }), ...(target === undefined ? {} : { target }) };
}

function failed(r: AuditRecord): boolean {
  return r.decision === "deny" || r.type === "auth.failure" || r.type === "approval.expired";
}

function endpoint(address: string | undefined): Obj | undefined {
  if (address === undefined || address === "") return undefined;
  // Client addresses are "ip" or "ip:port" / "[v6]:port".
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(address);
  const ip = m?.[1];
  if (ip !== undefined && isIP(ip) !== 0) {
    const port = m?.[2] === undefined ? undefined : Number(m[2]);
    return port === undefined || port > 65535 ? { ip } : { ip, port };
  }
  return { name: address.slice(0, 255) };
}

function userOf(r: AuditRecord): Obj | undefined {
  if (r.principal !== undefined) return { uid: r.principal.id, name: r.principal.name, type: r.principal.kind };
  const claimed = r.details?.claimedUser;
  if (typeof claimed === "string" && claimed !== "") return { name: claimed };
  return undefined;
}

function jsonDetails(r: AuditRecord): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(r.details ?? {})) out[k] = v;
  return out;
}

/**
 * One audit record as an OCSF event object. `productVersion` is the gateway's version.
 * Pure: the same record always maps to the same event.
 */
export function toOcsf(r: AuditRecord, productVersion: string): Obj {
  const key = classOf(r);
  const cls = CLASS[key];
  const [activityId, activityName] = activity(key, r);
  const fail = failed(r);
  const user = userOf(r);
  const src = endpoint(r.clientAddress);
  const ev: Obj = {
    class_uid: cls.uid,
    class_name: cls.name,
    category_uid: cls.category,
    category_name: cls.categoryName,
    activity_id: activityId,
    activity_name: activityName,
    type_uid: cls.uid * 100 + activityId,
    time: Date.parse(r.time),
    severity_id: fail ? 3 : 1,
    severity: fail ? "Medium" : "Informational",
    status_id: fail ? 2 : 1,
    status: fail ? "Failure" : "Success",
    metadata: {
      version: OCSF_VERSION,
      product: { name: "Airlock", vendor_name: "Airlock", version: productVersion },
      sequence: r.seq,
      uid: r.hash,
      log_name: "airlock-audit",
      ...(r.sessionId === undefined ? {} : { correlation_uid: r.sessionId }),
    },
    unmapped: {
      airlock: {
        type: r.type,
        seq: r.seq,
        prevHash: r.prevHash,
        ...(r.decision === undefined ? {} : { decision: r.decision }),
        ...(r.code === undefined ? {} : { code: r.code }),
        ...(r.connection === undefined ? {} : { connection: r.connection }),
        ...(r.protocol === undefined ? {} : { protocol: r.protocol }),
        ...(r.clientAddress === undefined ? {} : { clientAddress: r.clientAddress }),
        details: jsonDetails(r),
      },
    },
  };
  if (r.message !== undefined) ev.message = r.message;
  if (r.code !== undefined) ev.status_code = r.code;
  if (r.decision !== undefined) {
    ev.action_id = r.decision === "allow" ? 1 : 2;
    ev.action = r.decision === "allow" ? "Allowed" : "Denied";
    ev.disposition_id = r.decision === "allow" ? 1 : 2;
    ev.disposition = r.decision === "allow" ? "Allowed" : "Blocked";
  }
  if (r.rule !== undefined) ev.policy = { name: r.rule };
  // Base Event has no endpoints: the address stays in `unmapped` there.
  if (src !== undefined && key !== "base") ev.src_endpoint = src;

  switch (key) {
    case "authentication":
      // `user` is required by the class: an unnamed failure is still a logon attempt by someone.
      ev.user = user ?? { name: "unknown" };
      // An agent's tunnel logs in to the gateway's agent service of its group.
      ev.service = { name: r.connection ?? (typeof r.details?.group === "string" ? `agent:${r.details.group}` : "airlock") };
      if (r.protocol !== undefined) ev.auth_protocol = r.protocol;
      if (r.sessionId !== undefined) ev.session = { uid: r.sessionId };
      ev.is_remote = true;
      break;
    case "datastore":
      ev.actor = user === undefined ? { app_name: "airlock" } : { user, ...(r.sessionId === undefined ? {} : { session: { uid: r.sessionId } }) };
      // src_endpoint is required by the class; a record without an address says so.
      if (ev.src_endpoint === undefined) ev.src_endpoint = { name: "unknown" };
      ev.database = { name: r.connection ?? "unknown", type_id: 99, type: r.protocol ?? "other" };
      // query_info is an entity (a name or uid is required): the statement's place in its session.
      if (r.statement !== undefined) ev.query_info = { uid: `${r.sessionId ?? "-"}#${String(r.details?.seq ?? r.seq)}`, query_string: r.statement };
      break;
    case "ssh":
      if (user !== undefined) ev.actor = { user, ...(r.sessionId === undefined ? {} : { session: { uid: r.sessionId } }) };
      ev.dst_endpoint = { name: r.connection ?? "unknown" };
      if (r.statement !== undefined) ev.message = r.message === undefined ? r.statement : `${r.statement} — ${r.message}`;
      break;
    case "http": {
      if (user !== undefined) ev.actor = { user };
      // The class needs http_request (or http_response): the method and path as far as known.
      const { method, target } = httpOf(r);
      const [path, query] = (target ?? "").split("?", 2);
      ev.http_request = {
        ...(method === undefined ? {} : { http_method: method }),
        ...(path === undefined || path === "" ? {} : { url: { path, ...(query === undefined ? {} : { query_string: query }) } }),
      };
      ev.dst_endpoint = { name: r.connection ?? "unknown" };
      break;
    }
    case "base":
      if (user !== undefined) ev.actor = { user };
      if (r.statement !== undefined) ev.raw_data = r.statement;
      break;
  }
  return ev;
}

/** The periodic chain head (`audit.head`) as an OCSF Base Event. */
export function ocsfHead(head: { readonly seq: number; readonly hash: string; readonly recordTime: string }, productVersion: string, now: Date): Obj {
  return {
    class_uid: 0,
    class_name: "Base Event",
    category_uid: 0,
    category_name: "Uncategorized",
    activity_id: 99,
    activity_name: "audit.head",
    type_uid: 99,
    time: now.getTime(),
    severity_id: 1,
    severity: "Informational",
    status_id: 1,
    status: "Success",
    message: `audit chain head: seq ${head.seq}`,
    metadata: { version: OCSF_VERSION, product: { name: "Airlock", vendor_name: "Airlock", version: productVersion }, sequence: head.seq, uid: head.hash, log_name: "airlock-audit" },
    unmapped: { airlock: { type: "audit.head", seq: head.seq, hash: head.hash, recordTime: head.recordTime } },
  };
}
