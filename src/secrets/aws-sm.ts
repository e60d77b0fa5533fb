/**
 * AWS Secrets Manager for `aws-sm:SECRET_ID[#FIELD]` references: `GetSecretValue` over the JSON
 * protocol (POST / with `X-Amz-Target: secretsmanager.GetSecretValue`, content type
 * `application/x-amz-json-1.1`, body `{"SecretId": …}`), signed with SigV4 (aws-sigv4.ts).
 *
 * Credentials, read again for every fetch (so a rotated key file or env is picked up): the
 * configured `accessKeyId`/`secretAccessKey` references, else `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, else the profile (`profile`, `AWS_PROFILE`,
 * default "default") of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
 * ~/.aws/credentials). Region: the ARN's, else `region`, else `AWS_REGION`/`AWS_DEFAULT_REGION`.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { signV4, type AwsCredentials } from "./aws-sigv4.js";
import { SecretCache, pickField, secretUnresolved, type SecretDocument } from "./cache.js";
import { SecretHttpError, secretHttp } from "./http.js";

export interface AwsSecretsOptions {
  readonly region?: string;
  /** e.g. http://127.0.0.1:4566 (tests, LocalStack, VPC endpoints); default https://secretsmanager.REGION.amazonaws.com */
  readonly endpoint?: string;
  readonly profile?: string;
  /** Explicit credentials (resolved references); else env, else the profile. */
  readonly credentials?: () => Promise<AwsCredentials>;
  readonly timeoutMs: number;
  readonly refreshMs: number;
  readonly onValue?: (value: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

const answer = z.object({ SecretString: z.string().optional(), SecretBinary: z.string().optional() });

export class AwsSecretsManager {
  readonly #o: AwsSecretsOptions;
  readonly #cache: SecretCache;

  constructor(o: AwsSecretsOptions) {
    this.#o = o;
    this.#cache = new SecretCache(o.refreshMs);
  }

  async read(ref: { readonly secretId: string; readonly field?: string }, describe: string): Promise<string> {
    const doc = await this.#cache.get(ref.secretId, () => this.#fetch(ref.secretId, describe));
    return pickField(doc, ref.field, describe);
  }

  async #fetch(secretId: string, describe: string): Promise<SecretDocument> {
    const env = this.#o.env ?? process.env;
    const region = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):/u.exec(secretId)?.[1] ?? this.#o.region ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"];
    if (region === undefined || region === "") throw secretUnresolved(describe, "no AWS region: set secrets.aws.region or AWS_REGION");
    const creds = await this.#credentials(describe, env);
    this.#o.onValue?.(creds.secretAccessKey);
    if (creds.sessionToken !== undefined) this.#o.onValue?.(creds.sessionToken);
    const url = new URL("/", this.#o.endpoint ?? `https://secretsmanager.${region}.amazonaws.com`);
    const body = JSON.stringify({ SecretId: secretId });
    const signed = signV4(
      {
        method: "POST",
        url,
        headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "secretsmanager.GetSecretValue" },
        body,
        region,
        service: "secretsmanager",
        now: new Date(),
      },
      creds,
    );
    let raw: unknown;
    try {
      raw = await secretHttp({ method: "POST", url, headers: signed.headers, body, timeoutMs: this.#o.timeoutMs });
    } catch (e) {
      if (e instanceof SecretHttpError) throw secretUnresolved(describe, `AWS Secrets Manager answered ${e.status}${e.code === undefined ? "" : ` (${e.code})`}`);
      throw secretUnresolved(describe, "AWS Secrets Manager could not be reached", e);
    }
    const parsed = answer.safeParse(raw);
    if (!parsed.success) throw secretUnresolved(describe, "AWS Secrets Manager's answer has no secret value");
    const text = parsed.data.SecretString ?? (parsed.data.SecretBinary === undefined ? undefined : Buffer.from(parsed.data.SecretBinary, "base64").toString("utf8"));
    if (text === undefined) throw secretUnresolved(describe, "AWS Secrets Manager's answer has no secret value");
    this.#o.onValue?.(text);
    return text;
  }

  async #credentials(describe: string, env: NodeJS.ProcessEnv): Promise<AwsCredentials> {
    if (this.#o.credentials !== undefined) return this.#o.credentials();
    const id = env["AWS_ACCESS_KEY_ID"];
    const secret = env["AWS_SECRET_ACCESS_KEY"];
    if (id !== undefined && id !== "" && secret !== undefined && secret !== "") {
      const token = env["AWS_SESSION_TOKEN"];
      return { accessKeyId: id, secretAccessKey: secret, ...(token === undefined || token === "" ? {} : { sessionToken: token }) };
    }
    const file = env["AWS_SHARED_CREDENTIALS_FILE"] ?? join(homedir(), ".aws", "credentials");
    const profile = this.#o.profile ?? env["AWS_PROFILE"] ?? "default";
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      throw secretUnresolved(describe, `no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, secrets.aws.accessKeyId, or a profile in ${file}`, e);
    }
    const section = iniSection(text, profile);
    const pid = section.get("aws_access_key_id");
    const psecret = section.get("aws_secret_access_key");
    if (pid === undefined || psecret === undefined) throw secretUnresolved(describe, `the AWS profile "${profile}" in ${file} has no aws_access_key_id/aws_secret_access_key`);
    const ptoken = section.get("aws_session_token");
    return { accessKeyId: pid, secretAccessKey: psecret, ...(ptoken === undefined ? {} : { sessionToken: ptoken }) };
  }

  close(): void {
    this.#cache.clear();
  }
}

/** The keys of `[name]` in an INI file (the AWS shared credentials format). */
export function iniSection(text: string, name: string): Map<string, string> {
  const out = new Map<string, string>();
  let inside = false;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (header !== null) {
      inside = header[1] === name;
      continue;
    }
    if (!inside) continue;
    const eq = line.indexOf("=");
    if (eq > 0) out.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return out;
}
