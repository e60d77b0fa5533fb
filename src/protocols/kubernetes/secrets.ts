/**
 * Masking Kubernetes API responses (issue 15). A Secret's `data` values are base64: a detector
 * would never find an email or a key in them, and a value masked as base64 text would no longer
 * decode (client-go refuses the object). So every Secret in the document — the object itself,
 * a list's `items`, a watch event's `object`, a Table row's `object` — has its `data` values
 * decoded to text first, the whole document is masked by the plan (path rules and detectors,
 * src/masking/json.ts through PlanMasker.json), and the values the masking changed are
 * encoded again. A value it did not change keeps its original bytes (binary included).
 *
 * `kubectl apply` keeps the whole manifest, data included, in the annotation
 * `kubectl.kubernetes.io/last-applied-configuration`: that JSON is masked the same way, as a
 * document of its own, before the object around it.
 */
import type { PlanMasker } from "../../core/http-kind.js";

export const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** Depth of nested documents (an annotation holding a manifest holding an annotation…). */
const MAX_NESTING = 4;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const isObject = (v: Json | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Where Secret objects sit in an API response (see the header). */
function secretsIn(doc: Json): JsonObject[] {
  if (!isObject(doc)) return [];
  const out: JsonObject[] = [];
  const consider = (o: Json | undefined): void => {
    if (isObject(o) && o.kind === "Secret") out.push(o);
  };
  consider(doc);
  consider(doc.object); // watch event
  for (const key of ["items", "rows"] as const) {
    const list = doc[key];
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      consider(item);
      if (isObject(item)) consider(item.object); // Table row with includeObject=Object
    }
  }
  return out;
}

interface Decoded {
  readonly map: JsonObject;
  readonly key: string;
  readonly original: string;
  readonly text: string;
}

/** Mask one API response document (JSON text); returns the text to send. Non-JSON is masked as text. */
export function maskK8sJson(body: string, mask: PlanMasker, depth = 0): string {
  let doc: Json;
  try {
    doc = JSON.parse(body) as Json;
  } catch {
    return mask.text(body);
  }
  const secrets = secretsIn(doc);
  if (secrets.length === 0) return mask.json(body);
  const decoded: Decoded[] = [];
  for (const s of secrets) {
    const meta = s.metadata;
    const annotations = isObject(meta) ? meta.annotations : undefined;
    if (isObject(annotations) && typeof annotations[LAST_APPLIED] === "string") {
      const inner = annotations[LAST_APPLIED];
      // Too deep to read: the annotation goes whole (fail closed).
      annotations[LAST_APPLIED] = depth >= MAX_NESTING ? "[REDACTED]" : maskK8sJson(inner, mask, depth + 1);
    }
    const data = s.data;
    if (!isObject(data)) continue;
    for (const [key, value] of Object.entries(data)) {
      if (typeof value !== "string") continue;
      const bytes = Buffer.from(value, "base64");
      // Valid UTF-8 reads as text; other bytes as Latin-1, so ASCII secrets inside binary still show.
      const utf8 = bytes.toString("utf8");
      const text = Buffer.from(utf8, "utf8").equals(bytes) ? utf8 : bytes.toString("latin1");
      data[key] = text;
      decoded.push({ map: data, key, original: value, text });
    }
  }
  const masked = mask.json(JSON.stringify(doc));
  let out: Json;
  try {
    out = JSON.parse(masked) as Json;
  } catch {
    // PlanMasker.json keeps valid JSON valid; if it ever did not, send nothing of it.
    return JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "airlock: the response could not be masked", reason: "InternalError", code: 500 });
  }
  // Same shape as before masking: the Secrets are found at the same places again.
  const after = secretsIn(out);
  let i = 0;
  for (const s of after) {
    const data = s.data;
    if (!isObject(data)) continue;
    for (const [key, value] of Object.entries(data)) {
      const d = decoded[i];
      if (d === undefined || d.key !== key) continue;
      i++;
      data[key] = typeof value === "string" ? (value === d.text ? d.original : Buffer.from(value, "utf8").toString("base64")) : value;
    }
  }
  return JSON.stringify(out);
}
