/**
 * `airlock login`: a person signs in on a workstation with their organisation's OpenID
 * provider and gets an Airlock token.
 *
 *  1. Discover the issuer (openid-client). If it advertises a device authorization endpoint
 *     (RFC 8628) and --browser is not given, use the device grant: print the verification URI
 *     and user code on stderr, poll until the person approves. Otherwise use the authorization
 *     code grant with PKCE and a loopback redirect on 127.0.0.1:<random> (RFC 8252 §7.3).
 *  2. Exchange the ID token at the gateway's /v1/token/exchange (RFC 8693); the gateway
 *     verifies it like any trusted issuer's JWT (its `oidc:` entry must list the CLI's client id
 *     as an audience and map it to a person).
 *  3. Save the Airlock token to $XDG_CONFIG_HOME/airlock/token (mode 0600; default
 *     ~/.config/airlock/token), where the other commands find it after AIRLOCK_TOKEN — or, with
 *     --print, write it to stdout and nothing else.
 */
import { mkdir, writeFile, chmod } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { Writable } from "node:stream";
import type { Command } from "commander";
import * as oidcClient from "openid-client";
import { z } from "zod";
import { CliError } from "./errors.js";

export interface LoginCliIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

const LOGIN_TIMEOUT_MS = 5 * 60_000;
const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";

/** Where `airlock login` stores the token and where the CLI looks for it. */
export function tokenFilePath(env: NodeJS.ProcessEnv): string {
  const xdg = env["XDG_CONFIG_HOME"];
  const base = xdg !== undefined && xdg.trim() !== "" ? xdg : join(env["HOME"] ?? homedir(), ".config");
  return join(base, "airlock", "token");
}

const exchangeAnswer = z.object({ access_token: z.string().min(1), expires_in: z.number(), principal: z.object({ id: z.string(), groups: z.array(z.string()) }).optional() });
const exchangeError = z.object({ error: z.string(), error_description: z.string().optional() });

interface LoginOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret?: string;
  readonly scope: string;
  readonly browser?: boolean;
  readonly device?: boolean;
  readonly print?: boolean;
  readonly api?: string;
}

async function discover(o: LoginOptions): Promise<oidcClient.Configuration> {
  let url: URL;
  try {
    url = new URL(o.issuer);
  } catch {
    throw new CliError(`invalid issuer URL "${o.issuer}"`, 2);
  }
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) throw new CliError("the issuer must be an https URL", 2);
  try {
    return await oidcClient.discovery(
      url,
      o.clientId,
      o.clientSecret,
      o.clientSecret === undefined ? oidcClient.None() : undefined,
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- plain http only for a loopback issuer (checked above)
      url.protocol === "http:" ? { execute: [oidcClient.allowInsecureRequests], timeout: 10 } : { timeout: 10 },
    );
  } catch (e) {
    throw new CliError(`cannot discover the issuer ${o.issuer}: ${e instanceof Error ? e.message : "error"}`, 1, { cause: e });
  }
}

/** What a login at the provider yields: the ID token to exchange, and a refresh token when the provider issued one. */
interface IdpLogin {
  readonly idToken: string;
  readonly refreshToken?: string;
}

function loginOf(tokens: { readonly id_token?: string; readonly refresh_token?: string }, missing: string): IdpLogin {
  if (tokens.id_token === undefined) throw new CliError(missing);
  return { idToken: tokens.id_token, ...(tokens.refresh_token === undefined ? {} : { refreshToken: tokens.refresh_token }) };
}

async function deviceLogin(config: oidcClient.Configuration, o: LoginOptions, io: LoginCliIo): Promise<IdpLogin> {
  const auth = await oidcClient.initiateDeviceAuthorization(config, { scope: o.scope });
  io.stderr.write(`To sign in, open ${auth.verification_uri_complete ?? auth.verification_uri}\n`);
  io.stderr.write(`and enter the code ${auth.user_code}\n`);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), Math.min(LOGIN_TIMEOUT_MS, auth.expires_in * 1000));
  try {
    const tokens = await oidcClient.pollDeviceAuthorizationGrant(config, auth, undefined, { signal: controller.signal });
    return loginOf(tokens, "the identity provider returned no ID token (is the openid scope allowed?)");
  } finally {
    clearTimeout(timer);
  }
}

async function loopbackLogin(config: oidcClient.Configuration, o: LoginOptions, io: LoginCliIo): Promise<IdpLogin> {
  const verifier = oidcClient.randomPKCECodeVerifier();
  const state = oidcClient.randomState();
  const nonce = oidcClient.randomNonce();
  // RFC 8252 §7.3: the provider ignores the loopback port, not the path; `state` binds the answer.
  const path = "/callback";
  let resolveUrl: (u: URL) => void = () => undefined;
  const callback = new Promise<URL>((resolve) => {
    resolveUrl = resolve;
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== path) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    res.end("Airlock: you can close this window and return to the terminal.\n");
    resolveUrl(url);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const redirectUri = `http://127.0.0.1:${port}${path}`;
    const url = oidcClient.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: o.scope,
      code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    io.stderr.write(`To sign in, open this URL in a browser on this machine:\n${url.href}\n`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CliError("login timed out")), LOGIN_TIMEOUT_MS);
    });
    try {
      const got = await Promise.race([callback, timeout]);
      const current = new URL(redirectUri);
      current.search = got.search;
      const tokens = await oidcClient.authorizationCodeGrant(config, current, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
      return loginOf(tokens, "the identity provider returned no ID token");
    } finally {
      clearTimeout(timer);
    }
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * Exchange the ID token at the gateway. The refresh token goes along (and is then forgotten
 * here): the gateway keeps it in memory to re-check the person's groups at the provider, so
 * removing a group there ends their sessions (the gateway's oidc[].recheckInterval).
 */
async function exchange(api: string, login: IdpLogin): Promise<z.infer<typeof exchangeAnswer>> {
  let res: Response;
  try {
    res = await fetch(`${api.replace(/\/$/, "")}/v1/token/exchange`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: TOKEN_EXCHANGE_GRANT,
        subject_token: login.idToken,
        subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
        ...(login.refreshToken === undefined ? {} : { refresh_token: login.refreshToken }),
      }).toString(),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new CliError(`cannot reach the gateway at ${api}`, 1, { cause: e });
  }
  const body: unknown = await res.json().catch(() => undefined);
  if (!res.ok) {
    const err = exchangeError.safeParse(body);
    throw new CliError(`the gateway refused the login: ${err.success ? (err.data.error_description ?? err.data.error) : `HTTP ${res.status}`}`);
  }
  const ok = exchangeAnswer.safeParse(body);
  if (!ok.success) throw new CliError("unexpected answer from the gateway");
  return ok.data;
}

export function registerLoginCommand(program: Command, io: LoginCliIo, apiFor: (opts: { api?: string; config?: string }) => string, setExit: (code: number) => void): void {
  program
    .command("login")
    .description("sign in with your OpenID provider (device code, or a browser on this machine) and store an Airlock token")
    .requiredOption("--issuer <url>", "the OpenID provider (as in the gateway's oidc: list)", io.env["AIRLOCK_OIDC_ISSUER"])
    .requiredOption("--client-id <id>", "the CLI's client id at the provider", io.env["AIRLOCK_OIDC_CLIENT_ID"] ?? "airlock-cli")
    .option("--scope <scopes>", "scopes to ask for", "openid email profile groups")
    .option("--browser", "use a browser and a loopback redirect even if the provider supports the device flow")
    .option("--device", "require the device flow")
    .option("--print", "print the token on stdout instead of storing it")
    .option("--api <url>", "gateway API address (default: AIRLOCK_API, listen.api of the config, http://127.0.0.1:8780)")
    .option("--config <file>", "configuration file (to find listen.api)")
    .action(async (opts: LoginOptions & { config?: string }) => {
      const config = await discover(opts);
      const hasDevice = typeof config.serverMetadata().device_authorization_endpoint === "string";
      if (opts.device === true && !hasDevice) throw new CliError("the provider does not support the device flow", 1);
      const login = opts.browser !== true && hasDevice ? await deviceLogin(config, opts, io) : await loopbackLogin(config, opts, io);
      const api = apiFor({ ...(opts.api === undefined ? {} : { api: opts.api }), ...(opts.config === undefined ? {} : { config: opts.config }) });
      const answer = await exchange(api, login);
      if (opts.print === true) {
        io.stdout.write(`${answer.access_token}\n`);
      } else {
        const file = tokenFilePath(io.env);
        await mkdir(dirname(file), { recursive: true, mode: 0o700 });
        await writeFile(file, `${answer.access_token}\n`, { mode: 0o600 });
        await chmod(file, 0o600);
        const who = answer.principal === undefined ? "" : ` as ${answer.principal.id}${answer.principal.groups.length > 0 ? ` (groups: ${answer.principal.groups.join(", ")})` : ""}`;
        io.stderr.write(`Signed in${who}; token valid for ${Math.round(answer.expires_in / 60)} min, saved to ${file}\n`);
      }
      setExit(0);
    });
}
