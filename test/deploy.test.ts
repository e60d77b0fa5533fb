/**
 * Deploy files, checked offline (this machine has no Docker daemon, no `docker compose`, no helm):
 * docker-compose.yml and the Helm chart are parsed as YAML; the chart's templates are rendered
 * by a small renderer for exactly the template constructs the chart uses (include, toYaml,
 * nindent, sha256sum, range over a list, .Values/.Release fields) — anything else fails the
 * test, so the renderer cannot silently skip a construct; and every airlock configuration
 * inside (Compose's, the chart's ConfigMap) is validated by Airlock's own config loader.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments, stringify } from "yaml";
import { parseConfig } from "../src/runtime/config.js";

const repo = join(import.meta.dirname, "..");
const chart = join(repo, "deploy", "helm", "airlock");

type Json = Record<string, unknown>;

function get(root: unknown, path: string): unknown {
  let v: unknown = root;
  for (const k of path.split(".").filter((p) => p !== "")) {
    if (typeof v !== "object" || v === null || !(k in v)) throw new Error(`template refers to a missing value: ${path}`);
    v = (v as Json)[k];
  }
  return v;
}

function nindent(s: string, n: number): string {
  return `\n${s
    .replace(/\n$/, "")
    .split("\n")
    .map((l) => " ".repeat(n) + l)
    .join("\n")}`;
}

/** Render one template with the subset of Go templates the chart uses; throws on anything else. */
function render(text: string, ctx: { Values: Json; Release: Json }, defines: ReadonlyMap<string, string>, dot: unknown = ctx): string {
  // `{{-` trims the whitespace before it, `-}}` the whitespace after.
  let t = text.replace(/\s*\{\{-\s*/g, "{{ ").replace(/\s*-\}\}\s*/g, " }}");
  t = t.replace(/\{\{ range (\.Values\.[\w.]+) \}\}([\s\S]*?)\{\{ end \}\}/g, (_, path: string, body: string) => {
    const list = get(ctx, path.slice(1));
    if (!Array.isArray(list)) throw new Error(`range over a non-list ${path}`);
    return list.map((item: unknown) => render(body, ctx, defines, item)).join("");
  });
  return t.replace(/\{\{ ([^}]*?) \}\}/g, (_, expr: string) => {
    const [head = "", ...pipes] = expr.split("|").map((p) => p.trim());
    let value: string;
    let m: RegExpMatchArray | null;
    if ((m = /^include "([\w.]+)" \.$/.exec(head)) !== null) {
      const body = defines.get(m[1] ?? "");
      if (body === undefined) throw new Error(`no define ${m[1] ?? ""}`);
      value = render(body, ctx, defines).trim();
    } else if ((m = /^toYaml (\.[\w.]+)$/.exec(head)) !== null) value = stringify(get(ctx, (m[1] ?? "").slice(1))).trimEnd();
    else if ((m = /^\.(Values|Release)\.([\w.]+)$/.exec(head)) !== null) value = String(get(ctx, `${m[1] ?? ""}.${m[2] ?? ""}`));
    else if ((m = /^\.(\w+)$/.exec(head)) !== null) value = String(get(dot, m[1] ?? ""));
    else throw new Error(`unsupported template expression: ${expr}`);
    for (const p of pipes) {
      if ((m = /^nindent (\d+)$/.exec(p)) !== null) value = nindent(value, Number(m[1]));
      else if (p === "sha256sum") value = createHash("sha256").update(value).digest("hex");
      else throw new Error(`unsupported pipe: ${p}`);
    }
    return value;
  });
}

function defines(): Map<string, string> {
  const out = new Map<string, string>();
  const text = readFileSync(join(chart, "templates", "_helpers.tpl"), "utf8");
  for (const m of text.matchAll(/\{\{- define "([\w.]+)" -\}\}([\s\S]*?)\{\{- end -\}\}/g)) out.set(m[1] ?? "", m[2] ?? "");
  return out;
}

function renderChart(): Json[] {
  const values = parseYaml(readFileSync(join(chart, "values.yaml"), "utf8")) as Json;
  const ctx = { Values: values, Release: { Name: "prod" } };
  const docs: Json[] = [];
  for (const f of readdirSync(join(chart, "templates")).filter((n) => n.endsWith(".yaml"))) {
    const rendered = render(readFileSync(join(chart, "templates", f), "utf8"), ctx, defines());
    for (const d of parseAllDocuments(rendered)) {
      expect(d.errors, `${f}: ${rendered}`).toEqual([]);
      docs.push(d.toJSON() as Json);
    }
  }
  return docs;
}

describe("Helm chart (rendered offline)", () => {
  const docs = renderChart();
  const byKind = (k: string): Json => {
    const d = docs.find((x) => x["kind"] === k);
    if (d === undefined) throw new Error(`no ${k}`);
    return d;
  };

  it("renders a Deployment with replicas, probes, a non-root user and the instance id from the pod name", () => {
    const dep = byKind("Deployment");
    expect(get(dep, "spec.replicas")).toBe(2);
    const pod = get(dep, "spec.template.spec") as Json;
    expect(get(pod, "securityContext.runAsNonRoot")).toBe(true);
    const [c] = get(pod, "containers") as Json[];
    expect(get(c, "livenessProbe.httpGet.path")).toBe("/healthz");
    expect(get(c, "readinessProbe.httpGet.path")).toBe("/readyz");
    const env = get(c, "env") as Json[];
    expect(env.find((e) => e["name"] === "AIRLOCK_INSTANCE_ID")).toMatchObject({ valueFrom: { fieldRef: { fieldPath: "metadata.name" } } });
    expect(env.find((e) => e["name"] === "AIRLOCK_STORE_URL")).toMatchObject({ valueFrom: { secretKeyRef: { name: "airlock-store", key: "url" } } });
    expect(get(dep, "spec.selector.matchLabels")).toEqual(get(dep, "spec.template.metadata.labels"));
  });

  it("renders a Service, a PodDisruptionBudget, and a ConfigMap whose airlock.yaml Airlock's loader accepts", () => {
    expect(get(byKind("Service"), "spec.ports")).toHaveLength(2);
    expect(get(byKind("PodDisruptionBudget"), "spec.minAvailable")).toBe(1);
    const yaml = (get(byKind("ConfigMap"), "data") as Json)["airlock.yaml"];
    expect(typeof yaml).toBe("string");
    const config = parseConfig(parseYaml(String(yaml)) as Json, "/etc/airlock/airlock.yaml");
    expect(config.store.url).toBeDefined();
    expect(config.listen.api?.port).toBe(8780);
  });

  it("the renderer refuses template constructs it does not know (so nothing is skipped silently)", () => {
    expect(() => render("{{ .Values.x | quote }}", { Values: { x: 1 }, Release: {} }, new Map())).toThrow(/unsupported pipe/);
    expect(() => render("{{ if .Values.x }}", { Values: { x: 1 }, Release: {} }, new Map())).toThrow(/unsupported/);
  });
});

describe("docker-compose.yml (parsed offline)", () => {
  const compose = parseYaml(readFileSync(join(repo, "docker-compose.yml"), "utf8"), { merge: true }) as { services: Record<string, Json> };

  it("runs a gateway pair with distinct instance ids on one store, behind a load balancer, with a target and an OIDC provider", () => {
    const s = compose.services;
    for (const name of ["store", "target", "oidc", "gateway-a", "gateway-b", "lb"]) expect(s[name], name).toBeDefined();
    const ids = ["gateway-a", "gateway-b"].map((g) => get(s[g], "environment.AIRLOCK_INSTANCE_ID"));
    expect(new Set(ids).size).toBe(2);
    for (const g of ["gateway-a", "gateway-b"]) {
      expect(get(s[g], "image")).toBe("airlock:local");
      expect(get(s[g], "volumes")).toContain("airlock-keys:/var/lib/airlock/keys");
      expect(String(get(s[g], "environment.AIRLOCK_STORE_URL"))).toContain("@store:5432/");
    }
  });

  it("its airlock.yaml is accepted by Airlock's config loader", () => {
    const path = join(repo, "deploy", "compose", "airlock.yaml");
    const config = parseConfig(parseYaml(readFileSync(path, "utf8")) as Json, path);
    expect(config.connections.map((c) => c.name)).toEqual(["orders"]);
    expect(config.instance.staleAfter).toBe(15_000);
  });
});
