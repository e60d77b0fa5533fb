import { describe, expect, it } from "vitest";
import { ColumnGlob, Glob } from "./glob.js";

describe("Glob", () => {
  it("matches literally, case-insensitively", () => {
    expect(new Glob("Users").test("users")).toBe(true);
    expect(new Glob("users").test("users_archive")).toBe(false);
  });
  it("supports * and ? and escapes regex characters", () => {
    expect(new Glob("*.email").test("public.customers.email")).toBe(true);
    expect(new Glob("drop*").test("drop_table")).toBe(true);
    expect(new Glob("a.b").test("axb")).toBe(false);
    expect(new Glob("t?").test("t1")).toBe(true);
    expect(new Glob("(x)").test("(x)")).toBe(true);
  });
  it("splits column globs at the last dot", () => {
    const g = new ColumnGlob("public.users.password");
    expect(g.relation.test("public.users")).toBe(true);
    expect(g.column.test("password")).toBe(true);
    const bare = new ColumnGlob("email");
    expect(bare.relation.test("anything")).toBe(true);
  });
});
