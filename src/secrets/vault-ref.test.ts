import { describe, expect, it } from "vitest";
import { describeSecretRef } from "../core/secret.js";
import { secretRefSchema } from "../runtime/schema-parts.js";

describe("vault: references", () => {
  it("parse as MOUNT/PATH#FIELD, the mount being the first segment", () => {
    const ref = secretRefSchema.parse("vault:secret/orders/db#password");
    expect(ref).toEqual({ kind: "vault", mount: "secret", path: "orders/db", field: "password" });
    expect(describeSecretRef(ref)).toBe("vault:secret/orders/db#password");
  });

  it("refuse malformed references with a message that says the form", () => {
    for (const bad of ["vault:", "vault:secret", "vault:secret/db", "vault:secret/#pw", "vault:/db#pw", "vault:secret/a//b#pw", "vault:secret/../x#pw", "vault:secret/db#"]) {
      const r = secretRefSchema.safeParse(bad);
      expect(r.success, bad).toBe(false);
      expect(r.error?.issues[0]?.message).toContain("MOUNT/PATH#FIELD");
    }
  });
});
