import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import { generate } from "selfsigned";
import { GatewayError } from "../core/errors.js";
import type { SecretRef } from "../core/secret.js";

export interface ListenerTls {
  readonly context: SecureContext;
  readonly require: boolean;
  /** Where the certificate came from, for the start-up banner. */
  readonly source: string;
  readonly certPem: string;
}

/**
 * The client-facing certificate: from `tls.cert`/`tls.key`, or, with `tls.selfSigned`, a
 * self-signed one generated once under `<dataDir>/tls/` (for localhost and 127.0.0.1).
 */
export async function loadListenerTls(
  tls: { readonly cert?: SecretRef | undefined; readonly key?: SecretRef | undefined; readonly selfSigned: boolean; readonly require: boolean },
  dataDir: string,
  resolveSecret: (ref: SecretRef) => Promise<string>,
): Promise<ListenerTls | undefined> {
  let cert: string;
  let key: string;
  let source: string;
  if (tls.cert !== undefined && tls.key !== undefined) {
    cert = await resolveSecret(tls.cert);
    key = await resolveSecret(tls.key);
    source = "configured certificate";
  } else if (tls.selfSigned) {
    const dir = join(dataDir, "tls");
    const certPath = join(dir, "cert.pem");
    const keyPath = join(dir, "key.pem");
    if (!existsSync(certPath) || !existsSync(keyPath)) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const pems = await generate([{ name: "commonName", value: "airlock.localhost" }], {
        keyType: "ec",
        curve: "P-256",
        notAfterDate: new Date(Date.now() + 365 * 86_400_000),
        extensions: [
          { name: "basicConstraints", cA: false },
          { name: "extKeyUsage", serverAuth: true },
          { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }, { type: 7, ip: "::1" }] },
        ],
      });
      await writeFile(keyPath, pems.private, { mode: 0o600 });
      await writeFile(certPath, pems.cert, { mode: 0o644 });
    }
    cert = await readFile(certPath, "utf8");
    key = await readFile(keyPath, "utf8");
    source = `self-signed certificate ${certPath}`;
  } else {
    if (tls.require) throw new GatewayError("GW_CONFIG", "tls.require is set but no certificate is configured (tls.cert/tls.key or tls.selfSigned)");
    return undefined;
  }
  try {
    return { context: createSecureContext({ cert, key, minVersion: "TLSv1.2" }), require: tls.require, source, certPem: cert };
  } catch (e) {
    throw new GatewayError("GW_CONFIG", "the TLS certificate or key is invalid", { cause: e });
  }
}
