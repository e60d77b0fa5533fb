/**
 * The approval service binds a request to what the statement's names resolve to (the engine's
 * resolver) and releases the approved statement only while they still resolve the same, in wait
 * and async mode; on a real store (PGlite), so the binding survives the store round trip.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEventInput, AuditRecord } from "../audit/types.js";
import type { HoldDecision } from "../core/decision.js";
import { GatewayError } from "../core/errors.js";
import type { ObjectBinding } from "../core/objects.js";
import type { Principal } from "../core/principal.js";
import type { SessionInfo } from "../core/session.js";
import { SessionRegistry } from "../policy/registry.js";
import { openStore } from "../store/index.js";
import type { Store } from "../store/types.js";
import type { Notifier } from "./notify.js";
import { ApprovalService } from "./service.js";

let root: string;
let store: Store;
let service: ApprovalService;
const audited: AuditEventInput[] = [];
const notifier: Notifier = { notify: () => undefined, idle: () => Promise.resolve() };
const agent: Principal = { kind: "service_account", id: "sa:agent", name: "agent", groups: ["agents"] };
const dba1: Principal = { kind: "service_account", id: "sa:dba1", name: "dba1", groups: ["dba"] };

function session(): SessionInfo {
  return { id: `s-${Math.random()}`, clientProtocol: "postgres", targetType: "postgres", connection: "orders", principal: agent, clientAddress: "127.0.0.1", startedAt: new Date(), attributes: {} };
}

function hold(mode: "wait" | "async"): HoldDecision {
  return { type: "hold", need: "approval", rule: "writes", message: "needs approval", approvers: ["dba"], minApprovals: 1, timeoutMs: 600_000, mode, allow: { type: "allow" }, summary: { operations: ["delete"], relations: ["orders"] } };
}

const at = (qualified: string, oid: number): ObjectBinding => ({ searchPath: "app, public", objects: [{ kind: "relation", name: "orders", resolved: [{ oid, qualified }] }] });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "airlock-approvals-binding-"));
  store = await openStore({ dataDir: join(root, "data") });
  const approvalStore = store.approvals;
  if (approvalStore === undefined) throw new Error("no approval store");
  let seq = 0;
  const audit = {
    append: (input: AuditEventInput): Promise<AuditRecord> => {
      audited.push(input);
      return Promise.resolve({ ...input, seq: ++seq, time: new Date().toISOString(), prevHash: "", hash: "" });
    },
  };
  service = new ApprovalService({ store: approvalStore, audit, notifier, logger: pino({ level: "silent" }), liveSessions: new SessionRegistry(), connections: ["orders"] });
  await service.start();
});

afterAll(async () => {
  await service.close();
  await store.close();
  await rm(root, { recursive: true, force: true });
});

/** The id of the newest request for this text, once it exists. */
async function requestFor(text: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const r = (await service.list({ limit: 50 })).find((x) => x.statement === text);
    if (r !== undefined) return r.id;
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error("no request");
}

describe("an approval bound to objects", () => {
  it("wait mode: stores the binding with the request, and refuses the release when a name now resolves elsewhere", async () => {
    let now = at("public.orders", 100);
    const text = "delete from orders where id = 1";
    const p = service.resolve({ session: session(), hold: hold("wait"), text, signal: new AbortController().signal, bindObjects: () => Promise.resolve(now) });
    const id = await requestFor(text);
    expect((await service.get(id))?.request.summary).toEqual({ operations: ["delete"], relations: ["orders"], objects: at("public.orders", 100) });
    now = at("app.orders", 200);
    await service.decide(id, dba1, "approve");
    const r = await p;
    expect(r.decision).toMatchObject({ type: "deny", code: "GW_POLICY_DENIED", rule: "writes" });
    expect(r.decision.type === "deny" ? r.decision.message : "").toBe(`approval no longer matches: orders now resolves to app.orders (approved: public.orders) (approval ${id} is used up; request it again)`);
    expect((await service.get(id))?.request.usedAt).toBeDefined();
  });

  it("wait mode: an unchanged binding is released, with what it was released against", async () => {
    const text = "delete from orders where id = 2";
    const p = service.resolve({ session: session(), hold: hold("wait"), text, signal: new AbortController().signal, bindObjects: () => Promise.resolve(at("public.orders", 100)) });
    await service.decide(await requestFor(text), dba1, "approve");
    expect(await p).toMatchObject({ decision: { type: "allow", rule: "writes" }, objects: at("public.orders", 100) });
  });

  it("wait mode: a release whose objects cannot be resolved is refused (fail closed)", async () => {
    let calls = 0;
    const text = "delete from orders where id = 3";
    const bindObjects = (): Promise<ObjectBinding> => (++calls === 1 ? Promise.resolve(at("public.orders", 100)) : Promise.reject(new GatewayError("GW_UPSTREAM_UNAVAILABLE", "catalog query failed")));
    const p = service.resolve({ session: session(), hold: hold("wait"), text, signal: new AbortController().signal, bindObjects });
    await service.decide(await requestFor(text), dba1, "approve");
    const r = await p;
    expect(r.decision.type === "deny" ? r.decision.message : "").toContain("could not be resolved on the target (catalog query failed)");
  });

  it("a request whose objects cannot be resolved is not made", async () => {
    const text = "delete from orders where id = 4";
    const r = await service.resolve({ session: session(), hold: hold("wait"), text, signal: new AbortController().signal, bindObjects: () => Promise.reject(new Error("x")) });
    expect(r.decision).toMatchObject({ type: "deny", rule: "writes" });
    expect((await service.list({ limit: 100 })).some((x) => x.statement === text)).toBe(false);
  });

  it("async mode: the approved re-send runs only while the names resolve the same; a drifted one uses the approval up", async () => {
    const text = "delete from orders where id = 5";
    let now = at("public.orders", 100);
    const ask = () => service.resolve({ session: session(), hold: hold("async"), text, signal: new AbortController().signal, bindObjects: () => Promise.resolve(now) });
    const first = await ask();
    expect(first.decision.type).toBe("deny");
    await service.decide(first.approvalId ?? "", dba1, "approve");
    now = at("public.orders", 101);
    const drifted = await ask();
    expect(drifted.decision.type === "deny" ? drifted.decision.message : "").toContain("orders was dropped and created again (public.orders, OID 100 now 101)");
    expect(drifted.approvalId).toBe(first.approvalId);
    // Used up: the next re-send is a new request.
    const again = await ask();
    expect(again.approvalId).not.toBe(first.approvalId);
    await service.decide(again.approvalId ?? "", dba1, "approve");
    expect((await ask()).decision).toMatchObject({ type: "allow", rule: "writes" });
  });

  it("an execution of a prepared statement whose names resolve differently from when it was prepared is refused before any request", async () => {
    const text = "delete from orders where id = $1";
    const r = await service.resolve({
      session: session(),
      hold: hold("wait"),
      text,
      signal: new AbortController().signal,
      bindObjects: () => Promise.resolve(at("app.orders", 200)),
      preparedObjects: at("public.orders", 100),
    });
    expect(r.decision.type === "deny" ? r.decision.message : "").toBe(
      "the prepared statement no longer matches what it was prepared against: orders now resolves to app.orders (approved: public.orders); prepare it again",
    );
    expect((await service.list({ limit: 100 })).some((x) => x.statement === text)).toBe(false);
  });
});
