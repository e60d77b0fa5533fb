/**
 * SSH user authentication (RFC 4252) and admission: the Airlock token as the password or the
 * keyboard-interactive answer, or a service account's registered public key (§7, verified
 * here). The user name selects the connection; the shared Gatekeeper verifies tokens, admits
 * the session and audits every failure.
 */
import { timingSafeEqual } from "node:crypto";
import ssh2, { type AuthContext, type Connection as ServerClient } from "ssh2";
import { gatewayText, type AuthContext as AuthCtx, type Gatekeeper } from "../../core/engine.js";
import { GatewayError } from "../../core/errors.js";
import type { Principal } from "../../core/principal.js";
import type { ClientState } from "./state.js";

const { utils } = ssh2;

/** A public key registered to a service account (`serviceAccounts[].sshPublicKeys`). */
export interface RegisteredKey {
  readonly principal: () => Principal | undefined;
  readonly line: string;
}

interface ParsedRegisteredKey {
  readonly key: ssh2.ParsedKey;
  readonly blob: Buffer;
  readonly principal: () => Principal | undefined;
}

const AUTH_METHODS: ("password" | "keyboard-interactive" | "publickey")[] = ["publickey", "password", "keyboard-interactive"];
/** Failed authentication attempts (bad token, bad key signature, refused session) per connection. */
const MAX_AUTH_FAILURES = 6;

/** Where an SSH authentication attempt came from (the user name is the connection). */
function authContext(connection: string, state: ClientState): AuthCtx {
  return { clientProtocol: "ssh", connection, clientAddress: state.clientAddress, claimedUser: connection };
}

export class SshAuthenticator {
  readonly #gatekeeper: Gatekeeper;
  readonly #keys: readonly ParsedRegisteredKey[];

  constructor(gatekeeper: Gatekeeper, publicKeys: readonly RegisteredKey[]) {
    this.#gatekeeper = gatekeeper;
    const keys: ParsedRegisteredKey[] = [];
    for (const k of publicKeys) {
      const parsed = utils.parseKey(k.line);
      if (parsed instanceof Error) continue; // config validation already named bad lines
      keys.push({ key: parsed, blob: parsed.getPublicSSH(), principal: k.principal });
    }
    this.#keys = keys;
  }

  /**
   * One authentication attempt. On success the session is admitted (`state.gate` and
   * `state.connection` set, `onAdmitted` called) before the client is accepted.
   */
  async authenticate(client: ServerClient, ctx: AuthContext, state: ClientState, onAdmitted: () => void): Promise<void> {
    if (state.gate !== undefined) {
      ctx.reject();
      return;
    }
    const connectionName = ctx.username;
    let principal: Principal | undefined;
    switch (ctx.method) {
      case "password":
        principal = await this.#tokenPrincipal(ctx.password, connectionName, state);
        break;
      case "keyboard-interactive": {
        const answer = await new Promise<string | undefined>((resolve) => {
          ctx.prompt([{ prompt: "Airlock token: ", echo: false }], "Airlock", "", (answers) => resolve(answers[0]));
        });
        principal = await this.#tokenPrincipal(answer ?? "", connectionName, state);
        break;
      }
      case "publickey": {
        const match = this.#keys.find((k) => k.blob.length === ctx.key.data.length && timingSafeEqual(k.blob, ctx.key.data));
        if (match === undefined) {
          ctx.reject(AUTH_METHODS);
          return;
        }
        if (ctx.signature === undefined || ctx.blob === undefined) {
          ctx.accept(); // the client asks whether this key would do: it would, if it can sign
          return;
        }
        if (!match.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) {
          await this.#gatekeeper.authFailure(authContext(connectionName, state), new GatewayError("GW_AUTH_INVALID", "bad public key signature"));
          this.#failed(client, ctx, state);
          return;
        }
        principal = match.principal();
        if (principal === undefined) {
          await this.#gatekeeper.authFailure(authContext(connectionName, state), new GatewayError("GW_AUTH_REVOKED", "the key's service account is blocked"));
        }
        break;
      }
      case "none":
      case "hostbased":
        ctx.reject(AUTH_METHODS);
        return;
    }
    if (principal === undefined) {
      this.#failed(client, ctx, state);
      return;
    }
    // The user name selects the connection; unknown connections are judged (and audited) too,
    // and the client learns only that authentication failed.
    const admitted = await this.#gatekeeper.admit(
      { clientProtocol: "ssh", connection: connectionName, principal, clientAddress: state.clientAddress, attributes: { method: ctx.method, client: state.ident } },
      ["ssh"],
    );
    if (!admitted.ok) {
      this.#failed(client, ctx, state);
      return;
    }
    const gate = admitted.session;
    state.gate = gate;
    state.connection = admitted.connection;
    onAdmitted();
    gate.signal.addEventListener(
      "abort",
      () => {
        const t = gate.termination;
        state.endReason = t?.reason ?? "terminated";
        state.endDetail = t?.detail ?? "the session was ended";
        for (const ch of state.channels) {
          try {
            ch.stderr.write(`\r\n${gatewayText(state.endDetail)}\r\n`);
          } catch {
            // the channel may be gone already
          }
        }
        state.upstreamClient?.end();
        client.end();
      },
      { once: true },
    );
    ctx.accept();
  }

  /** Refuse this attempt; past MAX_AUTH_FAILURES the connection is closed (as sshd's MaxAuthTries). */
  #failed(client: ServerClient, ctx: AuthContext, state: ClientState): void {
    state.authFailures++;
    ctx.reject(AUTH_METHODS);
    if (state.authFailures >= MAX_AUTH_FAILURES) client.end();
  }

  /** The token's principal, or undefined (the gatekeeper audited why). An empty answer is no attempt. */
  async #tokenPrincipal(token: string, connection: string, state: ClientState): Promise<Principal | undefined> {
    if (token === "") return undefined;
    return this.#gatekeeper.authenticate(token, authContext(connection, state)).catch(() => undefined);
  }
}
