/**
 * Fakes of the cloud secret stores for the secret-reference tests (none of the real services
 * can be reached from these machines). Each answers the one call Airlock makes the way the
 * service documents it, and checks the caller's authentication itself:
 * - AWS Secrets Manager: `POST /` with `X-Amz-Target: secretsmanager.GetSecretValue`
 *   (JSON 1.1 protocol), the SigV4 signature recomputed here from the raw request (canonical
 *   request, string to sign, signing key; docs.aws.amazon.com/IAM/latest/UserGuide/
 *   reference_sigv-create-signed-request.html), ±5 min clock skew, the session token;
 *   errors as `{"__type", "message"}`.
 * - Google Secret Manager: the OAuth2 token endpoint verifies the service-account JWT
 *   (RS256 with the account's public key, iss, aud = token URI, scope, exp) and issues a
 *   bearer token; `GET /v1/projects/P/secrets/S/versions/V:access` answers the payload with
 *   its CRC32C; errors as `{"error": {"code", "message", "status"}}`.
 * - Azure: the Entra ID token endpoint (`POST /TENANT/oauth2/v2.0/token`, client credentials,
 *   scope https://vault.azure.net/.default) and Key Vault's `GET /secrets/NAME[/VERSION]
 *   ?api-version=7.4` under `/VAULT` (the vault's host in real life); errors as
 *   `{"error": {"code", "message"}}`.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { exportPKCS8, exportSPKI, generateKeyPair, importSPKI, jwtVerify } from "jose";
import { crc32c } from "../../src/secrets/gcp-sm.js";

interface Fake {
  readonly url: string;
  /** Requests seen, as "METHOD /path". */
  readonly requests: string[];
  close(): Promise<void>;
}

type Answer = { status: number; body: unknown };
type Handler = (req: IncomingMessage, body: Buffer, url: URL) => Answer | Promise<Answer>;

async function serve(handler: Handler): Promise<Fake> {
  const requests: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://fake");
      requests.push(`${req.method ?? ""} ${url.pathname}`);
      void Promise.resolve(handler(req, Buffer.concat(chunks), url)).then((out) => {
        res.writeHead(out.status, { "content-type": "application/json" }).end(JSON.stringify(out.body));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const a = server.address();
  const port = typeof a === "object" && a !== null ? a.port : 0;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
};
const same = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

// ---------------------------------------------------------------- AWS Secrets Manager

export interface FakeAws extends Fake {
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  set(secretId: string, value: string): void;
  /** Successful GetSecretValue calls. */
  readonly reads: number;
  /** Signatures refused so far. */
  readonly refused: number;
}

export async function startFakeAws(): Promise<FakeAws> {
  const region = "eu-central-1";
  const accessKeyId = `AKIA${randomBytes(8).toString("hex").toUpperCase()}`;
  const secretAccessKey = randomBytes(30).toString("base64");
  const sessionToken = `IQoJb3JpZ2luX2Vj${randomBytes(24).toString("base64url")}`;
  const secrets = new Map<string, { value: string; version: string }>();
  let reads = 0;
  let refused = 0;
  const fail = (status: number, type: string, message: string): Answer => {
    if (type === "InvalidSignatureException" || type === "UnrecognizedClientException" || type === "IncompleteSignatureException") refused++;
    return { status, body: { __type: type, message } };
  };
  const fake = await serve((req, body, url) => {
    if (req.method !== "POST" || url.pathname !== "/") return fail(404, "UnknownOperationException", "");
    const auth = header(req, "authorization") ?? "";
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth);
    if (m === null) return fail(400, "IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders and Signature");
    const [, keyId, day, reqRegion, service, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string, string];
    if (keyId !== accessKeyId) return fail(400, "UnrecognizedClientException", "The security token included in the request is invalid.");
    if (reqRegion !== region || service !== "secretsmanager") return fail(400, "InvalidSignatureException", "Credential should be scoped to a valid region / service");
    const date = header(req, "x-amz-date") ?? "";
    const when = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
    if (when === null || date.slice(0, 8) !== day) return fail(400, "IncompleteSignatureException", "x-amz-date is missing or does not match the credential scope");
    const at = Date.UTC(Number(when[1]), Number(when[2]) - 1, Number(when[3]), Number(when[4]), Number(when[5]), Number(when[6]));
    if (Math.abs(Date.now() - at) > 5 * 60_000) return fail(400, "InvalidSignatureException", "Signature expired");
    const names = signedHeaders.split(";");
    for (const required of ["host", "x-amz-date", "x-amz-target", "x-amz-security-token"]) {
      if (!names.includes(required)) return fail(400, "InvalidSignatureException", `${required} must be signed`);
    }
    if (header(req, "x-amz-security-token") !== sessionToken) return fail(400, "UnrecognizedClientException", "The security token included in the request is invalid.");
    // Recompute the signature from what arrived.
    const canonicalHeaders = names.map((n) => `${n}:${(header(req, n) ?? "").trim().replace(/\s+/g, " ")}\n`).join("");
    const creq = ["POST", "/", "", canonicalHeaders, signedHeaders, createHash("sha256").update(body).digest("hex")].join("\n");
    const sts = ["AWS4-HMAC-SHA256", date, `${day}/${region}/secretsmanager/aws4_request`, createHash("sha256").update(creq).digest("hex")].join("\n");
    let key: Buffer = createHmac("sha256", `AWS4${secretAccessKey}`).update(day).digest();
    for (const part of [region, "secretsmanager", "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
    const expected = createHmac("sha256", key).update(sts).digest("hex");
    if (!same(expected, signature)) {
      return fail(400, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.");
    }
    if (header(req, "x-amz-target") !== "secretsmanager.GetSecretValue") return fail(400, "UnknownOperationException", "");
    if (header(req, "content-type") !== "application/x-amz-json-1.1") return fail(400, "SerializationException", "");
    let input: unknown;
    try {
      input = JSON.parse(body.toString("utf8"));
    } catch {
      return fail(400, "SerializationException", "");
    }
    const id = typeof input === "object" && input !== null && "SecretId" in input && typeof input.SecretId === "string" ? input.SecretId : undefined;
    if (id === undefined) return fail(400, "ValidationException", "SecretId is required");
    const name = /^arn:aws:secretsmanager:[^:]+:\d+:secret:(.+?)(?:-[A-Za-z0-9]{6})?$/.exec(id)?.[1] ?? id;
    const s = secrets.get(name);
    if (s === undefined) return fail(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
    reads++;
    return {
      status: 200,
      body: { ARN: `arn:aws:secretsmanager:${region}:123456789012:secret:${name}-AbCdEf`, Name: name, VersionId: s.version, SecretString: s.value, VersionStages: ["AWSCURRENT"], CreatedDate: Date.now() / 1000 },
    };
  });
  return {
    ...fake,
    region,
    accessKeyId,
    secretAccessKey,
    sessionToken,
    set(secretId, value) {
      secrets.set(secretId, { value, version: randomBytes(16).toString("hex") });
    },
    get reads() {
      return reads;
    },
    get refused() {
      return refused;
    },
  };
}

// ---------------------------------------------------------------- Google Secret Manager

export interface FakeGcp extends Fake {
  /** The service-account key file's JSON text (token_uri points at this fake). */
  readonly keyFile: string;
  set(name: string, value: string): void;
  /** Tokens issued so far. */
  readonly logins: number;
  revokeTokens(): void;
}

export async function startFakeGcp(): Promise<FakeGcp> {
  const email = `airlock@proj-${randomBytes(3).toString("hex")}.iam.gserviceaccount.com`;
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const pem = await exportPKCS8(privateKey);
  const verifyKey = await importSPKI(await exportSPKI(publicKey), "RS256");
  const secrets = new Map<string, string[]>();
  const tokens = new Set<string>();
  let logins = 0;
  let tokenUri = "";
  const gerr = (code: number, status: string): Answer => ({ status: code, body: { error: { code, message: status, status } } });
  const fake = await serve(async (req, body, url) => {
    if (req.method === "POST" && url.pathname === "/token") {
      const form = new URLSearchParams(body.toString("utf8"));
      const assertion = form.get("assertion") ?? "";
      if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer" || !(await verifyJwt(assertion, verifyKey, email, tokenUri))) {
        return { status: 400, body: { error: "invalid_grant", error_description: "Invalid JWT Signature." } };
      }
      logins++;
      const token = `ya29.${randomBytes(24).toString("base64url")}`;
      tokens.add(token);
      return { status: 200, body: { access_token: token, expires_in: 3599, token_type: "Bearer" } };
    }
    const m = /^\/v1\/projects\/([^/]+)\/secrets\/([^/]+)\/versions\/([^/:]+):access$/.exec(url.pathname);
    if (req.method === "GET" && m !== null) {
      const token = /^Bearer (.+)$/.exec(header(req, "authorization") ?? "")?.[1];
      if (token === undefined || !tokens.has(token)) return gerr(401, "UNAUTHENTICATED");
      const versions = secrets.get(`projects/${m[1] ?? ""}/secrets/${m[2] ?? ""}`);
      const v = m[3] === "latest" ? versions?.length : Number(m[3]);
      const value = versions === undefined || v === undefined ? undefined : versions[v - 1];
      if (value === undefined || v === undefined) return gerr(404, "NOT_FOUND");
      const data = Buffer.from(value, "utf8");
      return { status: 200, body: { name: `projects/123456789/secrets/${m[2] ?? ""}/versions/${v}`, payload: { data: data.toString("base64"), dataCrc32c: String(crc32c(data)) } } };
    }
    return gerr(404, "NOT_FOUND");
  });
  tokenUri = `${fake.url}/token`;
  const keyFile = JSON.stringify({
    type: "service_account",
    project_id: "acme",
    private_key_id: randomBytes(20).toString("hex"),
    private_key: pem,
    client_email: email,
    client_id: "1234567890",
    token_uri: tokenUri,
  });
  return {
    ...fake,
    keyFile,
    set(name, value) {
      const list = secrets.get(name) ?? [];
      list.push(value);
      secrets.set(name, list);
    },
    get logins() {
      return logins;
    },
    revokeTokens() {
      tokens.clear();
    },
  };
}

async function verifyJwt(assertion: string, key: Awaited<ReturnType<typeof importSPKI>>, email: string, aud: string): Promise<boolean> {
  try {
    const { payload, protectedHeader } = await jwtVerify(assertion, key, { issuer: email, audience: aud, algorithms: ["RS256"], maxTokenAge: "1h" });
    return protectedHeader.typ === "JWT" && typeof payload["scope"] === "string" && payload["scope"].split(" ").includes("https://www.googleapis.com/auth/cloud-platform") && typeof payload.exp === "number" && payload.exp - (payload.iat ?? 0) <= 3600;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- Azure Key Vault

export interface FakeAzure extends Fake {
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** For secrets.azure.vaultUrl: this fake with /{vault} as the vault's base. */
  readonly vaultUrl: string;
  set(vault: string, name: string, value: string): void;
  readonly logins: number;
  revokeTokens(): void;
}

export async function startFakeAzure(): Promise<FakeAzure> {
  const tenantId = randomUUIDLike();
  const clientId = randomUUIDLike();
  const clientSecret = `Xq8Q~${randomBytes(24).toString("base64url")}`;
  const secrets = new Map<string, { version: string; value: string }[]>();
  const tokens = new Set<string>();
  let logins = 0;
  const kverr = (status: number, code: string): Answer => ({ status, body: { error: { code, message: code } } });
  const fake = await serve((req, body, url) => {
    if (req.method === "POST" && url.pathname === `/${tenantId}/oauth2/v2.0/token`) {
      if (!(header(req, "content-type") ?? "").startsWith("application/x-www-form-urlencoded")) return { status: 400, body: { error: "invalid_request" } };
      const form = new URLSearchParams(body.toString("utf8"));
      if (form.get("grant_type") !== "client_credentials" || form.get("scope") !== "https://vault.azure.net/.default") return { status: 400, body: { error: "invalid_request" } };
      if (form.get("client_id") !== clientId || !same(form.get("client_secret") ?? "", clientSecret)) {
        return { status: 401, body: { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret provided." } };
      }
      logins++;
      const token = `eyJ0eXAiOiJKV1Qi.${randomBytes(32).toString("base64url")}`;
      tokens.add(token);
      return { status: 200, body: { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: token } };
    }
    const m = /^\/([^/]+)\/secrets\/([A-Za-z0-9-]+)(?:\/([0-9a-f]{32}))?$/.exec(url.pathname);
    if (req.method === "GET" && m !== null) {
      if (url.searchParams.get("api-version") !== "7.4") return kverr(400, "BadParameter");
      const token = /^Bearer (.+)$/.exec(header(req, "authorization") ?? "")?.[1];
      if (token === undefined || !tokens.has(token)) return kverr(401, "Unauthorized");
      const versions = secrets.get(`${m[1] ?? ""}/${m[2] ?? ""}`);
      const v = m[3] === undefined ? versions?.at(-1) : versions?.find((x) => x.version === m[3]);
      if (v === undefined) return kverr(404, "SecretNotFound");
      return {
        status: 200,
        body: { value: v.value, id: `https://${m[1] ?? ""}.vault.azure.net/secrets/${m[2] ?? ""}/${v.version}`, attributes: { enabled: true, created: 1_700_000_000, updated: 1_700_000_000, recoveryLevel: "Recoverable+Purgeable" } },
      };
    }
    return kverr(404, "NotFound");
  });
  return {
    ...fake,
    tenantId,
    clientId,
    clientSecret,
    vaultUrl: `${fake.url}/{vault}`,
    set(vault, name, value) {
      const list = secrets.get(`${vault}/${name}`) ?? [];
      list.push({ version: randomBytes(16).toString("hex"), value });
      secrets.set(`${vault}/${name}`, list);
    },
    get logins() {
      return logins;
    },
    revokeTokens() {
      tokens.clear();
    },
  };
}

function randomUUIDLike(): string {
  const h = randomBytes(16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
