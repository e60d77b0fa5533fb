/**
 * Control-plane roles from groups (`roles:` in the config). The admin principal (admin.token)
 * has every role; every other authenticated principal is a `user`, plus each role one of
 * whose groups it is in. Roles never come from a token directly, only through groups.
 *
 * `approver` is derived from the approval configuration (withApproverGroups): whoever is in a
 * group some policy's `approvers` (or `approvals.grants.approvers`) names holds it, so the
 * approval routes admit exactly the principals who may decide something. Which requests one
 * may decide is still the request's own approver groups (ApprovalService.mayDecide).
 */
import type { Principal } from "../core/principal.js";
import type { RolesSettings } from "./config-schema.js";

export type ControlPlaneRole = "admin" | "approver" | "auditor" | "user";

export const NO_ROLE_GROUPS: RolesSettings = Object.freeze({ admin: [], approver: [], auditor: [] });

export function rolesFor(principal: Principal, settings: RolesSettings = NO_ROLE_GROUPS): readonly ControlPlaneRole[] {
  switch (principal.kind) {
    case "admin":
      return ["admin", "approver", "auditor", "user"];
    case "service_account":
    case "person":
    case "workload": {
      const groups = new Set(principal.groups);
      const has = (list: readonly string[]): boolean => list.some((g) => groups.has(g));
      if (has(settings.admin)) return ["admin", "approver", "auditor", "user"];
      const roles: ControlPlaneRole[] = [];
      if (has(settings.approver)) roles.push("approver");
      if (has(settings.auditor)) roles.push("auditor");
      roles.push("user");
      return roles;
    }
  }
}

/**
 * The effective role groups: `approver` also holds every approver group of the approval
 * configuration, so "any principal in the policy's approvers groups may approve" holds without
 * repeating those groups under `roles.approver`.
 */
export function withApproverGroups(settings: RolesSettings, approverGroups: Iterable<string>): RolesSettings {
  return { ...settings, approver: [...new Set([...settings.approver, ...approverGroups])] };
}
