import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.js";
import { effectiveConfig, effectiveConfigYaml, redact } from "./config-show.js";

describe("config show redaction", () => {
  it("shows secret references, never values: SecretRefs, URL passwords, secret-named keys", () => {
    expect(redact({ kind: "literal", value: "hunter2" })).toBe("literal:<redacted>");
    expect(redact({ kind: "env", name: "PW" })).toBe("env:PW");
    expect(redact({ kind: "vault", mount: "kv", path: "db", field: "pw" })).toBe("vault:kv/db#pw");
    expect(redact({ kind: "aws-sm", secretId: "prod/db", field: "pw" })).toBe("aws-sm:prod/db#pw");
    expect(redact({ kind: "gcp-sm", name: "projects/p/secrets/s/versions/latest" })).toBe("gcp-sm:projects/p/secrets/s/versions/latest");
    expect(redact({ storeKey: { kind: "vault-transit", mount: "transit", name: "airlock-store" } })).toEqual({ storeKey: "vault-transit:transit/airlock-store" });
    expect(redact({ kind: "azure-kv", vault: "v", secret: "s", version: "0123456789abcdef0123456789abcdef" })).toBe("azure-kv:v/s/0123456789abcdef0123456789abcdef");
    expect(redact("postgres://app:s3cret-pw@db:5432/x", "url")).toBe("postgres://app:<redacted>@db:5432/x");
    expect(redact("plain-token-value", "token")).toBe("<redacted>");
    expect(redact("env:TOKEN", "token")).toBe("env:TOKEN");
    expect(redact("ssh-ed25519 AAAA", "hostKey")).toBe("ssh-ed25519 AAAA");
    expect(redact({ a: { b: { clientSecret: "cs-value" } } })).toEqual({ a: { b: { clientSecret: "<redacted>" } } });
    expect(redact(Buffer.from("raw"))).toBe("<redacted>");
  });

  it("renders the effective configuration: YAML connections and policies, then the console's", () => {
    const config = parseConfig({
      dataDir: "/tmp/x",
      store: { url: "postgres://airlock:store-pw-1@db/airlock" },
      connections: [{ name: "orders", type: "postgres", host: "h", port: 5432, database: "d", user: "u", password: "yaml-pw-1", groups: ["a"] }],
      policies: [{ name: "no-drop", match: { operations: ["drop"] }, action: "deny" }],
    });
    const e = effectiveConfig(config, [{ name: "live", type: "postgres", password: "stored:<encrypted>" }], [{ name: "p2", action: "deny" }]);
    const yaml = effectiveConfigYaml(e, "/etc/airlock.yaml");
    expect(yaml).toContain("From the console: connections [live], policies [p2]");
    expect(yaml).toContain("literal:<redacted>");
    expect(yaml).toContain("stored:<encrypted>");
    expect(yaml).not.toContain("yaml-pw-1");
    expect(yaml).not.toContain("store-pw-1");
    expect(yaml).not.toMatch(/kind: sql/u);
    const names = (e.config["connections"] as { name: string }[]).map((c) => c.name);
    expect(names).toEqual(["orders", "live"]);
    expect((e.config["policies"] as { name: string }[]).map((p) => p.name)).toEqual(["no-drop", "p2"]);
  });
});
