/**
 * The `agents:` block of the gateway's configuration (issue 19): which agent groups exist and
 * which principals may serve as agents of each.
 */
import { z } from "zod";
import { durationSchema, nameSchema } from "../runtime/schema-parts.js";

export const agentsConfigSchema = z
  .strictObject({
    groups: z
      .array(
        z.strictObject({
          name: nameSchema.describe("the agent group, named by connections' `via`"),
          allow: z
            .array(z.string().min(1).max(200))
            .min(1)
            .describe("principal groups (of a service account token or a workload JWT) whose members may connect as agents of this group"),
        }),
      )
      .default([]),
    heartbeat: durationSchema.default(10_000).describe("how often each end of an agent tunnel pings the other; three missed = the tunnel is dead"),
  })
  .default({ groups: [], heartbeat: 10_000 })
  .describe("network-resident agents (airlock agent) that reach targets in private networks");

export type AgentsConfig = z.output<typeof agentsConfigSchema>;

/** The `via` and `credentialsOn` keys every dialed connection type shares. */
export const viaSchema = nameSchema.optional().describe("the agent group that reaches this target (agents.groups); absent = the gateway dials it directly");
export const credentialsOnSchema = z
  .literal("agent")
  .optional()
  .describe("agent: the password (env: or file: with an absolute path) is resolved on the agent host, which performs the target login; the gateway never holds it");

/** Cross-key checks: `via` names a group; agent-side credentials need an agent and a reference the agent can resolve. */
export function agentProblems(config: {
  readonly agents: AgentsConfig;
  readonly connections: readonly { readonly name: string; readonly type: string; readonly via?: string | undefined; readonly credentialsOn?: "agent" | undefined; readonly password?: { readonly kind: string; readonly path?: string } | undefined; readonly sslmode?: string; readonly tls?: boolean }[];
}): string[] {
  const problems: string[] = [];
  const groups = new Set<string>();
  config.agents.groups.forEach((g, i) => {
    if (groups.has(g.name)) problems.push(`agents.groups[${i}].name: duplicate agent group "${g.name}"`);
    groups.add(g.name);
  });
  config.connections.forEach((c, i) => {
    if (c.via !== undefined && !groups.has(c.via)) problems.push(`connections[${i}].via: no agent group "${c.via}" in agents.groups`);
    if (c.credentialsOn === "agent") {
      if (c.via === undefined) problems.push(`connections[${i}].credentialsOn: agent needs via (the agent group that logs in)`);
      const p = c.password;
      if (p === undefined) problems.push(`connections[${i}].credentialsOn: agent needs a password reference`);
      else if (p.kind !== "env" && !(p.kind === "file" && p.path?.startsWith("/") === true)) {
        problems.push(`connections[${i}].password: with credentialsOn: agent use env:NAME or file:/ABSOLUTE/PATH (resolved on the agent host)`);
      }
      if (c.tls === true) problems.push(`connections[${i}].tls: credentialsOn: agent needs tls: false to the target in this version (the agent sends AUTH in the clear on its own network)`);
    }
  });
  return problems;
}
