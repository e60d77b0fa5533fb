// The register/edit form for connections, generated from the JSON Schema of each connection type
// that the gateway serves (GET /v1/console/connections/form: the YAML's own zod schemas). Each
// field of the schema becomes an input by its JSON type; nested settings (an HTTP target's auth,
// a pool, rate limits) are entered as JSON. Secret fields are entered as a reference (env:,
// file:) or as a value the gateway stores encrypted. Problems come back per field
// (POST /v1/console/connections/validate) and are shown next to the field.
import { useEffect, useState, type SyntheticEvent } from "react";
import { z } from "zod";
import * as S from "../../src/api/console-schemas.js";
import { get, post } from "./api.js";
import { ErrorNote } from "./pages.js";

interface JsonSchema {
  readonly type?: string;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly default?: unknown;
  readonly description?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly items?: JsonSchema;
  readonly anyOf?: readonly JsonSchema[];
}

const jsonSchema: z.ZodType<JsonSchema> = z.lazy(() =>
  z
    .object({
      type: z.string().optional(),
      enum: z.array(z.unknown()).optional(),
      const: z.unknown().optional(),
      default: z.unknown().optional(),
      description: z.string().optional(),
      properties: z.record(z.string(), jsonSchema).optional(),
      required: z.array(z.string()).optional(),
      items: jsonSchema.optional(),
      anyOf: z.array(jsonSchema).optional(),
    })
    .loose(),
) as z.ZodType<JsonSchema>;

const formAnswer = z.object({ types: z.array(z.object({ type: z.string(), schema: jsonSchema })), secretFields: z.array(z.string()) });
const validation = z.object({ ok: z.boolean(), issues: z.array(z.object({ field: z.string(), message: z.string() })) });
const changed = S.connectionList.partial().extend({ connection: S.connectionView.optional() });

type Kind = "text" | "number" | "boolean" | "enum" | "list" | "json" | "secret";

function kindOf(name: string, s: JsonSchema, secrets: readonly string[]): Kind {
  if (secrets.includes(name)) return "secret";
  if (s.enum !== undefined) return "enum";
  if (s.type === "string") return "text";
  if (s.type === "integer" || s.type === "number") return "number";
  if (s.type === "boolean") return "boolean";
  if (s.type === "array" && s.items?.type === "string") return "list";
  return "json";
}

/** The form value (text) of a field → the document's value; undefined = leave it out. */
function toValue(kind: Kind, text: string): unknown {
  const t = text.trim();
  if (t === "") return undefined;
  switch (kind) {
    case "number":
      return Number(t);
    case "boolean":
      return t === "true";
    case "list":
      return t
        .split(",")
        .map((x) => x.trim())
        .filter((x) => x !== "");
    case "json":
      return JSON.parse(t) as unknown;
    case "text":
    case "enum":
    case "secret":
      return t;
  }
}

export interface EditTarget {
  readonly view: S.ConnectionView;
}

export function ConnectionForm({ edit, onDone }: { edit: EditTarget | undefined; onDone: () => void }) {
  const [form, setForm] = useState<z.infer<typeof formAnswer>>();
  const [type, setType] = useState("postgres");
  const [values, setValues] = useState<Record<string, string>>({});
  const [modes, setModes] = useState<Record<string, "value" | "reference">>({});
  const [issues, setIssues] = useState<{ field: string; message: string }[]>([]);
  const [error, setError] = useState<string>();
  const [saved, setSaved] = useState<string>();
  useEffect(() => {
    get("/v1/console/connections/form", formAnswer).then(setForm, (e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, []);
  useEffect(() => {
    // Edit: fill the form from the connection's view (secrets stay as stored unless re-entered).
    if (edit === undefined) return;
    const v = edit.view;
    const next: Record<string, string> = { name: v.name, host: v.host, port: String(v.port), groups: v.groups.join(", ") };
    for (const [k, x] of Object.entries(v.settings)) {
      if (x === null || (typeof x === "string" && /^(stored|literal|env|file|vault):/u.test(x))) continue;
      next[k] = String(x);
    }
    setType(v.type);
    setValues(next);
    setIssues([]);
    setSaved(undefined);
  }, [edit]);
  const schema = form?.types.find((t) => t.type === type)?.schema;
  const secrets = form?.secretFields ?? [];
  const props = Object.entries(schema?.properties ?? {}).filter(([k]) => k !== "type");
  const required = new Set(schema?.required ?? []);

  const submit = async (e: SyntheticEvent): Promise<void> => {
    e.preventDefault();
    setSaved(undefined);
    const connection: Record<string, unknown> = { type };
    const secretValues: Record<string, string> = {};
    const local: { field: string; message: string }[] = [];
    for (const [k, s] of props) {
      const kind = kindOf(k, s, secrets);
      const text = values[k] ?? "";
      try {
        const v = toValue(kind, text);
        if (v === undefined) continue;
        if (kind === "secret" && (modes[k] ?? "value") === "value" && typeof v === "string") secretValues[k] = v;
        else connection[k] = v;
      } catch {
        local.push({ field: k, message: "not valid JSON" });
      }
    }
    if (local.length > 0) {
      setIssues(local);
      return;
    }
    const body = { connection, secrets: secretValues };
    try {
      const check = await post("/v1/console/connections/validate", body, validation);
      setIssues(check.issues);
      if (!check.ok) return;
      const r = await post("/v1/console/connections", body, changed);
      setError(undefined);
      setSaved(`saved ${r.connection?.name ?? ""}: new sessions use it at once`);
      // Secret values are never shown again.
      setValues((old) => Object.fromEntries(Object.entries(old).filter(([k]) => !secrets.includes(k) || (modes[k] ?? "value") === "reference")));
      onDone();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };

  const issueFor = (k: string): string[] => issues.filter((i) => i.field === k || i.field.startsWith(`${k}.`)).map((i) => (i.field === k ? i.message : `${i.field.slice(k.length + 1)}: ${i.message}`));
  const known = new Set(props.map(([k]) => k));
  const general = issues.filter((i) => !known.has(i.field.split(".")[0] ?? ""));

  return (
    <form className="try conn-form" id="register" onSubmit={(e) => void submit(e)} noValidate>
      <label>
        Type
        <select
          id="conn-type"
          value={type}
          onChange={(e) => {
            setType(e.target.value);
            setIssues([]);
          }}
        >
          {(form?.types ?? []).map((t) => (
            <option key={t.type} value={t.type}>
              {t.type}
            </option>
          ))}
        </select>
      </label>
      {props.map(([k, s]) => {
        const kind = kindOf(k, s, secrets);
        const errs = issueFor(k);
        const id = `conn-${k}`;
        const wide = kind === "json" || kind === "secret" || k === "hostKey";
        const label = (
          <>
            {k}
            {required.has(k) ? " *" : ""}
            {kind === "list" ? " (comma-separated)" : kind === "json" ? " (JSON)" : ""}
          </>
        );
        const placeholder = s.default === undefined ? "" : `default: ${typeof s.default === "string" ? s.default : JSON.stringify(s.default)}`;
        const set = (v: string): void => setValues({ ...values, [k]: v });
        return (
          <div key={`${type}-${k}`} className={`field${wide ? " wide" : ""}${errs.length > 0 ? " invalid" : ""}`} data-field={k}>
            {kind === "secret" ? (
              <fieldset className="secret">
                <legend>{label}</legend>
                <select aria-label={`${k} given as`} id={`${id}-mode`} value={modes[k] ?? "value"} onChange={(e) => setModes({ ...modes, [k]: e.target.value === "reference" ? "reference" : "value" })}>
                  <option value="value">value (stored encrypted, never shown again)</option>
                  <option value="reference">reference (env:NAME, file:PATH)</option>
                </select>
                {(modes[k] ?? "value") === "value" && (k === "privateKey" || k === "sslRootCert" || k === "tlsCa") ? (
                  <textarea id={id} rows={3} value={values[k] ?? ""} onChange={(e) => set(e.target.value)} autoComplete="off" spellCheck={false} />
                ) : (
                  <input id={id} type={(modes[k] ?? "value") === "value" ? "password" : "text"} value={values[k] ?? ""} onChange={(e) => set(e.target.value)} autoComplete="new-password" />
                )}
              </fieldset>
            ) : (
              <label>
                {label}
                {kind === "enum" || kind === "boolean" ? (
                  <select id={id} value={values[k] ?? ""} onChange={(e) => set(e.target.value)}>
                    <option value="">{placeholder === "" ? "—" : placeholder}</option>
                    {(kind === "boolean" ? ["true", "false"] : (s.enum ?? []).map(String)).map((o) => (
                      <option key={o} value={o}>
                        {o}
                      </option>
                    ))}
                  </select>
                ) : kind === "json" ? (
                  <textarea id={id} rows={2} value={values[k] ?? ""} onChange={(e) => set(e.target.value)} placeholder={placeholder} spellCheck={false} />
                ) : (
                  <input id={id} value={values[k] ?? ""} onChange={(e) => set(e.target.value)} placeholder={placeholder} inputMode={kind === "number" ? "numeric" : undefined} />
                )}
              </label>
            )}
            {s.description !== undefined && <div className="hint">{s.description}</div>}
            {errs.map((m) => (
              <div key={m} className="field-error" role="alert">
                {m}
              </div>
            ))}
          </div>
        );
      })}
      <div className="wide buttons">
        <button type="submit" className="primary" id="conn-save">
          {edit === undefined ? "Save connection" : `Save ${edit.view.name}`}
        </button>
        {saved !== undefined && (
          <span className="note" id="conn-saved">
            {saved}
          </span>
        )}
      </div>
      {general.length > 0 && (
        <div className="notice error wide" role="alert" id="conn-issues">
          {general.map((i) => `${i.field}: ${i.message}`).join("; ")}
        </div>
      )}
      <div className="wide">
        <ErrorNote error={error} />
      </div>
    </form>
  );
}
