#!/usr/bin/env node
/**
 * Generates JSON Schemas (draft 2020-12) for the OCSF event classes Airlock exports, from a
 * checkout of the OCSF schema repository (github.com/ocsf/ocsf-schema, Apache-2.0):
 *
 *   node scripts/ocsf-json-schema.mjs /path/to/ocsf-schema > test/fixtures/ocsf/schema-1.8.0.json
 *
 * The output is test data (the OCSF server publishes the same shapes at /export/schema): each
 * class resolved through its `extends` chain and `$include`d profiles, attribute types from the
 * dictionary, objects as `$defs` (recursive objects by `$ref`), `required` from requirement
 * "required", `*_id` enums from the dictionary and the class, `at_least_one` / `just_one`
 * constraints, and `additionalProperties: false`, so that a record with a misspelt or unmapped
 * field fails (OCSF puts such fields under `unmapped`). Profile attributes are allowed
 * (optional) wherever the class includes the profile.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = process.argv[2];
if (root === undefined) {
  process.stderr.write("usage: ocsf-json-schema.mjs OCSF_SCHEMA_DIR\n");
  process.exit(2);
}
const CLASSES = ["authentication", "http_activity", "ssh_activity", "datastore_activity", "base_event"];

const read = (p) => JSON.parse(readFileSync(join(root, p), "utf8"));
const dictionary = read("dictionary.json");
const categories = read("categories.json").attributes;
const version = read("version.json").version;

function walk(dir) {
  const out = [];
  for (const name of readdirSync(join(root, dir))) {
    const p = join(dir, name);
    if (statSync(join(root, p)).isDirectory()) out.push(...walk(p));
    else if (name.endsWith(".json")) out.push(p);
  }
  return out;
}
const events = new Map(walk("events").map((p) => [read(p).name, read(p)]));
const objects = new Map(readdirSync(join(root, "objects")).map((f) => [read(`objects/${f}`).name, read(`objects/${f}`)]));

/** Attributes of a definition with its `$include`s merged (included ones optional, as profiles are). */
function ownAttributes(def) {
  const out = {};
  for (const [k, v] of Object.entries(def.attributes ?? {})) {
    if (k === "$include") {
      for (const inc of [v].flat()) {
        for (const [ik, iv] of Object.entries(read(inc).attributes ?? {})) out[ik] = { ...iv, requirement: "optional" };
      }
    } else out[k] = v;
  }
  return out;
}

function resolved(def, table) {
  const chain = [];
  for (let d = def; d !== undefined; d = d.extends === undefined ? undefined : table.get(d.extends)) chain.unshift(d);
  const attrs = {};
  let constraints;
  for (const d of chain) {
    for (const [k, v] of Object.entries(ownAttributes(d))) attrs[k] = { ...(attrs[k] ?? {}), ...v };
    if (d.constraints !== undefined) constraints = d.constraints;
  }
  return { attrs, constraints };
}

const SCALAR = {
  boolean_t: { type: "boolean" },
  integer_t: { type: "integer" },
  long_t: { type: "integer" },
  port_t: { type: "integer", minimum: 0, maximum: 65535 },
  float_t: { type: "number" },
  timestamp_t: { type: "integer" },
  json_t: {},
};

function scalarSchema(type) {
  if (SCALAR[type] !== undefined) return SCALAR[type];
  const t = dictionary.types.attributes[type];
  if (t?.type !== undefined && t.type !== type) return scalarSchema(t.type);
  return { type: "string" };
}

const defs = {};
function objectRef(name) {
  // `object` is OCSF's "any JSON object" (`unmapped`, `data`, …): free-form by definition.
  if (name === "object") return { type: "object" };
  if (defs[name] === undefined) {
    defs[name] = {}; // placeholder against recursion
    const def = objects.get(name);
    if (def === undefined) throw new Error(`unknown object ${name}`);
    defs[name] = schemaOf(resolved(def, objects), def.caption);
  }
  return { $ref: `#/$defs/${name}` };
}

function attributeSchema(name, local) {
  const d = dictionary.attributes[name];
  if (d === undefined) throw new Error(`attribute ${name} is not in the dictionary`);
  const type = local.type ?? d.type;
  let s = objects.has(type) ? objectRef(type) : { ...scalarSchema(type) };
  const en = { ...(d.enum ?? {}), ...(local.enum ?? {}) };
  if (Object.keys(en).length > 0 && name.endsWith("_id")) s = { ...s, enum: Object.keys(en).map(Number) };
  return (local.is_array ?? d.is_array) === true ? { type: "array", items: s } : s;
}

function schemaOf({ attrs, constraints }, title) {
  const properties = {};
  const required = [];
  for (const [k, v] of Object.entries(attrs)) {
    properties[k] = attributeSchema(k, v);
    if (v.requirement === "required") required.push(k);
  }
  const s = { title, type: "object", properties, required: required.sort(), additionalProperties: false };
  if (constraints?.at_least_one !== undefined) s.anyOf = constraints.at_least_one.map((k) => ({ required: [k] }));
  if (constraints?.just_one !== undefined) s.oneOf = constraints.just_one.map((k) => ({ required: [k] }));
  return s;
}

const classes = {};
for (const name of CLASSES) {
  const def = events.get(name);
  const { attrs, constraints } = resolved(def, events);
  const category = def.category ?? events.get(def.extends)?.category ?? "other";
  const categoryUid = categories[category]?.uid ?? 0;
  const classUid = categoryUid * 1000 + (def.uid ?? 0);
  const s = schemaOf({ attrs, constraints }, def.caption);
  s.properties.class_uid = { const: classUid };
  if (categoryUid !== 0) s.properties.category_uid = { const: categoryUid };
  classes[name] = { class_uid: classUid, schema: s };
}

process.stdout.write(
  `${JSON.stringify({ ocsf_version: version, generated_by: "scripts/ocsf-json-schema.mjs", classes, $defs: defs }, null, 1)}\n`,
);
