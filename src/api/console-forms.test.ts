import { describe, expect, it } from "vitest";
import { connectionFormSchemas, connectionIssues } from "./console-forms.js";

describe("connection forms from the YAML's schemas", () => {
  it("serves a JSON Schema for every connection type, with its fields and required ones", () => {
    const f = connectionFormSchemas();
    expect(f.types.map((t) => t.type).sort()).toEqual(["http", "kubernetes", "mcp", "mysql", "postgres", "redis", "ssh"]);
    const ssh = f.types.find((t) => t.type === "ssh")?.schema as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(ssh.properties)).toEqual(expect.arrayContaining(["host", "port", "user", "privateKey", "hostKey", "groups"]));
    expect(ssh.required).toEqual(expect.arrayContaining(["name", "host", "user", "hostKey"]));
    expect(f.secretFields).toContain("password");
  });

  it("names each problem by its field; a secret value under secrets stands in as stored", () => {
    const issues = connectionIssues({ connection: { type: "ssh", name: "web1", host: "h", port: 70000, user: "u", hostKey: "not a key" }, secrets: { password: "pw" } });
    expect(issues.map((i) => i.field).sort()).toEqual(["hostKey", "port"]);
    expect(connectionIssues({ connection: { type: "postgres", name: "db", host: "h", database: "d", user: "u", password: "literal-pw" }, secrets: {} }).map((i) => i.field)).toEqual(["password"]);
    expect(connectionIssues({ connection: { type: "postgres", name: "db", host: "h", database: "d", user: "u", bogus: 1 }, secrets: {} }).map((i) => i.field)).toEqual(["bogus"]);
    expect(connectionIssues({ connection: { type: "nope" }, secrets: {} }).map((i) => i.field)).toEqual(["type"]);
    expect(connectionIssues({ connection: { type: "http", name: "api", baseUrl: "https://api.example.com", auth: { bearer: "env:API_TOKEN" } }, secrets: {} })).toEqual([]);
    expect(connectionIssues({ connection: { type: "http", name: "api", baseUrl: "not a url" }, secrets: {} }).map((i) => i.field)).toEqual(["baseUrl"]);
  });
});
