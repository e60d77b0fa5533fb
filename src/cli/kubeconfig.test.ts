import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfig } from "../runtime/config.js";
import { defaultServiceAccount, renderKubeconfig } from "./kubeconfig.js";

describe("airlock kubeconfig", () => {
  it("renders a kubeconfig whose server is the gateway + /CONNECTION and whose user is the token", () => {
    const doc = parse(renderKubeconfig({ connection: "prod", gatewayUrl: "http://127.0.0.1:18080/", token: "tok.en", namespace: "web", caPem: "PEM" })) as Record<string, unknown>;
    expect(doc).toMatchObject({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "airlock-prod",
      clusters: [{ name: "airlock-prod", cluster: { server: "http://127.0.0.1:18080/prod", "certificate-authority-data": Buffer.from("PEM").toString("base64") } }],
      users: [{ name: "airlock-prod", user: { token: "tok.en" } }],
      contexts: [{ name: "airlock-prod", context: { cluster: "airlock-prod", user: "airlock-prod", namespace: "web" } }],
    });
  });

  it("defaults to the only service account that may use the connection", () => {
    const base = { connections: [{ name: "k", type: "kubernetes", server: "https://h:6443", token: "t", groups: ["agents"] }, { name: "db", type: "postgres", host: "h", database: "d", user: "u" }] };
    expect(defaultServiceAccount(parseConfig({ ...base, serviceAccounts: [{ name: "bot", groups: ["agents"] }, { name: "other", groups: ["x"] }] }), "k")).toBe("bot");
    expect(() => defaultServiceAccount(parseConfig({ ...base, serviceAccounts: [{ name: "a", groups: ["agents"] }, { name: "b", groups: ["agents"] }] }), "k")).toThrow(/several/);
    expect(() => defaultServiceAccount(parseConfig(base), "db")).toThrow(/not kubernetes/);
    expect(() => defaultServiceAccount(parseConfig(base), "nope")).toThrow(/no connection/);
  });
});
