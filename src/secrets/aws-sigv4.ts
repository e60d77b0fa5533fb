/**
 * AWS Signature Version 4 for requests with headers (docs.aws.amazon.com/IAM/latest/UserGuide/
 * reference_sigv-create-signed-request.html): canonical request → string to sign → HMAC chain
 * of the date, region, service and "aws4_request" → Authorization header. Pure: the clock and
 * the credentials are arguments. Checked against AWS's published test suite (aws-sig-v4-test-suite).
 */
import { createHash, createHmac } from "node:crypto";

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface SigV4Input {
  readonly method: string;
  readonly url: URL;
  /** Headers to sign (host is added from the URL when missing). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly region: string;
  readonly service: string;
  readonly now: Date;
}

export interface SigV4Output {
  /** The headers to send: the given ones plus host, x-amz-date, x-amz-security-token, authorization. */
  readonly headers: Record<string, string>;
  readonly canonicalRequest: string;
  readonly stringToSign: string;
  readonly signature: string;
}

const sha256Hex = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");
const hmac = (key: Buffer | string, data: string): Buffer => createHmac("sha256", key).update(data, "utf8").digest();

/** RFC 3986 unreserved characters stay; everything else is %XX (uppercase), as SigV4 requires. */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** 20150830T123600Z */
export function amzDate(now: Date): string {
  return now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

export function signingKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), "aws4_request");
}

function canonicalPath(pathname: string): string {
  if (pathname === "" || pathname === "/") return "/";
  return pathname
    .split("/")
    .map((seg) => uriEncode(decodeURIComponent(seg)))
    .join("/");
}

function canonicalQuery(url: URL): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of url.searchParams) pairs.push([uriEncode(k), uriEncode(v)]);
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

export function signV4(input: SigV4Input, creds: AwsCredentials): SigV4Output {
  const date = amzDate(input.now);
  const headers: Record<string, string> = { ...input.headers };
  const lower = new Map<string, string>();
  for (const [k, v] of Object.entries(headers)) lower.set(k.toLowerCase(), v);
  if (!lower.has("host")) {
    headers["host"] = input.url.host;
    lower.set("host", input.url.host);
  }
  if (!lower.has("x-amz-date")) {
    headers["x-amz-date"] = date;
    lower.set("x-amz-date", date);
  }
  if (creds.sessionToken !== undefined) {
    headers["x-amz-security-token"] = creds.sessionToken;
    lower.set("x-amz-security-token", creds.sessionToken);
  }
  const names = [...lower.keys()].sort();
  const canonicalHeaders = names.map((n) => `${n}:${(lower.get(n) ?? "").trim().replace(/\s+/g, " ")}\n`).join("");
  const signedHeaders = names.join(";");
  const canonicalRequest = [input.method.toUpperCase(), canonicalPath(input.url.pathname), canonicalQuery(input.url), canonicalHeaders, signedHeaders, sha256Hex(input.body)].join("\n");
  const day = date.slice(0, 8);
  const scope = `${day}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", date, scope, sha256Hex(canonicalRequest)].join("\n");
  const signature = createHmac("sha256", signingKey(creds.secretAccessKey, day, input.region, input.service)).update(stringToSign, "utf8").digest("hex");
  headers["authorization"] = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { headers, canonicalRequest, stringToSign, signature };
}
