/**
 * `airlock agent` (the network-resident agent, issue 19) and `airlock agents list`.
 * The agent's settings come from flags, or from a YAML file (`--config`) with the same keys:
 *   gateway: wss://gateway.example.com:8781
 *   token: env:AIRLOCK_AGENT_TOKEN      # or file:/PATH, or the token itself
 *   group: dc-east
 *   name: east-1
 *   ca: /etc/airlock/gateway-ca.pem
 *   secrets: [env:ORDERS_PG_PASSWORD]   # references the agent may resolve for target logins
 *   allow: ["10.0.0.0/8:5432", "db.internal:*"]   # targets it will dial (default: those the gateway announces)
 */
import { readFileSync } from "node:fs";
import type { Writable } from "node:stream";
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { NetworkAgent, resolveAgentSecret } from "../agent/agent.js";
import { parseAllowList, type AllowRule } from "../agent/allowlist.js";
import type { ApiClient } from "./client.js";
import { CliError } from "./errors.js";
import { sanitizeInline, shortTime, table } from "./format.js";

const agentFileSchema = z.strictObject({
  gateway: z.string().min(1).optional(),
  token: z.string().min(1).optional(),
  group: z.string().min(1).max(100).optional(),
  name: z.string().min(1).max(128).optional(),
  ca: z.string().min(1).optional(),
  secrets: z.array(z.string().regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:\/.+)$/, "expected env:NAME or file:/ABSOLUTE/PATH")).default([]),
  allow: z.array(z.string().min(1).max(300)).max(10_000).optional(),
});

const agentView = z.object({
  id: z.string(),
  group: z.string(),
  principal: z.string(),
  name: z.string(),
  version: z.string(),
  address: z.string(),
  connectedAt: z.string(),
  lastSeen: z.string(),
  streams: z.number(),
  streamsOpened: z.number(),
});

interface AgentFlags {
  gateway?: string;
  token?: string;
  group?: string;
  name?: string;
  ca?: string;
  secret?: string[];
  allow?: string[];
  config?: string;
}

function readAgentFile(path: string): z.output<typeof agentFileSchema> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, "utf8"), { maxAliasCount: 10 });
  } catch (e) {
    throw new CliError(`cannot read ${path}: ${e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e)}`, 2);
  }
  const r = agentFileSchema.safeParse(doc ?? {});
  if (!r.success) throw new CliError(`${path}: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, 2);
  return r.data;
}

export function registerAgentCommands(
  program: Command,
  io: { readonly stdout: Writable; readonly stderr: Writable; readonly env: NodeJS.ProcessEnv },
  connectFor: (opts: { api?: string; config?: string }) => ApiClient,
): void {
  program
    .command("agent")
    .description("run a network-resident agent: one outbound tunnel to the gateway that carries its target connections")
    .option("--gateway <url>", "the gateway's agent endpoint, e.g. wss://gateway:8781 (listen.agents) or wss://gateway:8780 (the API listener)")
    .option("--token <token>", "the agent's credential: a service account token or workload JWT (default: AIRLOCK_AGENT_TOKEN, AIRLOCK_TOKEN); env:NAME and file:PATH work too")
    .option("--group <name>", "the agent group this agent serves (agents.groups in the gateway's config)")
    .option("--name <name>", "a name shown in airlock agents list (default: the principal's)")
    .option("--ca <file>", "PEM CA bundle the gateway's certificate must chain to (default: the system CAs)")
    .option("--secret <ref...>", "a secret reference (env:NAME, file:/PATH) this agent may resolve for an agent-side target login (repeatable)")
    .option("--allow <target...>", "a target this agent will dial, HOST:PORT (10.0.0.0/8:5432, db.internal:*, *.corp:22, [fd00::/8]:*) (repeatable); default: only the targets of the connections naming its group, as the gateway announces them")
    .option("--config <file>", "a YAML file with gateway, token, group, name, ca, secrets, allow")
    .action(async (flags: AgentFlags) => {
      const file = flags.config === undefined ? undefined : readAgentFile(flags.config);
      const gateway = flags.gateway ?? file?.gateway;
      const group = flags.group ?? file?.group;
      let token = flags.token ?? file?.token ?? io.env["AIRLOCK_AGENT_TOKEN"] ?? io.env["AIRLOCK_TOKEN"];
      if (gateway === undefined) throw new CliError("--gateway is required (or gateway: in --config)", 2);
      if (group === undefined) throw new CliError("--group is required (or group: in --config)", 2);
      if (token === undefined || token === "") throw new CliError("no agent credential: pass --token or set AIRLOCK_AGENT_TOKEN", 2);
      if (token.startsWith("env:") || token.startsWith("file:/")) {
        token = await resolveAgentSecret(token, io.env).catch((e: unknown) => {
          throw new CliError(`cannot read the agent token: ${e instanceof Error ? e.message : String(e)}`, 2);
        });
      }
      const caPath = flags.ca ?? file?.ca;
      let ca: string | undefined;
      if (caPath !== undefined) {
        try {
          ca = readFileSync(caPath, "utf8");
        } catch {
          throw new CliError(`cannot read the CA bundle ${caPath}`, 2);
        }
      }
      const name = flags.name ?? file?.name;
      const allowEntries = flags.allow === undefined && file?.allow === undefined ? undefined : [...(flags.allow ?? []), ...(file?.allow ?? [])];
      let allow: AllowRule[] | undefined;
      try {
        allow = allowEntries === undefined ? undefined : parseAllowList(allowEntries);
      } catch (e) {
        throw new CliError(e instanceof Error ? e.message : String(e), 2);
      }
      const log = (level: string, message: string, fields: Record<string, unknown> = {}): void => {
        io.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`);
      };
      let agent: NetworkAgent;
      try {
        agent = new NetworkAgent({
          gateway,
          token,
          group,
          ...(name === undefined ? {} : { name }),
          ...(ca === undefined ? {} : { ca }),
          env: io.env,
          log,
          allowSecrets: [...(flags.secret ?? []), ...(file?.secrets ?? [])],
          ...(allow === undefined ? {} : { allow }),
        });
      } catch (e) {
        throw new CliError(e instanceof Error ? e.message : String(e), 2);
      }
      agent.start();
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          agent.stop();
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
    });

  const agents = program.command("agents").description("network-resident agents connected to the gateway");
  agents
    .command("list")
    .description("connected agents: group, name, version, address, open streams, last seen")
    .option("--json", "print JSON")
    .option("--api <url>", "gateway API address (default: AIRLOCK_API, listen.api of the config, http://127.0.0.1:8780)")
    .option("--config <file>", "configuration file (default: AIRLOCK_CONFIG, ./airlock.yaml)")
    .action(async (opts: { json?: boolean; api?: string; config?: string }) => {
      const res = await connectFor(opts).request("GET", "/v1/agents", z.object({ agents: z.array(agentView) }));
      if (opts.json === true) {
        io.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
        return;
      }
      if (res.agents.length === 0) {
        io.stdout.write("no agents connected\n");
        return;
      }
      const rows = res.agents.map((a) => [a.group, sanitizeInline(a.name), a.version, a.address, String(a.streams), shortTime(a.connectedAt), shortTime(a.lastSeen)]);
      io.stdout.write(`${table(["GROUP", "NAME", "VERSION", "ADDRESS", "STREAMS", "CONNECTED", "LAST SEEN"], rows).join("\n")}\n`);
    });
}
