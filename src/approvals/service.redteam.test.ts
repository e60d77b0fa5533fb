/**
 * Attacks on the approval service itself (issue 5 review), on a real store (PGlite): what an
 * async approval can be used for, and who may vote.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEventInput, AuditRecord } from "../audit/types.js";
import type { HoldDecision } from "../core/decision.js";
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
const notifier: Notifier = { notify: () => undefined, idle: () => Promise.resolve() };

const agent: Principal = { kind: "service_account", id: "sa:agent", name: "agent", groups: ["agents"] };
const dba1: Principal = { kind: "service_account", id: "sa:dba1", name: "dba1", groups: ["dba"] };

function session(): SessionInfo {
  return { id: `s-${Math.random()}`, clientProtocol: "postgres", targetType: "postgres", connection: "orders", principal: agent, clientAddress: "127.0.0.1", startedAt: new Date(), attributes: {} };
}

function hold(over: Partial<HoldDecision> = {}): HoldDecision {
  return {
    type: "hold",
    need: "approval",
    rule: "writes",
    message: "needs approval",
    approvers: ["dba"],
    minApprovals: 1,
    timeoutMs: 600_000,
    mode: "async",
    allow: { type: "allow" },
    ...over,
  };
}

async function resolve(text: string, h: HoldDecision): Promise<{ type: string; approvalId?: string }> {
  const r = await service.resolve({ session: session(), hold: h, text, signal: new AbortController().signal });
  return { type: r.decision.type, ...(r.approvalId === undefined ? {} : { approvalId: r.approvalId }) };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "airlock-approvals-redteam-"));
  store = await openStore({ dataDir: join(root, "data") });
  const approvalStore = store.approvals;
  if (approvalStore === undefined) throw new Error("no approval store");
  let seq = 0;
  const audit = {
    append: (input: AuditEventInput): Promise<AuditRecord> => Promise.resolve({ ...input, seq: ++seq, time: new Date().toISOString(), prevHash: "", hash: "" }),
  };
  service = new ApprovalService({ store: approvalStore, audit, notifier, logger: pino({ level: "silent" }), liveSessions: new SessionRegistry(), connections: ["orders"] });
  await service.start();
});

afterAll(async () => {
  await service.close();
  await store.close();
  await rm(root, { recursive: true, force: true });
});

describe("an async approval", () => {
  it("is used only under the rule (and approvers, and approval count) it was given for", async () => {
    const text = "delete from orders where id = 1";
    const first = await resolve(text, hold());
    expect(first.type).toBe("deny");
    const id = first.approvalId ?? "";
    await service.decide(id, dba1, "approve");
    // The configuration changed meanwhile: the statement now falls under a stricter rule.
    const strict = await resolve(text, hold({ rule: "payments-two-approvers", approvers: ["security"], minApprovals: 2 }));
    expect(strict.type).toBe("deny");
    expect(strict.approvalId).not.toBe(id);
    // Same rule name, but it now needs two approvers: one approval is not enough.
    const stricter = await resolve(text, hold({ minApprovals: 2 }));
    expect(stricter.type).toBe("deny");
    expect(stricter.approvalId).not.toBe(id);
    // Same rule name, other approver groups.
    expect((await resolve(text, hold({ approvers: ["security"] }))).type).toBe("deny");
    // Under the rule it was given for, it runs once.
    expect(await resolve(text, hold())).toEqual({ type: "allow", approvalId: id });
    expect((await resolve(text, hold())).type).toBe("deny");
  });
});

describe("request floods", () => {
  it("beyond the cap of undecided requests per principal, new holds are refused without creating a request", async () => {
    const flooder: Principal = { kind: "service_account", id: "sa:flooder", name: "flooder", groups: ["agents"] };
    const s = (): SessionInfo => ({ ...session(), principal: flooder });
    const ids = new Set<string>();
    for (let i = 0; i < 25; i++) {
      const r = await service.resolve({ session: s(), hold: hold(), text: `delete from orders where id = ${1000 + i}`, signal: new AbortController().signal });
      expect(r.decision.type).toBe("deny");
      if (r.approvalId !== undefined) ids.add(r.approvalId);
      if (i >= 20) {
        expect(r.approvalId).toBeUndefined();
        expect(r.decision).toMatchObject({ code: "GW_LIMIT" });
      }
    }
    expect(ids.size).toBe(20);
    expect((await service.list({ status: "pending", limit: 1000 })).filter((r) => r.requesterId === "sa:flooder")).toHaveLength(20);
    // A decision frees a slot.
    const first = [...ids][0] ?? "";
    await service.decide(first, dba1, "deny");
    const again = await service.resolve({ session: s(), hold: hold(), text: "delete from orders where id = 2000", signal: new AbortController().signal });
    expect(again.approvalId).toBeDefined();
  });
});
