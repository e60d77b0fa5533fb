import { describe, expect, it } from "vitest";
import { parseConfig } from "../runtime/config.js";

const pg = { name: "orders", type: "postgres", host: "10.0.0.5", database: "orders", user: "app", groups: ["agents"], sslmode: "disable" } as const;

describe("agents config", () => {
  it("accepts via naming a group, and agent-side env:/absolute file: credentials", () => {
    const c = parseConfig({
      agents: { groups: [{ name: "dc-east", allow: ["edge"] }] },
      connections: [
        { ...pg, via: "dc-east", credentialsOn: "agent", password: "env:PG_PW" },
        { ...pg, name: "o2", via: "dc-east", credentialsOn: "agent", password: "file:/etc/pg/pw" },
      ],
    });
    const first = c.connections[0];
    expect(first?.type === "postgres" ? [first.via, first.credentialsOn, first.password] : undefined).toEqual(["dc-east", "agent", { kind: "env", name: "PG_PW" }]);
    // An agent-side file reference names the agent's path: never resolved against the gateway's directory.
    const second = c.connections[1];
    expect(second?.type === "postgres" ? second.password : undefined).toEqual({ kind: "file", path: "/etc/pg/pw" });
  });

  it("names each bad key", () => {
    const bad = (doc: unknown): string => {
      try {
        parseConfig(doc);
        return "";
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
    };
    expect(bad({ connections: [{ ...pg, via: "nowhere" }] })).toContain('connections[0].via: no agent group "nowhere"');
    const groups = { groups: [{ name: "dc", allow: ["edge"] }] };
    expect(bad({ agents: groups, connections: [{ ...pg, credentialsOn: "agent", password: "env:X" }] })).toContain("credentialsOn: agent needs via");
    expect(bad({ agents: groups, connections: [{ ...pg, via: "dc", credentialsOn: "agent", password: "hunter2" }] })).toContain("use env:NAME or file:/ABSOLUTE/PATH");
    expect(bad({ agents: groups, connections: [{ ...pg, via: "dc", credentialsOn: "agent", password: "file:rel/pw" }] })).toContain("use env:NAME or file:/ABSOLUTE/PATH");
    // TLS to the target is the agent's to do: every sslmode works agent-side.
    expect(bad({ agents: groups, connections: [{ ...pg, via: "dc", credentialsOn: "agent", password: "env:X", sslmode: "verify-full" }] })).toBe("");
    const redis = { name: "cache", type: "redis", host: "10.0.0.6", via: "dc", credentialsOn: "agent", password: "env:R", groups: ["agents"] };
    expect(bad({ agents: groups, connections: [{ ...redis, tls: true }] })).toContain("connections[0].tls: credentialsOn: agent needs tls: false");
    expect(bad({ agents: groups, connections: [redis] })).toBe("");
    expect(bad({ agents: { groups: [{ name: "dc", allow: [] }] } })).toContain("agents.groups[0].allow");
    expect(bad({ agents: { groups: [groups.groups[0], groups.groups[0]] } })).toContain('duplicate agent group "dc"');
  });
});
