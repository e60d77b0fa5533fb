import { describe, expect, it } from "vitest";
import { parseAnnounced } from "./agent.js";
import { allowedBy, announcedRules, parseAllowList, parseAllowRule } from "./allowlist.js";

describe("agent allowlist", () => {
  const rules = parseAllowList(["10.0.0.0/8:5432", "db.internal:*", "*.corp.example:22", "[fd00::/8]:6379", "192.168.1.7:3306"]);
  const ok = (host: string, port: number, address = host): string | undefined => allowedBy(rules, host, port, address)?.text;

  it("admits addresses in a CIDR on its port only", () => {
    expect(ok("10.1.2.3", 5432)).toBe("10.0.0.0/8:5432");
    expect(ok("10.1.2.3", 5433)).toBeUndefined();
    expect(ok("11.1.2.3", 5432)).toBeUndefined();
    expect(ok("192.168.1.7", 3306)).toBe("192.168.1.7:3306");
    expect(ok("192.168.1.8", 3306)).toBeUndefined();
  });

  it("a name is admitted by its own rule, or by the address the agent resolved it to", () => {
    expect(ok("DB.internal.", 1)).toBe("db.internal:*");
    expect(ok("evil-db.internal", 5432, "172.16.0.1")).toBeUndefined();
    expect(ok("orders.db", 5432, "10.9.9.9")).toBe("10.0.0.0/8:5432");
    expect(ok("web.corp.example", 22)).toBe("*.corp.example:22");
    expect(ok("corp.example", 22)).toBeUndefined();
    expect(ok("web.corp.example.evil", 22)).toBeUndefined();
  });

  it("IPv6 in brackets", () => {
    expect(ok("fd12::1", 6379)).toBe("[fd00::/8]:6379");
    expect(ok("fe80::1", 6379)).toBeUndefined();
    // An IPv4-mapped spelling of an address outside the list is not admitted by the v4 rules.
    expect(ok("::ffff:11.0.0.1", 5432)).toBeUndefined();
  });

  it("refuses malformed entries with the entry named", () => {
    for (const bad of ["10.0.0.0/8", "db:99999", "10.0.0.0/33:1", "[10.0.0.1]:1", "fd00::1:22", "bad host:1", "10.0.0.300:5"]) {
      expect(() => parseAllowRule(bad), bad).toThrow(bad.trim());
    }
    expect(parseAllowRule("*:*").port).toBeUndefined();
  });

  it("announced targets are exact: host (name or address) and port", () => {
    const announced = announcedRules([{ host: "db.internal", port: 5432 }, { host: "10.0.0.5", port: 22 }]);
    expect(allowedBy(announced, "db.internal", 5432, "10.0.0.9")).toBeDefined();
    expect(allowedBy(announced, "db.internal", 5433, "10.0.0.9")).toBeUndefined();
    expect(allowedBy(announced, "other", 5432, "10.0.0.5")).toBeUndefined();
    expect(allowedBy(announced, "10.0.0.5", 22, "10.0.0.5")).toBeDefined();
    expect(allowedBy(announced, "10.0.0.6", 22, "10.0.0.6")).toBeUndefined();
    expect(allowedBy([], "10.0.0.5", 22, "10.0.0.5")).toBeUndefined();
  });

  it("the announcement header parses, and anything malformed announces nothing", () => {
    const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString("base64url");
    expect(parseAnnounced(enc([{ host: "db", port: 5432 }]))).toEqual([{ host: "db", port: 5432 }]);
    expect(parseAnnounced(undefined)).toEqual([]);
    expect(parseAnnounced("%%%")).toEqual([]);
    expect(parseAnnounced(enc([{ host: "db", port: 0 }]))).toEqual([]);
    expect(parseAnnounced(enc({ host: "db", port: 1 }))).toEqual([]);
  });
});
