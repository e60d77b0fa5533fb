/**
 * The access token a cloud secret store is called with (Google's service-account JWT flow,
 * Azure's client credentials): fetched once, reused until shortly before it expires, and
 * dropped when the store answers 401 (revoked early), so that the next call fetches a new one.
 * Every token is handed to `onValue` (the log scrubber) before it is used.
 */
import { z } from "zod";
import { secretHttp } from "./http.js";

/** RFC 6749 §5.1 access token response. */
export const tokenAnswer = z.object({ access_token: z.string().min(1), expires_in: z.union([z.number(), z.string()]).optional() });

export class BearerToken {
  #token: { readonly value: string; readonly until: number } | undefined;
  #pending: Promise<string> | undefined;

  constructor(
    private readonly fetchToken: () => Promise<{ readonly token: string; readonly expiresInS: number }>,
    private readonly onValue?: (value: string) => void,
  ) {}

  get(): Promise<string> {
    const t = this.#token;
    if (t !== undefined && Date.now() < t.until) return Promise.resolve(t.value);
    this.#pending ??= this.fetchToken()
      .then(({ token, expiresInS }) => {
        this.onValue?.(token);
        // Renew a minute early (or at 90% of a short lifetime).
        const lifeMs = Math.max(1_000, Math.min(expiresInS * 1000 - 60_000, expiresInS * 900));
        this.#token = { value: token, until: Date.now() + lifeMs };
        return token;
      })
      .finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  drop(): void {
    this.#token = undefined;
  }
}

/** POST an `application/x-www-form-urlencoded` token request; returns the token and its lifetime. */
export async function formTokenRequest(url: URL, form: Readonly<Record<string, string>>, timeoutMs: number): Promise<{ token: string; expiresInS: number } | undefined> {
  const raw = await secretHttp({ method: "POST", url, headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form).toString(), timeoutMs });
  const parsed = tokenAnswer.safeParse(raw);
  if (!parsed.success) return undefined;
  const e = Number(parsed.data.expires_in ?? 3600);
  return { token: parsed.data.access_token, expiresInS: Number.isFinite(e) && e > 0 ? e : 3600 };
}
