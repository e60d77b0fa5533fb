import { describe, expect, it } from "vitest";
import type { SessionInfo } from "../core/session.js";
import { k8sEvent } from "../protocols/kubernetes/event.js";
import { classifyK8sRequest } from "../protocols/kubernetes/request.js";
import { parseConfig, type RawConfig } from "../runtime/config.js";
import { K8sPolicyEvaluator, SECRET_DATA_COLUMNS } from "./kubernetes-policies.js";
import { SshPolicyEvaluator } from "./ssh-policies.js";

const session: SessionInfo = {
  id: "00000000-0000-4000-8000-000000000001",
  clientProtocol: "http",
  targetType: "kubernetes",
  connection: "cluster",
  principal: { kind: "service_account", id: "sa:a", name: "a", groups: ["agents"] },
  clientAddress: "127.0.0.1:1",
  startedAt: new Date(),
  attributes: {},
};

function setup(policies: RawConfig["policies"]): { k8s: K8sPolicyEvaluator; ssh: SshPolicyEvaluator } {
  const config = parseConfig({
    connections: [{ name: "cluster", type: "kubernetes", server: "https://10.0.0.1:6443", token: "env:T", groups: ["agents"] }],
    policies,
  });
  return { k8s: new K8sPolicyEvaluator(config.policies), ssh: new SshPolicyEvaluator(config.policies) };
}

async function judge(ev: K8sPolicyEvaluator, method: string, path: string, query = "", name?: string): Promise<string> {
  const s = ev.openSession(session);
  const d = await s?.evaluate(k8sEvent(session, 1, classifyK8sRequest(method, path, query), name === undefined ? {} : { name }));
  if (d === undefined) return "none";
  if (d.type === "hold" || d.type === "defer") return `${d.type}:${d.rule}`;
  if (d.type === "deny") return `deny:${d.rule ?? ""}`;
  return d.plan === undefined ? `allow${d.rule === undefined ? "" : `:${d.rule}`}` : `mask:${d.plan.masks.map((m) => m.rule).join(",")}`;
}

describe("K8sPolicyEvaluator", () => {
  const { k8s } = setup([
    { name: "no-ns-delete", match: { verbs: ["delete"], resources: ["namespaces"] }, action: "deny" },
    { name: "prod-exec", match: { verbs: ["exec"], namespaces: ["prod-*"] }, action: "require_approval", approvers: ["sre"] },
    { name: "no-secrets-in-kube-system", match: { verbs: ["get"], resources: ["secrets"], namespaces: ["kube-system"] }, action: "deny" },
    { name: "no-raw-proxy", match: { verbs: ["proxy"] }, action: "deny" },
    { name: "no-scale-api", match: { resources: ["apps/deployments/scale"], names: ["api"] }, action: "deny" },
    { name: "no-version", match: { resources: ["/version"] }, action: "deny" },
    { name: "hide-secret-data", match: { resources: ["secrets"] }, action: "mask" },
  ]);

  it.each([
    ["DELETE", "/api/v1/namespaces/prod", "", "deny:no-ns-delete"],
    ["DELETE", "/api/v1/namespaces", "", "deny:no-ns-delete"], // deletecollection is a delete
    ["GET", "/api/v1/namespaces/prod", "", "allow"],
    ["GET", "/api/v1/namespaces/prod-eu/pods/p/exec", "command=sh", "hold:prod-exec"],
    ["POST", "/api/v1/namespaces/prod-eu/pods/p/attach", "", "hold:prod-exec"], // attach is an exec
    ["GET", "/api/v1/namespaces/dev/pods/p/exec", "command=sh", "allow"],
    ["GET", "/api/v1/namespaces/kube-system/secrets/x", "", "deny:no-secrets-in-kube-system"],
    ["GET", "/api/v1/namespaces/kube-system/secrets", "", "deny:no-secrets-in-kube-system"], // list is a get
    ["GET", "/api/v1/namespaces/kube-system/secrets", "watch=true", "deny:no-secrets-in-kube-system"],
    ["GET", "/api/v1/secrets", "", "deny:no-secrets-in-kube-system"], // all namespaces include kube-system
    ["GET", "/api/v1/namespaces/default/secrets/x", "", "mask:hide-secret-data"],
    ["GET", "/api/v1/namespaces/default/pods/p/proxy/x", "", "deny:no-raw-proxy"],
    ["GET", "/api/v1/proxy/namespaces/default/pods/p/x", "", "deny:no-raw-proxy"],
    ["GET", "/api/v1/namespaces/default/services/web:80/proxy/", "", "deny:no-raw-proxy"],
    ["PUT", "/apis/apps/v1/namespaces/default/deployments/api/scale", "", "deny:no-scale-api"],
    ["PATCH", "/apis/apps/v1/namespaces/default/deployments/api/scale", "", "deny:no-scale-api"],
    ["PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale", "", "allow"],
    ["GET", "/version", "", "deny:no-version"],
    ["GET", "/api", "", "allow"],
  ])("%s %s?%s → %s", async (method, path, query, want) => {
    expect(await judge(k8s, method, path, query)).toBe(want);
  });

  it("an allow with namespaces or names never covers a request for all of them", async () => {
    const { k8s: ev } = setup([
      { name: "dev-only", match: { namespaces: ["dev"] }, action: "allow" },
      { name: "known-names", match: { names: ["web-*"] }, action: "allow" },
      { name: "rest", action: "deny" },
    ]);
    expect(await judge(ev, "GET", "/api/v1/namespaces/dev/pods")).toBe("allow:dev-only");
    expect(await judge(ev, "GET", "/api/v1/pods")).toBe("deny:rest");
    expect(await judge(ev, "GET", "/api/v1/namespaces/x/pods/web-1")).toBe("allow:known-names");
    expect(await judge(ev, "DELETE", "/api/v1/namespaces/x/pods")).toBe("deny:rest");
    // A create names its object in the body: the engine passes the name it read.
    expect(await judge(ev, "POST", "/api/v1/namespaces/x/pods", "", "web-2")).toBe("allow:known-names");
    expect(await judge(ev, "POST", "/api/v1/namespaces/x/pods")).toBe("deny:rest");
  });

  it("a refusing names rule covers collection requests; a field selector pins the name", async () => {
    const { k8s: ev } = setup([{ name: "no-db-secret", match: { resources: ["secrets"], names: ["db-*"] }, action: "deny" }]);
    expect(await judge(ev, "GET", "/api/v1/namespaces/x/secrets")).toBe("deny:no-db-secret");
    expect(await judge(ev, "GET", "/api/v1/namespaces/x/secrets", "fieldSelector=metadata.name%3Dweb")).toBe("allow");
    expect(await judge(ev, "GET", "/api/v1/namespaces/x/secrets", "fieldSelector=metadata.name%3Ddb-main")).toBe("deny:no-db-secret");
    expect(await judge(ev, "GET", "/api/v1/namespaces/x/secrets/web")).toBe("allow");
  });

  it("a mask policy with no columns or detectors masks Secrets' data whole", async () => {
    const { k8s: ev } = setup([{ name: "m", match: { resources: ["secrets"] }, action: "mask" }]);
    const s = ev.openSession(session);
    const d = await s?.evaluate(k8sEvent(session, 1, classifyK8sRequest("GET", "/api/v1/namespaces/x/secrets/y", "")));
    expect(d).toMatchObject({ type: "allow", plan: { masks: [{ rule: "m", columns: SECRET_DATA_COLUMNS, detectors: [] }] } });
  });

  it("does not judge other targets' sessions", () => {
    const { k8s: ev } = setup([{ name: "x", match: { verbs: ["delete"] }, action: "deny" }]);
    expect(ev.openSession({ ...session, targetType: "ssh" })).toBeUndefined();
  });

  it("shell rules on a kubernetes connection judge exec commands (the SSH guardrails)", async () => {
    const { ssh } = setup([{ name: "no-rm", match: { commands: ["rm"] }, action: "deny" }]);
    const s = ssh.openSession(session);
    expect(await s?.evaluate({ type: "ssh.exec", session, seq: 1, command: "sh -c 'rm -rf /data'" })).toMatchObject({ type: "deny", rule: "no-rm" });
    expect(await s?.evaluate({ type: "ssh.exec", session, seq: 2, command: "ls /" })).toMatchObject({ type: "allow" });
  });

  it("config: a kubernetes connection needs a credential, and a kubernetes key cannot go to a shell-only policy", () => {
    expect(() => parseConfig({ connections: [{ name: "c", type: "kubernetes", server: "https://h:6443" }] })).toThrow(/token or clientCert/);
    expect(() => parseConfig({ connections: [{ name: "c", type: "kubernetes", server: "https://h:6443/x", token: "t" }] })).toThrow(/no path/);
    expect(() => parseConfig({ connections: [{ name: "c", type: "kubernetes", server: "https://h:6443", token: "t", clientCert: "file:x" }] })).toThrow(/together/);
  });
});

describe("K8sPolicyEvaluator: CEL when:", () => {
  const { k8s } = setup([
    { name: "prod-deletes-in-hours", match: { verbs: ["delete"] }, when: 'ns.startsWith("prod") && (hour < 9 || hour >= 17)', action: "deny" },
    { name: "no-agent-secret-names", match: { resources: ["secrets"] }, when: 'name.contains("root") && "agents" in groups && verb == "get" && resource == "secrets"', action: "deny" },
  ]);

  it("judges verb, resource, namespace, name and groups", async () => {
    const atTen = new Date().getUTCHours() >= 9 && new Date().getUTCHours() < 17;
    expect(await judge(k8s, "DELETE", "/api/v1/namespaces/prod-eu/pods/p")).toBe(atTen ? "allow" : "deny:prod-deletes-in-hours");
    expect(await judge(k8s, "DELETE", "/api/v1/namespaces/dev/pods/p")).toBe("allow");
    expect(await judge(k8s, "GET", "/api/v1/namespaces/dev/secrets/root-ca")).toBe("deny:no-agent-secret-names");
    expect(await judge(k8s, "GET", "/api/v1/namespaces/dev/secrets/app")).toBe("allow");
  });

  it("what a request does not pin (ns of all namespaces, name of a list) holds for refusing policies, never for allow ones", async () => {
    const { k8s: ev } = setup([
      { name: "prod-for-sre", match: { resources: ["configmaps", "namespaces"] }, when: 'ns.startsWith("prod") && !("sre" in groups)', action: "deny" },
      { name: "db-secret", match: { resources: ["secrets"] }, when: 'name == "db"', action: "deny" },
      { name: "dev-ok", match: { resources: ["pods"] }, when: 'ns == "dev"', action: "allow" },
    ]);
    expect(await judge(ev, "GET", "/api/v1/configmaps")).toBe("deny:prod-for-sre");
    expect(await judge(ev, "GET", "/api/v1/namespaces/dev/configmaps")).toBe("allow");
    expect(await judge(ev, "GET", "/api/v1/namespaces/prod-eu/configmaps")).toBe("deny:prod-for-sre");
    // A Namespace object's ns is its name; a list of namespaces may show any.
    expect(await judge(ev, "DELETE", "/api/v1/namespaces/prod-eu")).toBe("deny:prod-for-sre");
    expect(await judge(ev, "DELETE", "/api/v1/namespaces/dev")).toBe("allow");
    expect(await judge(ev, "GET", "/api/v1/namespaces")).toBe("deny:prod-for-sre");
    // A list names no object; a field selector pins it.
    expect(await judge(ev, "GET", "/api/v1/namespaces/dev/secrets")).toBe("deny:db-secret");
    expect(await judge(ev, "GET", "/api/v1/namespaces/dev/secrets", "fieldSelector=metadata.name%3Dcache")).toBe("allow");
    expect(await judge(ev, "GET", "/api/v1/namespaces/dev/secrets/cache")).toBe("allow");
    // An allow policy never applies to what it cannot see.
    expect(await judge(ev, "GET", "/api/v1/pods")).toBe("allow");
    expect(await judge(ev, "GET", "/api/v1/namespaces/dev/pods")).toBe("allow:dev-ok");
    // The groups decide first: sre is never refused by prod-for-sre, whatever ns is.
    const sre = { ...session, principal: { ...session.principal, groups: ["agents", "sre"] } };
    expect((await ev.openSession(sre)?.evaluate(k8sEvent(sre, 1, classifyK8sRequest("GET", "/api/v1/configmaps", ""))))?.type).toBe("allow");
  });

  it("a fact of another kind is a configuration error naming the key", () => {
    expect(() => setup([{ name: "x", match: { verbs: ["*"] }, when: 'path == "/"', action: "deny" }])).toThrow(/policies\[0\]\.when: .*path.*facts of kubernetes policies/);
  });
});
