import { describe, expect, it } from "vitest";
import { ADMIN_PRINCIPAL } from "../core/principal.js";
import type { Principal } from "../core/principal.js";
import { rolesFor, withApproverGroups } from "./roles.js";

const person = (groups: string[]): Principal => ({ kind: "person", id: "user:a@example.com", name: "a@example.com", groups });
const settings = { admin: ["platform"], approver: ["dba"], auditor: ["security"] };

describe("rolesFor", () => {
  it("gives the admin principal every role", () => {
    expect(rolesFor(ADMIN_PRINCIPAL)).toEqual(["admin", "approver", "auditor", "user"]);
  });
  it("maps groups to roles; everyone is a user", () => {
    expect(rolesFor(person([]), settings)).toEqual(["user"]);
    expect(rolesFor(person(["dba"]), settings)).toEqual(["approver", "user"]);
    expect(rolesFor(person(["security", "dba"]), settings)).toEqual(["approver", "auditor", "user"]);
    expect(rolesFor(person(["platform"]), settings)).toEqual(["admin", "approver", "auditor", "user"]);
    expect(rolesFor({ kind: "service_account", id: "sa:x", name: "x", groups: ["security"] }, settings)).toEqual(["auditor", "user"]);
  });
  it("grants nothing beyond user without a mapping, whatever the groups are called", () => {
    expect(rolesFor(person(["admin", "approver", "auditor"]))).toEqual(["user"]);
  });
  it("makes every approver group of the approval configuration confer the approver role, and nothing more", () => {
    const effective = withApproverGroups({ admin: [], approver: [], auditor: [] }, ["oncall", "dba", "oncall"]);
    expect(effective.approver).toEqual(["oncall", "dba"]);
    expect(rolesFor(person(["oncall"]), effective)).toEqual(["approver", "user"]);
    expect(rolesFor({ kind: "service_account", id: "sa:bot", name: "bot", groups: ["dba"] }, effective)).toEqual(["approver", "user"]);
    expect(rolesFor(person(["agents"]), effective)).toEqual(["user"]);
  });
});
