import pino from "pino";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../core/errors.js";
import type { SessionInfo } from "../core/session.js";
import { SessionRegistry } from "../policy/registry.js";
import { PersonRechecks, stillAdmitted, type RecheckAnswer } from "./recheck.js";

function setup(answers: (() => Promise<RecheckAnswer>)[]) {
  let now = 1_000_000;
  const registry = new SessionRegistry();
  const revoked: string[] = [];
  const overrides = new Map<string, readonly string[] | undefined>();
  const asked: string[] = [];
  const rechecks = new PersonRechecks({
    liveSessions: registry,
    admits: (s, groups) => (s.connection === "orders" ? groups.includes("dba") : groups.includes("engineers")),
    tokens: {
      setGroups: (id, groups) => overrides.set(id, groups),
      revoke: (id) => {
        revoked.push(id);
        return Promise.resolve(true);
      },
    },
    logger: pino({ level: "silent" }),
    clock: () => now,
  });
  const session = (id: string, connection: string): ReturnType<SessionRegistry["register"]> =>
    registry.register({
      id,
      clientProtocol: "postgres", targetType: "postgres",
      connection,
      principal: { kind: "person", id: "user:erin@example.com", name: "erin@example.com", groups: ["dba", "engineers"], tokenId: "t1" },
      clientAddress: "127.0.0.1:1",
      startedAt: new Date(),
      attributes: {},
    } satisfies SessionInfo);
  rechecks.track({
    tokenId: "t1",
    principalId: "user:erin@example.com",
    name: "erin@example.com",
    groups: ["dba", "engineers"],
    expiresAt: new Date(Date.now() + 3_600_000),
    refreshToken: "rt-0",
    intervalMs: 3_600_000,
    graceMs: 60_000,
    ask: (rt) => {
      asked.push(rt);
      const next = answers.shift();
      if (next === undefined) throw new Error("no answer");
      return next();
    },
  });
  return { rechecks, registry, revoked, overrides, asked, session, advance: (ms: number) => (now += ms) };
}

describe("PersonRechecks", () => {
  it("on changed groups, replaces the token's groups and ends only sessions the new groups no longer admit; uses the rotated refresh token", async () => {
    const s = setup([() => Promise.resolve({ groups: ["dba", "engineers"], refreshToken: "rt-1" }), () => Promise.resolve({ groups: ["engineers"] })]);
    const orders = s.session("s1", "orders");
    const wiki = s.session("s2", "wiki");
    await s.rechecks.checkNow("t1");
    expect(s.overrides.size).toBe(0);
    expect(orders.signal.aborted).toBe(false);
    await s.rechecks.checkNow("t1");
    expect(s.asked).toEqual(["rt-0", "rt-1"]);
    expect(s.overrides.get("t1")).toEqual(["engineers"]);
    expect(orders.signal.aborted).toBe(true);
    expect(orders.signal.reason).toMatchObject({ reason: "revoked", detail: expect.stringContaining('session on connection "orders" is not admitted') as unknown });
    expect(wiki.signal.aborted).toBe(false);
    expect(s.revoked).toEqual([]);
    await s.rechecks.close();
  });

  it("ends every session and revokes the token when the IdP refuses the grant", async () => {
    const s = setup([() => Promise.reject(new GatewayError("GW_AUTH_REVOKED", "refused"))]);
    const wiki = s.session("s2", "wiki");
    await s.rechecks.checkNow("t1");
    expect(wiki.signal.aborted).toBe(true);
    expect(s.revoked).toEqual(["t1"]);
    expect(s.rechecks.size).toBe(0);
  });

  it("keeps sessions while the IdP is unreachable within the grace, then ends them (fail closed)", async () => {
    const down = (): Promise<RecheckAnswer> => Promise.reject(new Error("ECONNREFUSED"));
    const s = setup([down, down, () => Promise.resolve({ groups: ["dba", "engineers"] }), down, down]);
    const orders = s.session("s1", "orders");
    s.advance(30_000);
    await s.rechecks.checkNow("t1");
    expect(orders.signal.aborted).toBe(false);
    s.advance(20_000);
    await s.rechecks.checkNow("t1");
    expect(orders.signal.aborted).toBe(false);
    // A success resets the grace.
    await s.rechecks.checkNow("t1");
    s.advance(59_000);
    await s.rechecks.checkNow("t1");
    expect(orders.signal.aborted).toBe(false);
    s.advance(2_000);
    await s.rechecks.checkNow("t1");
    expect(orders.signal.aborted).toBe(true);
    expect(orders.signal.reason).toMatchObject({ detail: expect.stringContaining("could not be reached") as unknown });
    expect(s.revoked).toEqual(["t1"]);
  });
});

describe("stillAdmitted", () => {
  const rules = {
    connectionGroups: (c: string) => (c === "orders" ? ["dba"] : ["engineers"]),
    policyGroups: new Set(["contractors", "dba"]),
    hasGrant: (_p: string, c: string) => c === "granted",
  };
  const session = (connection: string, groups: string[]) => ({ connection, principal: { kind: "person" as const, id: "user:e", name: "e", groups } });
  it("needs a group the connection admits, or an access grant", () => {
    expect(stillAdmitted(session("wiki", ["engineers", "x"]), ["engineers"], rules)).toBe(true);
    expect(stillAdmitted(session("wiki", ["engineers"]), ["x"], rules)).toBe(false);
    expect(stillAdmitted(session("granted", ["x"]), ["y"], rules)).toBe(true);
  });
  it("ends a session when a group that selects policies came or went, even if the connection still admits it", () => {
    expect(stillAdmitted(session("wiki", ["engineers"]), ["engineers", "contractors"], rules)).toBe(false);
    expect(stillAdmitted(session("wiki", ["engineers", "dba"]), ["engineers"], rules)).toBe(false);
  });
});
