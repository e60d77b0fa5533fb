import { describe, expect, it } from "vitest";
import { LoginStates, SeenIds, readCookie } from "./login-state.js";

describe("LoginStates", () => {
  it("hands an entry out once, only to the browser holding its cookie", () => {
    const s = new LoginStates<string>();
    const cookie = s.put("state1", "data");
    expect(s.take("state1", "wrong")).toBeUndefined();
    // A failed attempt consumes the entry too: no guessing the cookie.
    expect(s.take("state1", cookie)).toBeUndefined();
    const c2 = s.put("state2", "d2");
    expect(s.take("state2", c2)).toBe("d2");
    expect(s.take("state2", c2)).toBeUndefined();
  });

  it("expires entries and stays bounded", () => {
    const s = new LoginStates<number>({ ttlMs: -1, max: 3 });
    const c = s.put("a", 1);
    expect(s.take("a", c)).toBeUndefined();
    for (let i = 0; i < 10; i++) s.put(`k${i}`, i);
    expect(s.size).toBeLessThanOrEqual(3);
  });
});

describe("readCookie", () => {
  it("finds one cookie among several", () => {
    expect(readCookie("a=1; airlock_login=xyz; b=2", "airlock_login")).toBe("xyz");
    expect(readCookie("a=1", "airlock_login")).toBeUndefined();
    expect(readCookie(undefined, "x")).toBeUndefined();
  });
});

describe("SeenIds", () => {
  it("accepts an id once until it expires", () => {
    const seen = new SeenIds();
    expect(seen.add("id1", Date.now() + 60_000)).toBe(true);
    expect(seen.add("id1", Date.now() + 60_000)).toBe(false);
    expect(seen.add("id2", Date.now() - 1)).toBe(true);
    expect(seen.add("id2", Date.now() + 60_000)).toBe(true);
  });
});
