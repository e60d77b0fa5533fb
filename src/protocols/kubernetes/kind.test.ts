import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MaskRule } from "../../core/decision.js";
import { GatewayError } from "../../core/errors.js";
import type { HttpRequestHead, PlanMasker } from "../../core/http-kind.js";
import type { SessionInfo } from "../../core/session.js";
import { MaskChain, NULL_IN_TEXT, createMaskerFactory, maskJson } from "../../masking/index.js";
import { SECRET_DATA_COLUMNS } from "../../policy/kubernetes-policies.js";
import { kubernetesKind, statusBody } from "./kind.js";
import { LAST_APPLIED, maskK8sJson } from "./secrets.js";

const maskerFor = createMaskerFactory(Buffer.alloc(32, 7));

/** The plan masker the HTTP engine hands a kind, built from the real masking library. */
function planMasker(rules: MaskRule[]): PlanMasker {
  const chain = new MaskChain(rules.filter((r) => r.detectors.length > 0).map(maskerFor));
  const counts: Record<string, number> = {};
  return {
    rules,
    counts,
    text: (v) => {
      const r = chain.text(v, counts);
      return r === undefined ? v : r === null ? NULL_IN_TEXT : r;
    },
    json: (doc) => maskJson(doc, { chain, rules, maskerFor }, counts).text ?? doc,
  };
}

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string): string => Buffer.from(s, "base64").toString("utf8");
const detect: MaskRule = { rule: "pii", columns: [], detectors: ["email", "secret"], strategy: "redact" };
const whole: MaskRule = { rule: "hide", columns: [...SECRET_DATA_COLUMNS], detectors: [], strategy: "redact" };

const secret = (data: Record<string, string>, annotations: Record<string, string> = {}): Record<string, unknown> => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "db", namespace: "default", annotations },
  type: "Opaque",
  data,
});

describe("maskK8sJson: Secrets decoded, masked, encoded again", () => {
  it("masks what detectors find inside base64 data and keeps everything else byte-identical", () => {
    const binary = Buffer.from([0, 255, 1, 2, 3]).toString("base64");
    const doc = JSON.stringify(secret({ email: b64("ana.garcia@example.es"), plain: b64("hello world"), bin: binary }));
    const out = JSON.parse(maskK8sJson(doc, planMasker([detect]))) as { data: Record<string, string> };
    expect(unb64(out.data.email ?? "")).toBe("[EMAIL]");
    expect(out.data.plain).toBe(b64("hello world"));
    expect(out.data.bin).toBe(binary);
  });

  it("a whole-data rule masks every value, still valid base64, in objects, lists, watch events and tables", () => {
    const s = secret({ password: b64("hunter2-very-secret") });
    const docs = [s, { kind: "SecretList", apiVersion: "v1", items: [s, s] }, { type: "ADDED", object: s }, { kind: "Table", rows: [{ cells: ["db"], object: s }] }];
    for (const d of docs) {
      const text = maskK8sJson(JSON.stringify(d), planMasker([whole]));
      expect(text).not.toContain(b64("hunter2-very-secret"));
      expect(text).not.toContain("hunter2");
      const found = [...text.matchAll(/"password":"([^"]*)"/g)].map((m) => m[1] ?? "");
      expect(found.length).toBeGreaterThan(0);
      for (const v of found) {
        expect(Buffer.from(v, "base64").toString("base64")).toBe(v); // valid base64
        expect(unb64(v)).toMatch(/\[/);
      }
    }
  });

  it("masks the manifest kubectl apply keeps in the last-applied annotation", () => {
    const inner = JSON.stringify(secret({ password: b64("hunter2-very-secret") }));
    const doc = JSON.stringify(secret({ password: b64("hunter2-very-secret") }, { [LAST_APPLIED]: inner }));
    const text = maskK8sJson(doc, planMasker([whole]));
    expect(text).not.toContain(b64("hunter2-very-secret"));
    const out = JSON.parse(text) as { metadata: { annotations: Record<string, string> } };
    expect(JSON.parse(out.metadata.annotations[LAST_APPLIED] ?? "")).toMatchObject({ kind: "Secret" });
  });

  it("other objects go through the JSON masker; non-JSON as text", () => {
    const cm = JSON.stringify({ kind: "ConfigMap", data: { owner: "ana.garcia@example.es" } });
    expect(maskK8sJson(cm, planMasker([detect]))).not.toContain("ana.garcia");
    expect(maskK8sJson("contact ana.garcia@example.es", planMasker([detect]))).toBe("contact [EMAIL]");
  });

  it("never leaks a generated email in any Secret value, whatever else is there", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.string({ maxLength: 30 }), { maxKeys: 4 }), fc.stringMatching(/^[a-z]{3,8}$/), (extra, user) => {
        const email = `${user}.x@example.org`;
        const data: Record<string, string> = { mail: b64(`to: ${email}`) };
        for (const [k, v] of Object.entries(extra)) data[`k${k}`] = b64(v);
        const text = maskK8sJson(JSON.stringify({ kind: "SecretList", items: [secret(data)] }), planMasker([detect]));
        const values = (JSON.parse(text) as { items: { data: Record<string, string> }[] }).items[0]?.data ?? {};
        for (const v of Object.values(values)) expect(unb64(v)).not.toContain(email);
      }),
      { numRuns: 200 },
    );
  });
});

const session: SessionInfo = {
  id: "00000000-0000-4000-8000-000000000001",
  clientProtocol: "kubernetes",
  targetType: "kubernetes",
  connection: "c",
  principal: { kind: "service_account", id: "sa:a", name: "a", groups: [] },
  clientAddress: "127.0.0.1:1",
  startedAt: new Date(),
  attributes: {},
};
const connection = { type: "kubernetes" as const, name: "c", server: "https://127.0.0.1:6443", token: { kind: "literal" as const, value: "t" }, groups: [] };

function head(method: string, path: string, rawQuery = "", headers: Record<string, string> = {}, upgrade?: string): HttpRequestHead {
  return { method, path, normalizedPath: path, rawQuery, query: [...new URLSearchParams(rawQuery)], headers, ...(upgrade === undefined ? {} : { upgrade }) };
}

describe("kubernetesKind", () => {
  const kind = kubernetesKind();
  const classify = async (h: HttpRequestHead, body?: Buffer): Promise<Awaited<ReturnType<typeof kind.classify>>> => kind.classify(h, { connection, session, seq: 1, ...(body === undefined ? {} : { body }) });

  it("classifies into a k8s.request with the create's name from its body", async () => {
    const c = await classify(head("POST", "/api/v1/namespaces/dev/pods"), Buffer.from(JSON.stringify({ metadata: { name: "web-3" } })));
    expect(c).toMatchObject({ ok: true, event: { type: "k8s.request", verb: "create", resource: "pods", namespace: "dev", name: "web-3" } });
  });

  it("refuses path tricks, SPDY-less exec, port-forward, protobuf", async () => {
    for (const h of [
      head("GET", "/api/v1/namespaces/dev/../kube-system/secrets"),
      head("POST", "/api/v1/namespaces/dev/pods/p/exec", "command=sh"),
      head("GET", "/api/v1/namespaces/dev/pods/p/portforward", "ports=80", {}, "websocket"),
      head("GET", "/api/v1/namespaces/dev/pods", "", { accept: "application/vnd.kubernetes.protobuf" }),
      head("POST", "/api/v1/namespaces/dev/pods", "", { "content-type": "application/vnd.kubernetes.protobuf" }),
      head("GET", "/api/v1/namespaces/dev/pods/p/exec", "", {}, "websocket"),
    ]) {
      const c = await classify(h);
      expect(c.ok, `${h.method} ${h.path}`).toBe(false);
    }
    const spdy = await classify(head("POST", "/api/v1/namespaces/dev/pods/p/exec", "command=sh", {}, "spdy/3.1"));
    expect(spdy.ok).toBe(false);
    if (!spdy.ok) expect(spdy.refusal.message).toMatch(/SPDY/);
  });

  it("puts the gateway's credential in the upstream, and lists it as a secret to scrub", async () => {
    const up = await kind.upstream(connection, () => Promise.resolve("cluster-token-123\n"));
    expect(up.headers.authorization).toBe("Bearer cluster-token-123");
    expect(up.secrets).toContain("cluster-token-123");
    expect(up.tls?.rejectUnauthorized).toBe(true);
  });

  it("renders refusals as a Kubernetes Status naming the rule", () => {
    const body = JSON.parse(statusBody({ type: "deny", code: "GW_POLICY_DENIED", rule: "no-ns-delete", message: "delete namespaces prod is not allowed here" }, 403)) as Record<string, unknown>;
    expect(body).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "Forbidden", code: 403, message: "airlock: delete namespaces prod is not allowed here (rule: no-ns-delete)" });
    expect(JSON.parse(statusBody(new GatewayError("GW_AUTH_INVALID", "bad token"), 401))).toMatchObject({ reason: "Unauthorized", code: 401 });
  });
});
