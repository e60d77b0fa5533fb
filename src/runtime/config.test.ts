import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isGatewayError } from "../core/errors.js";
import { configJsonSchema, parseConfig, parseListenAddress } from "./config.js";
import { parseDuration } from "./duration.js";

function configError(doc: unknown): string {
  try {
    parseConfig(doc);
  } catch (e) {
    if (isGatewayError(e) && e.code === "GW_CONFIG") return e.message;
    throw e;
  }
  throw new Error("expected a configuration error");
}

describe("configuration", () => {
  it("parses the contract's example keys with defaults", () => {
    const c = parseConfig({
      listen: { api: "127.0.0.1:8780", postgres: "127.0.0.1:15432" },
      serviceAccounts: [{ name: "ci-bot", groups: ["agents"] }],
      connections: [
        { name: "orders", type: "postgres", host: "127.0.0.1", database: "orders", user: "app", password: "env:ORDERS_PG_PASSWORD", groups: ["agents"] },
      ],
    });
    expect(c.listen.postgres).toEqual({ host: "127.0.0.1", port: 15432 });
    expect(c.connections[0]).toMatchObject({ port: 5432, sslmode: "prefer", password: { kind: "env", name: "ORDERS_PG_PASSWORD" } });
    expect(c.tokens.defaultTtl).toBe(15 * 60_000);
  });

  it("names the bad key in its errors", () => {
    expect(configError({ connections: [{ name: "x", type: "postgres", host: "h", database: "d", user: "u", port: "5432" }] })).toContain(
      "connections[0].port",
    );
    expect(configError({ listen: { postgres: "nonsense" } })).toContain("listen.postgres");
    expect(configError({ unknownKey: 1 })).toContain("unknownKey");
    expect(configError({ serviceAccounts: [{ name: "a" }, { name: "a" }] })).toContain("serviceAccounts[1].name");
    expect(configError({ connections: [{ name: "m1", type: "mcp", host: "h" }] })).toContain('connections[0]: Unrecognized key: "host"');
    expect(configError({ connections: [{ name: "m1", type: "mcp" }] })).toContain("needs exactly one of url (Streamable HTTP) or command (stdio)");
    expect(configError({ connections: [{ name: "m1", type: "mcp", url: "https://x/mcp", env: { K: "v" } }] })).toContain("env and cwd belong to a stdio upstream");
    expect(configError({ connections: [{ name: "m1", type: "nope" }] })).toContain('unknown connection type "nope"');
    expect(
      configError({ connections: [{ name: "m1", type: "mcp", command: "x" }], policies: [{ name: "p", connections: ["m1"], match: { tools: ["t"], arguments: { "$.a": "~~ 1" } }, action: "deny" }] }),
    ).toContain("policies[0].match.arguments");
    expect(
      configError({
        connections: [{ name: "web1", type: "ssh", host: "h", user: "u", password: "p", hostKey: "ssh-ed25519 AAAA" }],
        policies: [{ name: "p", connections: ["web1"], match: { arguments: { "$.a": "== 1" } }, action: "deny" }],
      }),
    ).toContain("a map of JSON paths is for mcp connections");
    expect(configError({ connections: [{ name: "web1", type: "ssh", host: "h", user: "u", password: "p" }] })).toContain("connections[0].hostKey:");
    expect(configError({ connections: [{ name: "web1", type: "ssh", host: "h", user: "u", hostKey: "ssh-ed25519 AAAA" }] })).toContain("needs privateKey or password");
    expect(configError({ serviceAccounts: [{ name: "a", sshPublicKeys: ["not a key"] }] })).toContain("serviceAccounts[0].sshPublicKeys[0]");
    expect(configError({ policies: [{ name: "m", action: "mask", detectors: ["emial"] }] })).toContain("policies[0].detectors[0]");
  });

  it("takes phoneRegions on mask policies: ISO 3166 codes the phone detector knows, the unknown one named", () => {
    const ok = parseConfig({ policies: [{ name: "m", action: "mask", detectors: ["phone"], phoneRegions: ["PT", "se"] }] }, "/etc/airlock/airlock.yaml");
    expect(ok.policies[0]?.phoneRegions).toEqual(["PT", "se"]);
    const bad = configError({ policies: [{ name: "m", action: "mask", detectors: ["phone"], phoneRegions: ["PT", "XX"] }] });
    expect(bad).toContain("policies[0].phoneRegions[1]");
    expect(bad).toContain('"XX"');
    expect(bad).not.toContain("phoneRegions[0]");
    expect(configError({ policies: [{ name: "m", action: "mask", detectors: ["email"], phoneRegions: ["PT"] }] })).toContain("add phone to detectors");
    expect(configError({ policies: [{ name: "d", action: "deny", phoneRegions: ["PT"] }] })).toContain("belong to mask policies");
  });

  it("resolves file: references relative to the config file", () => {
    const c = parseConfig(
      { connections: [{ name: "o", type: "postgres", host: "h", database: "d", user: "u", password: "file:secrets/pw" }] },
      "/etc/airlock/airlock.yaml",
    );
    const conn = c.connections[0];
    expect(conn?.type === "postgres" ? conn.password : undefined).toEqual({ kind: "file", path: "/etc/airlock/secrets/pw" });
    expect(c.dataDir).toBe("/etc/airlock/.airlock");
  });

  it("parses listen addresses and durations", () => {
    expect(parseListenAddress("[::1]:5432")).toEqual({ host: "::1", port: 5432 });
    expect(parseListenAddress(":5432")).toEqual({ host: "127.0.0.1", port: 5432 });
    expect(parseListenAddress("host:70000")).toBeUndefined();
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(() => parseDuration("15 minutes")).toThrow();
  });

  it("ships a JSON Schema that matches the code (regenerate: npx airlock config schema > schema/airlock.schema.json)", () => {
    const shipped = JSON.parse(readFileSync(new URL("../../schema/airlock.schema.json", import.meta.url), "utf8")) as unknown;
    expect(shipped).toEqual(JSON.parse(JSON.stringify(configJsonSchema())));
  });
});
