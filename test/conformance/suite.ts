/**
 * The engine conformance suite: one list of promises every protocol engine keeps, run by each
 * engine through a small adapter (test/conformance/<engine>.test.ts) that starts the gateway
 * and the target, drives a REAL client of that protocol, and reads the client's native answer.
 *
 * The suite speaks only in client terms: a session runs statements (SQL, shell commands, …) and
 * each outcome is either output or a native error `{ code, message }`, where `code` is the
 * protocol's own signal (a SQLSTATE, `exit 126`, `auth failure`, `closed`) and the adapter's
 * `native` table says which one each situation must produce. Items an engine cannot keep today
 * are listed by the adapter with a reason: `skip` (the protocol has no such thing) or
 * `knownFailures` (a bug: the test runs as `it.fails`, and starts failing when it is fixed).
 *
 * One gateway and one target per adapter file, shared by every item; each item mints its own
 * token, so it finds its own session by token id. Drain shuts the gateway down, so it runs last.
 *
 * Adding an engine (MySQL, Redis, HTTP, Kubernetes, MCP, …): one file
 * test/conformance/<folder under src/protocols>.test.ts calling `defineConformance` with an
 * adapter whose `start()` brings up a real target and a gateway whose policies make the
 * `Workload` behave as documented (a deny rule, a hold rule whose approvers include the
 * approver, a masking rule), whose `open()` drives the protocol's real client, and whose
 * `native` table names the protocol's own codes. Skip an item only when the protocol has no
 * such thing; an engine that gets it wrong lists it in `knownFailures` with the reason.
 *
 * Every engine folder under src/protocols runs it (postgres, ssh, redis, mysql, http, kubernetes; mcp
 * not yet); src/protocols/common is the
 * admission and drain the engines share, not an engine, and is exercised through them.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/audit/types.js";
import type { RecordingEntry } from "../../src/recording/types.js";
import { failAuditWrites } from "../harness/audit-failure.js";
import type { TestGateway } from "../harness/gateway.js";
import { until } from "../harness/until.js";

/** What the client itself reports when something is refused or ended. */
export interface NativeError {
  /** The protocol's own signal: a SQLSTATE, `exit 126`, `auth failure`, `closed`, … */
  readonly code: string;
  /** The text the client shows for it (ErrorResponse message, stderr), `""` if the protocol carries none. */
  readonly message: string;
}

export type Outcome = { readonly ok: true; readonly output: string } | { readonly ok: false; readonly error: NativeError };

/** One live client session (one connection) through the gateway. */
export interface EngineSession {
  /** Run one statement/command in this session and wait for its outcome. */
  run(text: string): Promise<Outcome>;
  /** Informational `airlock: …` messages the client got so far (NoticeResponse, stderr lines), in order. */
  readonly notices: readonly string[];
  /** Resolves once the client sees the connection closed. */
  closed(): Promise<void>;
  /** End the session from the client side (idempotent; fine after the gateway ended it). */
  close(): Promise<void>;
}

/** Statements in this engine's language that the adapter's policies treat as the suite expects. */
export interface Workload {
  /** Allowed; its output contains `output`. */
  allowed(tag: string): { readonly text: string; readonly output: string };
  /** Allowed; leaves `tag` on the target (see `marked`). */
  effect(tag: string): string;
  /** Needs approval by the adapter's approver (rule `rule`); once run it leaves `tag` on the target. */
  held(tag: string): { readonly text: string; readonly rule: string };
  /** Whether `effect(tag)` or `held(tag)` ran on the target. */
  marked(tag: string): Promise<boolean>;
  /**
   * Denied by rule `rule`. Had it run, the client would have seen `wouldPrint`, which does not
   * occur in `text` itself (so its absence from a recording means the target never answered).
   */
  denied(tag: string): { readonly text: string; readonly rule: string; readonly wouldPrint: string };
  /** Allowed, and runs until the session ends (terminate, revoke and drain end it meanwhile). */
  longRunning(tag: string): string;
  /** Whether `longRunning(tag)` is running on the target now (started, and not ended or killed). */
  running(tag: string): Promise<boolean>;
  /** Its output holds a value the adapter's masking policy rewrites to `masked`; `original` is not in `text`. */
  readonly masked: { readonly text: string; readonly original: string; readonly masked: string };
  /** A statement whose result the engine refuses after the target started answering (if the protocol has such a thing). */
  readonly refusedResult?: { readonly text: string };
  /**
   * Make session `s` ask for something the engine refuses (a request of the protocol that the
   * gateway never forwards, or a result it will not pass on); resolves to the client's native
   * error. Issue 11: every such refusal must be a decision of the pipeline, audited as a deny.
   */
  readonly engineRefusal?: (s: EngineSession) => Promise<NativeError>;
}

/** The native code each situation must produce in this protocol. */
export interface NativeForms {
  /** A statement denied by policy. */
  readonly deny: string;
  /** A statement refused because its audit record could not be written. */
  readonly auditUnavailable: string;
  /** A login refused because its audit record could not be written. */
  readonly auditUnavailableAtLogin: string;
  readonly unknownConnection: string;
  readonly badCredential: string;
  /** What a statement in flight gets when the gateway ends the session (terminate, revoke, drain). */
  readonly sessionEnded: string;
  /**
   * Whether a refused login can carry the gateway's `airlock: …` text. SSH cannot: its
   * USERAUTH_FAILURE has no text (RFC 4252 §5.1), so the client says only "Permission denied".
   */
  readonly loginRefusalSaysWhy: boolean;
}

export interface ConformanceWorld {
  readonly gw: TestGateway;
  /** The `protocol` the engine writes into audit records. */
  readonly protocol: string;
  /** A connection the agent may use. */
  readonly connection: string;
  /** A service account the workload's policies let use `connection`. */
  readonly agent: string;
  /** A token of a member of the hold rule's approver group. */
  readonly approverToken: string;
  readonly workload: Workload;
  /** Log in to `connection` with `token` and open a session (one connection of the real client). */
  open(token: string): Promise<EngineSession>;
  /** Try to log in (and run one allowed statement); the native refusal, or undefined if it worked. */
  login(connection: string, credential: string): Promise<NativeError | undefined>;
  /**
   * What the client saw as the session's recording keeps it: for PostgreSQL the recorded
   * results (rows, tags, errors), for SSH the terminal cast. `""` when there is none yet.
   */
  seen(sessionId: string): Promise<string>;
  stop(): Promise<void>;
}

export const ITEMS = [
  "deny",
  "audit-failure",
  "audit-failure-at-login",
  "hold",
  "hold-denied",
  "terminate",
  "terminate-stops-target",
  "unknown-connection",
  "bad-credential",
  "revoke",
  "recording-masked",
  "recording-deny",
  "recording-refused-result",
  "engine-refusal-audited",
  "drain",
] as const;
export type ConformanceItem = (typeof ITEMS)[number];

export interface ConformanceAdapter {
  /** The engine's folder under src/protocols. */
  readonly engine: string;
  readonly native: NativeForms;
  start(): Promise<ConformanceWorld>;
  /** Items this protocol has no counterpart for, each with the reason. */
  readonly skip?: Partial<Record<ConformanceItem, string>>;
  /** Items this engine gets wrong today, each with the reason: run as `it.fails`. */
  readonly knownFailures?: Partial<Record<ConformanceItem, string>>;
}

/** How long a session may take to end after terminate, revoke or drain ("no hang"). */
const END_WITHIN_MS = 10_000;

function tagOf(): string {
  // Lower-case letters and digits: safe in SQL literals, shell words and file names.
  return `c${randomBytes(5).toString("hex")}`;
}

function tokenIdOf(token: string): string {
  const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { jti?: unknown };
  if (typeof payload.jti !== "string") throw new Error("the token carries no jti");
  return payload.jti;
}

/** Reject with `what` if `p` has not settled within `ms`. */
async function within<T>(what: string, p: Promise<T>, ms = END_WITHIN_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function expectOk(o: Outcome, what: string): string {
  if (!o.ok) throw new Error(`${what}: expected output, got ${o.error.code}: ${o.error.message}`);
  return o.output;
}

function expectError(o: Outcome, what: string): NativeError {
  if (o.ok) throw new Error(`${what}: expected a native error, got output ${JSON.stringify(o.output.slice(0, 200))}`);
  return o.error;
}

/** One `airlock: …` line, nothing else (a trailing newline allowed). */
const ONE_AIRLOCK_LINE = /^airlock: [^\n]+\n?$/;

/**
 * What a session's recording says its client got: the `result` entries (rows, replies, errors)
 * as JSON, or "" when the session is not found. Adapters whose engines record results this way
 * use it as their `seen`.
 */
export async function recordedResults(gw: { api(path: string): Promise<{ status: number; body: unknown }> }, sessionId: string): Promise<string> {
  const r = await gw.api(`/v1/sessions/${sessionId}`);
  if (r.status !== 200) return "";
  const entries = (r.body as { recording: { kind: string }[] }).recording;
  return JSON.stringify(entries.filter((e) => e.kind === "result"));
}

export function defineConformance(adapter: ConformanceAdapter): void {
  describe(`${adapter.engine} engine conformance`, () => {
    let w: ConformanceWorld;
    const open: EngineSession[] = [];

    let stop: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      w = await adapter.start();
      stop = () => w.stop();
    });

    afterAll(async () => {
      for (const s of open) await s.close().catch(() => undefined);
      // Nothing to stop when start() failed (its own error is the one to read).
      await stop?.();
    });

    /** Declare an item: skipped or expected to fail as the adapter says, else a plain test. */
    const item = (id: ConformanceItem, name: string, fn: () => Promise<void>): void => {
      const skip = adapter.skip?.[id];
      const broken = adapter.knownFailures?.[id];
      if (skip !== undefined) it.skip(`${name} [skipped: ${skip}]`, fn);
      else if (broken !== undefined) it.fails(`${name} [known failure: ${broken}]`, fn);
      else it(name, fn);
    };

    const mint = (): Promise<string> => w.gw.mint(w.agent, "15m");

    const session = async (token: string): Promise<EngineSession> => {
      const s = await w.open(token);
      open.push(s);
      return s;
    };

    /** The live session opened with `token` (one per item: each item mints its own). */
    const sessionIdOf = (token: string): Promise<string> => {
      const jti = tokenIdOf(token);
      return until(`a live session for token ${jti}`, () => w.gw.gw.registry.list().find((s) => s.principal.tokenId === jti)?.id);
    };

    const recording = async (sessionId: string): Promise<readonly RecordingEntry[]> => {
      const r = await w.gw.api(`/v1/sessions/${sessionId}`);
      if (r.status !== 200) return [];
      return (r.body as { recording: RecordingEntry[] }).recording;
    };

    const audit = async (): Promise<readonly AuditRecord[]> => {
      await w.gw.gw.audit.flush();
      return w.gw.gw.store.readAudit(0, 1_000_000);
    };

    /** A statement in flight that the gateway ends: its native error, and the connection closes. Returns its tag. */
    const endedInFlight = async (s: EngineSession, token: string, end: () => Promise<void>, why: RegExp): Promise<string> => {
      await sessionIdOf(token);
      const tag = tagOf();
      const running = s.run(w.workload.longRunning(tag));
      await until("the long-running statement to run on the target", async () => ((await w.workload.running(tag)) ? true : undefined));
      await end();
      const outcome = await within("the statement in flight to end", running);
      const err = expectError(outcome, "statement in flight when the session ended");
      expect(err.code).toBe(adapter.native.sessionEnded);
      expect(err.message).toMatch(/^airlock: /);
      expect(err.message).toMatch(why);
      await within("the connection to close", s.closed());
      return tag;
    };

    item("deny", "deny arrives as native error and session continues", async () => {
      const token = await mint();
      const s = await session(token);
      const id = await sessionIdOf(token);
      const tag = tagOf();
      const denied = w.workload.denied(tag);
      const err = expectError(await s.run(denied.text), "denied statement");
      expect(err.code).toBe(adapter.native.deny);
      expect(err.message).toMatch(ONE_AIRLOCK_LINE);
      expect(err.message).toContain(denied.rule);
      expect(err.message).not.toContain(denied.wouldPrint);
      // The same session goes on: the next allowed statement runs, and so does the one after.
      const allowed = w.workload.allowed(tag);
      expect(expectOk(await s.run(allowed.text), "allowed statement after the deny")).toContain(allowed.output);
      expectOk(await s.run(w.workload.effect(tag)), "allowed statement with an effect after the deny");
      expect(await w.workload.marked(tag)).toBe(true);
      await s.close();
      // The deny is in the audit log, as the decision on that statement in that session.
      const records = (await audit()).filter((r) => r.sessionId === id && r.statement === denied.text);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ decision: "deny", rule: denied.rule, protocol: w.protocol });
    });

    item("audit-failure", "an audit write failure denies natively (fail closed) and the session goes on", async () => {
      const s = await session(await mint());
      const tag = tagOf();
      const failing = failAuditWrites(w.gw.gw);
      let outcome: Outcome;
      try {
        outcome = await s.run(w.workload.effect(tag));
      } finally {
        failing.restore();
      }
      expect(failing.attempts()).toBeGreaterThan(0);
      const err = expectError(outcome, "statement whose audit record could not be written");
      expect(err.code).toBe(adapter.native.auditUnavailable);
      expect(err.message).toMatch(ONE_AIRLOCK_LINE);
      expect(err.message).toMatch(/audit/);
      // Nothing reached the target.
      expect(await w.workload.marked(tag)).toBe(false);
      // Writes work again: so does the same session.
      const allowed = w.workload.allowed(tag);
      expect(expectOk(await s.run(allowed.text), "allowed statement once the audit log works again")).toContain(allowed.output);
      await s.close();
    });

    item("audit-failure-at-login", "an audit write failure refuses a new session natively (fail closed)", async () => {
      const token = await mint();
      const failing = failAuditWrites(w.gw.gw);
      let refusal: NativeError | undefined;
      try {
        refusal = await w.login(w.connection, token);
      } finally {
        failing.restore();
      }
      expect(failing.attempts()).toBeGreaterThan(0);
      expect(refusal).toBeDefined();
      expect(refusal?.code).toBe(adapter.native.auditUnavailableAtLogin);
      if (adapter.native.loginRefusalSaysWhy) expect(refusal?.message).toMatch(/^airlock: .*audit/);
      expect(w.gw.gw.registry.list().some((l) => l.principal.tokenId === tokenIdOf(token))).toBe(false);
      // The same credential works once the log does.
      expect(await w.login(w.connection, token)).toBeUndefined();
    });

    item("hold", "a hold sends the waiting notice naming the approval and approving it runs the statement", async () => {
      const s = await session(await mint());
      const tag = tagOf();
      const held = w.workload.held(tag);
      const running = s.run(held.text);
      const notice = await until("the waiting notice", () => s.notices.find((n) => /waiting for approval apr_\w+/.test(n)));
      expect(notice).toMatch(/^airlock: /);
      expect(notice).toContain(held.rule);
      const id = /waiting for approval (apr_\w+)/.exec(notice)?.[1] ?? "";
      const pending = await w.gw.api(`/v1/approvals/${id}`);
      expect(pending.status).toBe(200);
      expect((pending.body as { request: { status: string; statement?: string } }).request).toMatchObject({ status: "pending", statement: held.text });
      // Held means not run.
      expect(await w.workload.marked(tag)).toBe(false);
      const approved = await w.gw.api(`/v1/approvals/${id}/approve`, { token: w.approverToken, body: {} });
      expect(approved.status, approved.text).toBe(200);
      expectOk(await within("the approved statement to finish", running), "approved statement");
      expect(await w.workload.marked(tag)).toBe(true);
      // And the session goes on.
      const allowed = w.workload.allowed(tag);
      expect(expectOk(await s.run(allowed.text), "statement after the approved one")).toContain(allowed.output);
      await s.close();
    });

    item("hold-denied", "a hold the approver denies arrives as native error, nothing runs, and the session goes on", async () => {
      const s = await session(await mint());
      const tag = tagOf();
      const held = w.workload.held(tag);
      const running = s.run(held.text);
      const notice = await until("the waiting notice", () => s.notices.find((n) => /waiting for approval apr_\w+/.test(n)));
      const id = /waiting for approval (apr_\w+)/.exec(notice)?.[1] ?? "";
      const reason = `not now ${tag}`;
      const denied = await w.gw.api(`/v1/approvals/${id}/deny`, { token: w.approverToken, body: { reason } });
      expect(denied.status, denied.text).toBe(200);
      const err = expectError(await within("the denied statement to finish", running), "statement whose approval was denied");
      expect(err.code).toBe(adapter.native.deny);
      // The last thing the client reads is one airlock line naming the request and the reason
      // (on SSH's stderr the waiting line came before it).
      const last = err.message.trimEnd().split("\n").at(-1) ?? "";
      expect(last).toMatch(/^airlock: /);
      expect(last).toContain(id);
      expect(last).toContain(reason);
      expect(await w.workload.marked(tag)).toBe(false);
      const allowed = w.workload.allowed(tag);
      expect(expectOk(await s.run(allowed.text), "statement after the denied one")).toContain(allowed.output);
      await s.close();
    });

    item("terminate", "terminate ends the session natively without a hang", async () => {
      const token = await mint();
      const s = await session(token);
      const id = await sessionIdOf(token);
      await endedInFlight(
        s,
        token,
        async () => {
          const r = await w.gw.api(`/v1/sessions/${id}/terminate`, { method: "POST", body: {} });
          expect(r.status, r.text).toBe(200);
          expect((r.body as { terminated: number }).terminated).toBe(1);
        },
        /terminated/,
      );
      await until("the session to leave the registry", () => (w.gw.gw.registry.list().some((l) => l.id === id) ? undefined : true));
    });

    item("terminate-stops-target", "terminate stops the statement in flight on the target too", async () => {
      const token = await mint();
      const s = await session(token);
      const id = await sessionIdOf(token);
      const tag = await endedInFlight(
        s,
        token,
        async () => {
          const r = await w.gw.api(`/v1/sessions/${id}/terminate`, { method: "POST", body: {} });
          expect(r.status, r.text).toBe(200);
        },
        /terminated/,
      );
      // An operator who ends a session expects its work to stop, not to run on (and commit) unseen.
      await until("the statement to stop on the target", async () => ((await w.workload.running(tag)) ? undefined : true), 5_000);
    });

    item("unknown-connection", "an unknown connection is refused natively and audited", async () => {
      const name = `nosuch_${tagOf()}`;
      const refusal = await w.login(name, await mint());
      expect(refusal?.code).toBe(adapter.native.unknownConnection);
      if (adapter.native.loginRefusalSaysWhy) expect(refusal?.message).toMatch(new RegExp(`^airlock: .*${name}`));
      const records = await until("the refusal's audit record", async () => {
        const mine = (await audit()).filter((r) => r.connection === name && r.protocol === w.protocol);
        return mine.length > 0 ? mine : undefined;
      });
      expect(records.some((r) => r.type === "auth.failure" || (r.type === "session.start" && r.decision === "deny"))).toBe(true);
      expect(records.some((r) => r.decision === "allow")).toBe(false);
    });

    item("bad-credential", "a bad credential is refused natively and audited", async () => {
      const before = (await audit()).filter((r) => r.type === "auth.failure" && r.protocol === w.protocol && r.connection === w.connection).length;
      const refusal = await w.login(w.connection, `not-a-token-${tagOf()}`);
      expect(refusal?.code).toBe(adapter.native.badCredential);
      if (adapter.native.loginRefusalSaysWhy) expect(refusal?.message).toMatch(/^airlock: /);
      await until("the auth.failure audit record", async () => {
        const n = (await audit()).filter((r) => r.type === "auth.failure" && r.protocol === w.protocol && r.connection === w.connection).length;
        return n > before ? true : undefined;
      });
    });

    item("revoke", "revoking the token ends the live session", async () => {
      const token = await mint();
      const s = await session(token);
      await endedInFlight(
        s,
        token,
        async () => {
          const r = await w.gw.api(`/v1/tokens/${tokenIdOf(token)}/revoke`, { method: "POST", body: {} });
          expect(r.status, r.text).toBe(200);
          expect((r.body as { sessionsEnded: number }).sessionsEnded).toBe(1);
        },
        /revoked/,
      );
      // And the token opens nothing new.
      expect((await w.login(w.connection, token))?.code).toBe(adapter.native.badCredential);
    });

    item("recording-masked", "the recording shows what the client saw: the masked value, never the original", async () => {
      const token = await mint();
      const s = await session(token);
      const id = await sessionIdOf(token);
      const { text, original, masked } = w.workload.masked;
      const out = expectOk(await s.run(text), "masked statement");
      expect(out).toContain(masked);
      expect(out).not.toContain(original);
      await s.close();
      const seen = await until("the masked value in the recording", async () => {
        const v = await w.seen(id);
        return v.includes(masked) ? v : undefined;
      });
      expect(seen).not.toContain(original);
      expect(JSON.stringify(await recording(id))).not.toContain(original);
    });

    item("recording-deny", "the recording shows a denied statement as the deny, not a target result", async () => {
      const token = await mint();
      const s = await session(token);
      const id = await sessionIdOf(token);
      const tag = tagOf();
      const denied = w.workload.denied(tag);
      expectError(await s.run(denied.text), "denied statement");
      const allowed = w.workload.allowed(tag);
      expectOk(await s.run(allowed.text), "allowed statement after the deny");
      await s.close();
      const entries = await until("the recording to reach the end of the session", async () => {
        const e = await recording(id);
        return e.some((x) => x.kind === "end") ? e : undefined;
      });
      const decided = entries.find((e): e is Extract<RecordingEntry, { kind: "query" }> => e.kind === "query" && e.sql === denied.text);
      expect(decided).toMatchObject({ decision: "deny", rule: denied.rule });
      // No target result for it: nothing recorded under its sequence number but the decision.
      expect(entries.filter((e) => e.kind === "result" && e.seq === decided?.seq)).toEqual([]);
      // What the client saw afterwards is there; what the target would have answered is not.
      const seen = await w.seen(id);
      expect(seen).toContain(allowed.output);
      expect(seen).not.toContain(denied.wouldPrint);
      expect(JSON.stringify(entries)).not.toContain(denied.wouldPrint);
    });

    item("recording-refused-result", "the recording shows a result refused mid-way as the refusal the client saw", async () => {
      const refused = w.workload.refusedResult;
      if (refused === undefined) throw new Error(`the ${adapter.engine} adapter names no refusedResult: list the item in skip with the reason`);
      const token = await mint();
      const s = await session(token);
      const id = await sessionIdOf(token);
      const err = expectError(await s.run(refused.text), "refused result");
      expect(err.code).toBe(adapter.native.deny);
      expect(err.message).toMatch(ONE_AIRLOCK_LINE);
      await s.close();
      const entries = await until("the recording to reach the end of the session", async () => {
        const e = await recording(id);
        return e.some((x) => x.kind === "end") ? e : undefined;
      });
      const query = entries.find((e): e is Extract<RecordingEntry, { kind: "query" }> => e.kind === "query" && e.sql === refused.text);
      expect(query).toBeDefined();
      const results = entries.filter((e) => e.kind === "result" && e.seq === query?.seq);
      // The client got an error and no rows: the recording must say so, and keep neither the
      // target's command tag nor rows. Recorded either as the refused result, or as a deny.
      expect(results.length > 0 || query?.decision === "deny").toBe(true);
      for (const e of results) {
        expect(e).not.toHaveProperty("commandTag");
        expect(e).not.toHaveProperty("rows");
        expect(e).toHaveProperty("error.message", err.message);
      }
    });

    item("engine-refusal-audited", "a refusal the engine makes is audited as a deny and the session goes on", async () => {
      const refuse = w.workload.engineRefusal;
      if (refuse === undefined) throw new Error(`the ${adapter.engine} adapter names no engineRefusal: list the item in skip with the reason`);
      const token = await mint();
      const s = await session(token);
      const id = await sessionIdOf(token);
      const err = await refuse(s);
      expect(err.code).not.toBe("");
      const tag = tagOf();
      const allowed = w.workload.allowed(tag);
      expect(expectOk(await s.run(allowed.text), "allowed statement after the refusal")).toContain(allowed.output);
      await s.close();
      await until("the session's end in the audit log", async () => ((await audit()).some((r) => r.sessionId === id && r.type === "session.end") ? true : undefined));
      const denies = (await audit()).filter((r) => r.sessionId === id && r.decision === "deny");
      expect(denies.length, "audit records of the session that say deny").toBeGreaterThan(0);
    });

    // Last: it shuts the shared gateway down.
    item("drain", "drain (gateway shutdown) ends sessions natively without a hang", async () => {
      const token = await mint();
      const s = await session(token);
      await endedInFlight(s, token, () => within("the gateway to shut down", w.gw.gw.close()), /shutting down/);
    });
  });
}
