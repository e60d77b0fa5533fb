import { describe, expect, it } from "vitest";
import type { ObjectBinding } from "../core/objects.js";
import { describeObjects, objectDrift } from "./binding.js";

const approved: ObjectBinding = {
  searchPath: "app, public",
  objects: [
    { kind: "relation", name: "orders", resolved: [{ oid: 16384, qualified: "public.orders" }] },
    { kind: "function", name: "lower", resolved: [{ oid: 870, qualified: "pg_catalog.lower(text)" }] },
  ],
};

function withOrders(resolved: ObjectBinding["objects"][number]["resolved"], searchPath = "app, public"): ObjectBinding {
  return { searchPath, objects: [{ kind: "relation", name: "orders", resolved }, approved.objects[1] ?? approved.objects[0]!] };
}

describe("objectDrift", () => {
  it("is none when every name resolves to the same objects (the search_path alone does not matter)", () => {
    expect(objectDrift(approved, approved)).toBeUndefined();
    expect(objectDrift(approved, { ...approved, searchPath: "public" })).toBeUndefined();
    // Order of the objects and of a function's candidates does not matter.
    expect(objectDrift(approved, { ...approved, objects: [...approved.objects].reverse() })).toBeUndefined();
  });

  it("names the relation a name now resolves to, and what was approved", () => {
    expect(objectDrift(approved, withOrders([{ oid: 20000, qualified: "app.orders" }]))).toBe("orders now resolves to app.orders (approved: public.orders)");
    expect(objectDrift(approved, withOrders([{ oid: 20000, qualified: "app.orders" }], "\"app\", \"public\""))).toBe(
      'orders now resolves to app.orders (approved: public.orders) (search_path now "app", "public"; approved under app, public)',
    );
  });

  it("a relation dropped and created again (same name, another OID) is drift", () => {
    expect(objectDrift(approved, withOrders([{ oid: 16999, qualified: "public.orders" }]))).toBe("orders was dropped and created again (public.orders, OID 16384 now 16999)");
  });

  it("a relation that no longer exists, or did not exist and now does, is drift", () => {
    expect(objectDrift(approved, withOrders([]))).toBe("orders now resolves to nothing (it does not exist) (approved: public.orders)");
    const none: ObjectBinding = { searchPath: "public", objects: [{ kind: "relation", name: "t", resolved: [] }] };
    expect(objectDrift(none, { searchPath: "public", objects: [{ kind: "relation", name: "t", resolved: [{ oid: 1, qualified: "public.t" }] }] })).toBe(
      "t now resolves to public.t (approved: nothing (it does not exist))",
    );
  });

  it("a new function a call may pick (an overload, or one shadowing it) is drift", () => {
    const now: ObjectBinding = {
      searchPath: "app, public",
      objects: [
        approved.objects[0]!,
        { kind: "function", name: "lower", resolved: [{ oid: 870, qualified: "pg_catalog.lower(text)" }, { oid: 30000, qualified: "app.lower(text)" }] },
      ],
    };
    expect(objectDrift(approved, now)).toBe("lower now resolves to pg_catalog.lower(text), app.lower(text) (approved: pg_catalog.lower(text))");
  });

  it("an object missing from either side is drift (fail closed)", () => {
    expect(objectDrift(approved, { searchPath: "x", objects: [approved.objects[0]!] })).toContain("lower is no longer bound");
    expect(objectDrift({ searchPath: "x", objects: [approved.objects[0]!] }, approved)).toContain("lower now resolves to pg_catalog.lower(text) (not in the approval)");
  });

  it("caps what it lists", () => {
    const many = (qualified: string): ObjectBinding => ({
      searchPath: "p",
      objects: Array.from({ length: 9 }, (_, i) => ({ kind: "relation" as const, name: `t${i}`, resolved: [{ oid: i + (qualified === "a" ? 100 : 200), qualified: `${qualified}.t${i}` }] })),
    });
    const d = objectDrift(many("a"), many("b")) ?? "";
    expect(d.split("; ")).toHaveLength(6);
    expect(d).toMatch(/and 4 more$/);
  });
});

describe("describeObjects", () => {
  it("shows each name with what it resolves to", () => {
    expect(describeObjects(approved)).toEqual(["orders → public.orders", "lower() → pg_catalog.lower(text)"]);
  });
});
