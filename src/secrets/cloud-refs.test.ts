import { describe, expect, it } from "vitest";
import { describeSecretRef } from "../core/secret.js";
import { secretRefSchema } from "../runtime/schema-parts.js";
import { iniSection } from "./aws-sm.js";
import { pickField } from "./cache.js";
import { crc32c } from "./gcp-sm.js";

describe("cloud secret references", () => {
  it("parse aws-sm:, gcp-sm: and azure-kv: and show back as written", () => {
    const cases: [string, unknown, string?][] = [
      ["aws-sm:prod/orders/db#password", { kind: "aws-sm", secretId: "prod/orders/db", field: "password" }],
      ["aws-sm:prod/orders/db", { kind: "aws-sm", secretId: "prod/orders/db" }],
      ["aws-sm:arn:aws:secretsmanager:eu-central-1:123456789012:secret:db-AbCdEf#pw", { kind: "aws-sm", secretId: "arn:aws:secretsmanager:eu-central-1:123456789012:secret:db-AbCdEf", field: "pw" }],
      ["gcp-sm:projects/acme/secrets/db/versions/3#pw", { kind: "gcp-sm", name: "projects/acme/secrets/db/versions/3", field: "pw" }],
      ["gcp-sm:projects/acme/secrets/db", { kind: "gcp-sm", name: "projects/acme/secrets/db/versions/latest" }, "gcp-sm:projects/acme/secrets/db/versions/latest"],
      ["azure-kv:acme-prod/db-password", { kind: "azure-kv", vault: "acme-prod", secret: "db-password" }],
      ["azure-kv:acme-prod/db/0123456789abcdef0123456789abcdef#user", { kind: "azure-kv", vault: "acme-prod", secret: "db", version: "0123456789abcdef0123456789abcdef", field: "user" }],
    ];
    for (const [text, ref, shown] of cases) {
      const parsed = secretRefSchema.parse(text);
      expect(parsed, text).toEqual(ref);
      expect(describeSecretRef(parsed)).toBe(shown ?? text);
    }
  });

  it("refuse malformed references with a message that says the form", () => {
    const bad: [string, string][] = [
      ["aws-sm:", "SECRET_ID[#FIELD]"],
      ["aws-sm:db#", "SECRET_ID[#FIELD]"],
      ["aws-sm:db name", "SECRET_ID[#FIELD]"],
      ["gcp-sm:acme/db", "projects/PROJECT/secrets/SECRET"],
      ["gcp-sm:projects/acme/secrets/db/versions/../x", "projects/PROJECT/secrets/SECRET"],
      ["gcp-sm:projects/acme/secrets/db/versions/latest#", "projects/PROJECT/secrets/SECRET"],
      ["azure-kv:acme-prod", "VAULT/SECRET"],
      ["azure-kv:acme/db/notahexversion", "VAULT/SECRET"],
      ["azure-kv:acme/db_name", "VAULT/SECRET"],
    ];
    for (const [text, form] of bad) {
      const r = secretRefSchema.safeParse(text);
      expect(r.success, text).toBe(false);
      expect(r.error?.issues[0]?.message, text).toContain(form);
    }
  });
});

describe("pickField", () => {
  it("takes the whole text, or a key of a JSON object secret", () => {
    expect(pickField("s3cret", undefined, "x")).toBe("s3cret");
    expect(pickField('{"username":"app","password":"pw","port":5432}', "password", "x")).toBe("pw");
    expect(pickField('{"port":5432}', "port", "x")).toBe("5432");
    expect(pickField({ password: "pw" }, "password", "x")).toBe("pw");
  });

  it("says what is missing and never the value", () => {
    expect(() => pickField("not-json-s3cret", "password", "aws-sm:a#password")).toThrow(/aws-sm:a#password: #password needs a JSON object secret/);
    expect(() => pickField('{"user":"s3cret"}', "password", "r")).toThrow(/no field "password"/);
    expect(() => pickField('{"user":"s3cret"}', "__proto__", "r")).toThrow(/no field/);
    expect(() => pickField({ a: "1", b: "2" }, undefined, "r")).toThrow(/#FIELD/);
    for (const f of [() => pickField("not-json-s3cret", "p", "r"), () => pickField('{"user":"s3cret"}', "p", "r")]) {
      let message = "";
      try {
        f();
      } catch (e) {
        message = e instanceof Error ? e.message : String(e);
      }
      expect(message).not.toBe("");
      expect(message).not.toContain("s3cret");
    }
  });
});

describe("helpers", () => {
  it("CRC-32C matches the published check value", () => {
    // RFC 3720 B.4 / the CRC catalogue: CRC-32C("123456789") = 0xE3069283.
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
  });

  it("reads a profile of the AWS shared credentials file", () => {
    const text = "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\n[ci]\n# comment\naws_access_key_id=AKIA2\naws_secret_access_key=s2\naws_session_token=t2\n";
    expect(Object.fromEntries(iniSection(text, "ci"))).toEqual({ aws_access_key_id: "AKIA2", aws_secret_access_key: "s2", aws_session_token: "t2" });
    expect(iniSection(text, "default").get("aws_access_key_id")).toBe("AKIA1");
    expect(iniSection(text, "nope").size).toBe(0);
  });
});

describe("configuration of the secret stores", () => {
  const base = { host: "db", database: "d", user: "u", type: "postgres" as const };

  it("takes secrets.aws/gcp/azure and dynamicCredentials", async () => {
    const { parseConfig } = await import("../runtime/config.js");
    const c = parseConfig({
      secrets: {
        aws: { region: "eu-central-1" },
        gcp: { credentials: "file:/etc/airlock/gcp-sa.json" },
        azure: { tenantId: "t-1", clientId: "c-1", clientSecret: "env:AZURE_CLIENT_SECRET" },
        vault: { address: "http://127.0.0.1:8200", auth: { token: "env:VAULT_TOKEN" } },
      },
      connections: [
        { ...base, name: "a", password: "aws-sm:prod/orders/db#password" },
        { ...base, name: "b", dynamicCredentials: "vault-db:database/orders-readonly" },
      ],
    });
    expect(c.secrets.aws?.region).toBe("eu-central-1");
    expect(c.secrets.azure?.timeout).toBe(10_000);
    const b = c.connections[1];
    expect(b?.type === "postgres" ? b.dynamicCredentials : undefined).toEqual({ kind: "vault-db", mount: "database", role: "orders-readonly" });
  });

  it("says what is wrong", async () => {
    const { parseConfig } = await import("../runtime/config.js");
    const err = (doc: unknown): string => {
      try {
        parseConfig(doc);
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
      return "";
    };
    expect(err({ connections: [{ ...base, name: "b", dynamicCredentials: "vault-db:database" }] })).toContain("vault-db:MOUNT/ROLE");
    expect(err({ secrets: { aws: { accessKeyId: "AKIA1" } } })).toContain("accessKeyId and secretAccessKey go together");
    expect(err({ secrets: { azure: { tenantId: "t", clientId: "c", clientSecret: "env:X", vaultUrl: "https://kv.example" } } })).toContain("secrets.azure.vaultUrl");
  });
});
