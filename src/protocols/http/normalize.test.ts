import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizePath, splitTarget } from "./normalize.js";

const ok = (raw: string): { normalized: string; forward: string } => {
  const r = normalizePath(raw);
  if (!r.ok) throw new Error(`refused ${raw}: ${r.reason}`);
  return r;
};

describe("normalizePath", () => {
  it("resolves dot segments, double slashes and matrix parameters", () => {
    expect(ok("/a/b/../c").normalized).toBe("/a/c");
    expect(ok("/a/./b//c").normalized).toBe("/a/b/c");
    expect(ok("/admin;jsessionid=1/users").normalized).toBe("/admin/users");
    expect(ok("/admin;jsessionid=1/users").forward).toBe("/admin;jsessionid=1/users");
    expect(ok("/x/..;/admin").normalized).toBe("/admin");
    expect(ok("/a/%2e%2e/admin").normalized).toBe("/admin");
    expect(ok("/a/%2e%2e/admin").forward).toBe("/admin");
    expect(ok("/users/").normalized).toBe("/users/");
    expect(ok("/caf%C3%A9").forward).toBe("/caf%C3%A9");
  });

  it("refuses encoded slashes, double encoding and climbing above the root", () => {
    for (const bad of ["/a%2fb", "/a%5cb", "/%252e%252e/admin", "/..", "/a/../../b", "/%00", "/a\\b", "/%zz"]) {
      expect(normalizePath(bad).ok, bad).toBe(false);
    }
  });

  it("is idempotent: the forwarded path normalizes to itself (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("a", "B", "..", ".", "", "%2e", "%2E%2e", ";x=1", "%3B", "é", "%41", "c;d", " "), { maxLength: 12 }), (segs) => {
        const raw = `/${segs.join("/")}`;
        const r = normalizePath(raw);
        if (!r.ok) return;
        const again = normalizePath(r.forward);
        expect(again.ok).toBe(true);
        if (again.ok) {
          expect(again.forward).toBe(r.forward);
          expect(again.normalized).toBe(r.normalized);
        }
        expect(r.normalized.split("/")).not.toContain("..");
      }),
    );
  });

  it("splits the connection prefix", () => {
    expect(splitTarget("/api/v1/x?a=1", true)).toEqual({ connection: "api", rest: "/v1/x", rawQuery: "a=1" });
    expect(splitTarget("/api", true)).toEqual({ connection: "api", rest: "/", rawQuery: "" });
    expect(splitTarget("http://x/", true)).toBeUndefined();
  });
});
