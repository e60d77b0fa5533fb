/**
 * The gateway's logger: pino with two independent layers of secret protection.
 *
 * 1. `redact`: known credential-bearing field names (password, token, authorization, …) are
 *    replaced by "[redacted]" wherever the structured object puts them (top level and one or
 *    two levels down).
 * 2. A value scrubber: every secret the gateway resolves (target passwords, keys, the admin
 *    credential) is registered here, and every serialized log line has those values replaced
 *    before it reaches the destination — so a secret that travels in an unexpected field, an
 *    error message or the log message itself still never reaches the output.
 *
 * The scrubber registry is process-wide on purpose: a secret resolved anywhere in the process
 * must be hidden from every logger in it.
 */
import { pino } from "pino";
import type { DestinationStream, Logger } from "pino";

export const REDACTED = "[redacted]";

/** Values shorter than this are not scrubbed: replacing "abc" everywhere would mangle logs. */
export const MIN_SCRUB_LENGTH = 6;

const SECRET_FIELD_NAMES = [
  "password",
  "passwd",
  "pass",
  "token",
  "accessToken",
  "access_token",
  "refreshToken",
  "refresh_token",
  "idToken",
  "id_token",
  "authorization",
  "cookie",
  "secret",
  "clientSecret",
  "client_secret",
  "key",
  "privateKey",
  "private_key",
  "apiKey",
  "api_key",
  "credential",
  "credentials",
] as const;

/** Field paths pino redacts, exported so tests and docs can see the exact list. */
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_FIELD_NAMES,
  ...SECRET_FIELD_NAMES.map((f) => `*.${f}`),
  ...SECRET_FIELD_NAMES.map((f) => `*.*.${f}`),
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  "headers.authorization",
  "headers.cookie",
  'headers["proxy-authorization"]',
];

/**
 * Every form in which a registered value may appear in a serialized line, longest first so a
 * secret that contains another registered secret is replaced whole.
 */
let scrubForms: string[] = [];
const registered = new Set<string>();

/**
 * Register a secret value so no log line ever contains it. Values shorter than
 * MIN_SCRUB_LENGTH characters are ignored (see above). Idempotent.
 */
export function registerSecretValue(value: string): void {
  if (value.length < MIN_SCRUB_LENGTH || registered.has(value)) return;
  registered.add(value);
  const forms = new Set<string>(scrubForms);
  forms.add(value);
  // Inside a JSON line the value appears escaped ("\"", "\\", "\n", \u00XX …).
  forms.add(JSON.stringify(value).slice(1, -1));
  // Secrets also travel inside URLs (postgres://user:PASS@host).
  forms.add(encodeURIComponent(value));
  scrubForms = [...forms].filter((f) => f.length >= MIN_SCRUB_LENGTH).sort((a, b) => b.length - a.length);
}

/**
 * Credentials recognisable by shape even when nobody registered them: JWTs (a base64url JSON
 * header `eyJ…` and payload) such as Airlock access tokens, and admin credentials.
 */
const TOKEN_SHAPES = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*|airlock_admin_[A-Za-z0-9_-]{16,}/g;

/** Replace every registered secret value, and anything shaped like a token, in `text` by "[redacted]". */
export function scrubSecrets(text: string): string {
  let out = text.replace(TOKEN_SHAPES, REDACTED);
  for (const form of scrubForms) {
    if (out.includes(form)) out = out.split(form).join(REDACTED);
  }
  return out;
}

/** For tests: forget registered values. */
export function clearRegisteredSecretsForTesting(): void {
  registered.clear();
  scrubForms = [];
}

export interface LoggerOptions {
  readonly level: string;
  /** Where lines go; stdout when absent. */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { name: "airlock" },
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
      hooks: {
        // Runs on the final serialized line, after redact and serializers: the last chance
        // to catch a secret that travelled in a field or message nobody anticipated.
        streamWrite: scrubSecrets,
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
