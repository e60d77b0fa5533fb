/**
 * `airlock kubeconfig CONNECTION [--ttl 1h]` (INTERFACE.md): a kubeconfig whose server is the
 * gateway's HTTP listener + `/CONNECTION` and whose user is a fresh Airlock token, so kubectl
 * and @kubernetes/client-node work unchanged. The token is minted by the API
 * (`POST /v1/tokens`) for a service account: `--service-account`, or the only service account
 * whose groups may use the connection.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { Option } from "commander";
import { stringify } from "yaml";
import { z } from "zod";
import type { Config } from "../runtime/config.js";
import { apiUrlFor, configPath, connect, loadConfigOneLine, type CliEnv } from "./context.js";
import { CliError } from "./errors.js";

export interface KubeconfigInput {
  readonly connection: string;
  /** The gateway's HTTP listener, e.g. http://127.0.0.1:18080 (no trailing slash). */
  readonly gatewayUrl: string;
  readonly token: string;
  readonly namespace?: string;
  /** PEM of the CA that signed the gateway's certificate (https only). */
  readonly caPem?: string;
}

/** The kubeconfig document (YAML). Pure. */
export function renderKubeconfig(i: KubeconfigInput): string {
  const name = `airlock-${i.connection}`;
  const server = `${i.gatewayUrl.replace(/\/+$/, "")}/${encodeURIComponent(i.connection)}`;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster: { server, ...(i.caPem === undefined ? {} : { "certificate-authority-data": Buffer.from(i.caPem, "utf8").toString("base64") }) } }],
    users: [{ name, user: { token: i.token } }],
    contexts: [{ name, context: { cluster: name, user: name, ...(i.namespace === undefined ? {} : { namespace: i.namespace }) } }],
    "current-context": name,
    preferences: {},
  });
}

/** The only service account that may use `connection` (by groups), or a clear error. */
export function defaultServiceAccount(config: Config, connection: string): string {
  const c = config.connections.find((x) => x.name === connection);
  if (c === undefined) throw new CliError(`no connection named "${connection}" in the configuration`, 2);
  if (c.type !== "kubernetes") throw new CliError(`connection "${connection}" is of type ${c.type}, not kubernetes`, 2);
  const fit = config.serviceAccounts.filter((s) => s.groups.some((g) => c.groups.includes(g))).map((s) => s.name);
  if (fit.length === 1 && fit[0] !== undefined) return fit[0];
  throw new CliError(
    fit.length === 0 ? `no service account may use "${connection}": pass --service-account` : `several service accounts may use "${connection}" (${fit.join(", ")}): pass --service-account`,
    2,
  );
}

export function registerKubeconfigCommand(program: Command, io: CliEnv & { readonly stdout: { write(s: string): unknown } }): void {
  program
    .command("kubeconfig")
    .description("print a kubeconfig whose server is the gateway and whose credential is a fresh token")
    .argument("<connection>", "the kubernetes connection")
    .option("--service-account <name>", "the service account the token acts as (default: the only one that may use the connection)")
    .addOption(new Option("--ttl <duration>", "token lifetime, e.g. 1h (at most tokens.maxTtl)").default("1h"))
    .option("--server <url>", "the gateway's HTTP listener as clients reach it (default: listen.http of the configuration)")
    .option("--namespace <ns>", "the context's default namespace")
    .option("--certificate-authority <file>", "PEM CA of the gateway's certificate, embedded for https")
    .option("--api <url>", "gateway API address (default: AIRLOCK_API, listen.api of the config, http://127.0.0.1:8780)")
    .option("--config <file>", "configuration file (default: AIRLOCK_CONFIG, ./airlock.yaml)")
    .action(
      async (
        connection: string,
        opts: { serviceAccount?: string; ttl: string; server?: string; namespace?: string; certificateAuthority?: string; api?: string; config?: string },
      ) => {
        let config: Config | undefined | null = null;
        const loadConfig = (): Config | undefined => {
          if (config === null) {
            const path = configPath(opts.config, io);
            config = path === undefined ? undefined : loadConfigOneLine(path);
          }
          return config;
        };
        const serviceAccount =
          opts.serviceAccount ??
          (() => {
            const c = loadConfig();
            if (c === undefined) throw new CliError("pass --service-account (no configuration file to find one in)", 2);
            return defaultServiceAccount(c, connection);
          })();
        const gatewayUrl =
          opts.server ??
          (() => {
            const c = loadConfig();
            const listen = c?.listen.http;
            if (c === undefined || listen === undefined) throw new CliError("pass --server (the configuration has no listen.http)", 2);
            const url = apiUrlFor(listen);
            return c.tls.cert !== undefined || c.tls.selfSigned ? url.replace(/^http:/, "https:") : url;
          })();
        if (!/^https?:\/\/[^/?#\s]+\/?$/.test(gatewayUrl)) throw new CliError(`--server ${gatewayUrl}: expected http(s)://host:port`, 2);
        let caPem: string | undefined;
        if (opts.certificateAuthority !== undefined) {
          try {
            caPem = readFileSync(opts.certificateAuthority, "utf8");
          } catch (e) {
            throw new CliError(`cannot read ${opts.certificateAuthority}`, 1, { cause: e });
          }
        }
        const client = connect({ ...(opts.api === undefined ? {} : { api: opts.api }), ...(opts.config === undefined ? {} : { config: opts.config }) }, io);
        const res = await client.request("POST", "/v1/tokens", z.object({ token: z.string() }), { serviceAccount, ttl: opts.ttl });
        io.stdout.write(
          renderKubeconfig({
            connection,
            gatewayUrl,
            token: res.token,
            ...(opts.namespace === undefined ? {} : { namespace: opts.namespace }),
            ...(caPem === undefined ? {} : { caPem }),
          }),
        );
      },
    );
}
