import { afterAll, describe, expect, it } from "vitest";
import { closeTestClassifier, one, rel } from "./testing.js";

afterAll(closeTestClassifier);

describe("classifyMysql: basics", () => {
  it("reads a join with db-qualified names and aliases", async () => {
    const f = await one("SELECT u.email, o.total FROM shop.users AS u JOIN `orders` o ON o.user_id = u.id WHERE u.id = 1");
    expect(f.operations).toEqual(["select"]);
    expect(f.relationsRead.map(rel)).toEqual(["orders", "shop.users"]);
    expect(f.columns).toContainEqual({ relation: { schema: "shop", name: "users" }, column: "email", access: "read" });
    expect(f.columns).toContainEqual({ relation: { name: "orders" }, column: "total", access: "read" });
  });
}, 120_000);
