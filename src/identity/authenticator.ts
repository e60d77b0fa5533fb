/**
 * The one authenticator every engine and the API use: a presented credential → a Principal.
 *
 *  - An Airlock token (our own issuer `airlock`, recognised on its unverified `iss`) is
 *    verified locally by the TokenService: cheap, no network.
 *  - Anything else must be a JWT from a trusted external issuer (`oidc:` in the config),
 *    verified by TrustedIssuers against the issuer's JWKS.
 *  - Either way, a blocked principal id (blockPrincipal) is refused.
 *
 * Every failure is a GatewayError with a GW_AUTH_* code, so engines map it to their native
 * refusal (28P01 on PostgreSQL, 401 on the API) and audit it.
 */
import { GatewayError, isGatewayError } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import { TrustedIssuers } from "./issuers.js";
import { MAX_TOKEN_LENGTH, TOKEN_ISSUER } from "./tokens.js";
import type { TokenService } from "./tokens.js";

export type Authenticate = (token: string) => Promise<Principal>;

export interface AuthenticatorDeps {
  readonly tokens: Pick<TokenService, "verify" | "isBlocked">;
  readonly issuers: TrustedIssuers;
}

export class Authenticator {
  readonly #tokens: AuthenticatorDeps["tokens"];
  readonly #issuers: TrustedIssuers;

  constructor(deps: AuthenticatorDeps) {
    this.#tokens = deps.tokens;
    this.#issuers = deps.issuers;
  }

  /** Bound, so it can be handed to engines as a plain function. */
  readonly authenticate: Authenticate = async (token: string): Promise<Principal> => {
    if (token.length === 0) throw new GatewayError("GW_AUTH_MISSING", "no token presented");
    const iss = TrustedIssuers.peekIssuer(token);
    if (iss === TOKEN_ISSUER || this.#issuers.size === 0) {
      // Ours (or no external issuers configured): the TokenService gives the precise refusal.
      if (token.length > MAX_TOKEN_LENGTH) throw new GatewayError("GW_AUTH_INVALID", "invalid token: too large");
      return this.#tokens.verify(token);
    }
    const { principal } = await this.verifyExternal(token);
    return principal;
  };

  /** Verify a trusted issuer's JWT (token exchange uses this directly). */
  async verifyExternal(token: string): ReturnType<TrustedIssuers["verify"]> {
    let verified: Awaited<ReturnType<TrustedIssuers["verify"]>>;
    try {
      verified = await this.#issuers.verify(token);
    } catch (e) {
      if (isGatewayError(e)) throw e;
      throw new GatewayError("GW_AUTH_INVALID", "invalid token", { cause: e });
    }
    if (this.#tokens.isBlocked(verified.principal.id)) {
      throw new GatewayError("GW_AUTH_REVOKED", "credential refused: its principal is blocked");
    }
    return verified;
  }
}
