/**
 * Secrets from AWS Secrets Manager, Google Secret Manager and Azure Key Vault (issue 20): three
 * PostgreSQL connections whose passwords are `aws-sm:`, `gcp-sm:` and `azure-kv:` references,
 * read from fakes that verify the caller's authentication themselves (test/harness/
 * cloud-secrets.ts: SigV4 recomputed, the service-account JWT verified, client credentials
 * checked), used by a real PostgreSQL through the gateway with the real psql. A rotated secret
 * is used by the next target login while a live session continues; a revoked access token is
 * replaced; a wrong AWS key is refused by the fake's signature check and reported in psql; no
 * secret, key or token reaches the client or the logs.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AwsSecretsManager } from "../src/secrets/aws-sm.js";
import { startFakeAws, startFakeAzure, startFakeGcp, type FakeAws, type FakeAzure, type FakeGcp } from "./harness/cloud-secrets.js";
import { startTestGateway, type TestGateway } from "./harness/gateway.js";
import { startPostgres, type PgServer } from "./harness/postgres.js";
import { until } from "./harness/until.js";

const PW = { aws: "aws-sm-pw-51c0d2", gcp: "gcp-sm-pw-93a7e1", azure: "azure-kv-pw-2b8f44" } as const;
const ROTATED = { aws: "aws-sm-rotated-7e11aa", gcp: "gcp-sm-rotated-0c9d3b", azure: "azure-kv-rotated-6a5f02" } as const;
type Provider = keyof typeof PW;
const ROLE: Record<Provider, string> = { aws: "app_aws", gcp: "app_gcp", azure: "app_azure" };

let server: PgServer;
let aws: FakeAws;
let gcp: FakeGcp;
let azure: FakeAzure;
let t: TestGateway;
let token: string;

beforeAll(async () => {
  server = await startPostgres({ users: (Object.keys(PW) as Provider[]).map((p) => ({ name: ROLE[p], password: PW[p], auth: "scram-sha-256" as const })) });
  [aws, gcp, azure] = await Promise.all([startFakeAws(), startFakeGcp(), startFakeAzure()]);
  aws.set("prod/orders/db", JSON.stringify({ username: ROLE.aws, password: PW.aws }));
  gcp.set("projects/acme/secrets/orders-db", PW.gcp);
  azure.set("acme-prod", "orders-db", PW.azure);
  process.env["TEST_AWS_SECRET"] = aws.secretAccessKey;
  process.env["TEST_AWS_TOKEN"] = aws.sessionToken;
  process.env["TEST_GCP_KEY"] = gcp.keyFile;
  process.env["TEST_AZURE_SECRET"] = azure.clientSecret;
  const pgConn = (name: string, p: Provider, password: string) => ({
    name,
    type: "postgres" as const,
    host: server.host,
    port: server.port,
    database: "postgres",
    user: ROLE[p],
    password,
    groups: ["agents"],
    pool: false as const,
  });
  t = await startTestGateway({
    serviceAccounts: [{ name: "agent", groups: ["agents"] }],
    secrets: {
      refreshInterval: "1s",
      aws: { region: aws.region, endpoint: aws.url, accessKeyId: aws.accessKeyId, secretAccessKey: "env:TEST_AWS_SECRET", sessionToken: "env:TEST_AWS_TOKEN" },
      gcp: { credentials: "env:TEST_GCP_KEY", endpoint: gcp.url },
      azure: { tenantId: azure.tenantId, clientId: azure.clientId, clientSecret: "env:TEST_AZURE_SECRET", authorityHost: azure.url, vaultUrl: azure.vaultUrl },
    },
    connections: [
      pgConn("via-aws", "aws", "aws-sm:prod/orders/db#password"),
      pgConn("via-gcp", "gcp", "gcp-sm:projects/acme/secrets/orders-db/versions/latest"),
      pgConn("via-azure", "azure", "azure-kv:acme-prod/orders-db"),
      pgConn("aws-missing", "aws", "aws-sm:prod/nothing#password"),
    ],
  });
  token = await t.mint("agent");
}, 120_000);

afterAll(async () => {
  await t.stop();
  await Promise.all([aws.close(), gcp.close(), azure.close()]);
  await server.stop();
  delete process.env["TEST_AWS_SECRET"];
  delete process.env["TEST_AWS_TOKEN"];
  delete process.env["TEST_GCP_KEY"];
  delete process.env["TEST_AZURE_SECRET"];
});

const CONN: Record<Provider, string> = { aws: "via-aws", gcp: "via-gcp", azure: "via-azure" };

describe("cloud secret managers: references", () => {
  it.each(["aws", "gcp", "azure"] as const)("%s: logs in to the target with the password read from the store", async (p) => {
    const r = await t.psql(CONN[p], token, ["-At", "-c", "select current_user"]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe(ROLE[p]);
  }, 60_000);

  it("each store saw its own authenticated call", () => {
    expect(aws.reads).toBeGreaterThan(0);
    expect(aws.refused).toBe(0);
    expect(gcp.logins).toBe(1);
    expect(gcp.requests).toContain("GET /v1/projects/acme/secrets/orders-db/versions/latest:access");
    expect(azure.logins).toBe(1);
    expect(azure.requests).toContain("GET /acme-prod/secrets/orders-db");
  });

  it.each(["aws", "gcp", "azure"] as const)("%s: a rotated secret is used by the next target login; a live session continues", async (p) => {
    const live = new pg.Client({ host: "127.0.0.1", port: t.pgPort, user: "agent", password: token, database: CONN[p] });
    await live.connect();
    await server.psql(`ALTER ROLE ${ROLE[p]} PASSWORD '${ROTATED[p]}'`);
    if (p === "aws") aws.set("prod/orders/db", JSON.stringify({ username: ROLE.aws, password: ROTATED.aws }));
    if (p === "gcp") gcp.set("projects/acme/secrets/orders-db", ROTATED.gcp);
    if (p === "azure") azure.set("acme-prod", "orders-db", ROTATED.azure);
    expect((await live.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    await until(
      "a new session to log in with the rotated password",
      async () => {
        const r = await t.psql(CONN[p], token, ["-At", "-c", "select 42"]);
        return r.code === 0 && r.stdout.trim() === "42" ? true : undefined;
      },
      20_000,
    );
    expect((await live.query("select 2 as two")).rows).toEqual([{ two: 2 }]);
    await live.end();
  }, 60_000);

  it("gcp and azure: a revoked access token is replaced by a fresh login", async () => {
    const before = { gcp: gcp.logins, azure: azure.logins };
    gcp.revokeTokens();
    azure.revokeTokens();
    await new Promise((r) => setTimeout(r, 1_100)); // past the refresh interval
    for (const p of ["gcp", "azure"] as const) {
      const r = await t.psql(CONN[p], token, ["-At", "-c", "select 7"]);
      expect(r.stdout.trim(), p).toBe("7");
    }
    expect(gcp.logins).toBe(before.gcp + 1);
    expect(azure.logins).toBe(before.azure + 1);
  }, 60_000);

  it("a secret the store does not have is a clear error in psql naming the reference and AWS's error code", async () => {
    const r = await t.psql("aws-missing", token, ["-At", "-c", "select 1"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/airlock: /);
    expect(t.logs()).toContain("aws-sm:prod/nothing#password");
    expect(t.logs()).toContain("ResourceNotFoundException");
  }, 60_000);

  it("the fake refuses a wrong secret key by its own signature check, and the client says so", async () => {
    const wrong = new AwsSecretsManager({
      region: aws.region,
      endpoint: aws.url,
      credentials: () => Promise.resolve({ accessKeyId: aws.accessKeyId, secretAccessKey: `${aws.secretAccessKey}x`, sessionToken: aws.sessionToken }),
      timeoutMs: 5_000,
      refreshMs: 0,
    });
    const before = aws.refused;
    await expect(wrong.read({ secretId: "prod/orders/db", field: "password" }, "aws-sm:prod/orders/db#password")).rejects.toThrow(/InvalidSignatureException/);
    expect(aws.refused).toBe(before + 1);
    const right = new AwsSecretsManager({
      region: aws.region,
      endpoint: aws.url,
      credentials: () => Promise.resolve({ accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey, sessionToken: aws.sessionToken }),
      timeoutMs: 5_000,
      refreshMs: 0,
    });
    // An ARN names its region; the fake resolves it to the same secret.
    expect(await right.read({ secretId: `arn:aws:secretsmanager:${aws.region}:123456789012:secret:prod/orders/db-AbCdEf`, field: "username" }, "arn")).toBe(ROLE.aws);
  });

  it("the fake refuses a request whose body was changed after signing", async () => {
    // Sign one body, send another: the payload hash in the canonical request no longer holds.
    const { signV4 } = await import("../src/secrets/aws-sigv4.js");
    const url = new URL("/", aws.url);
    const signed = signV4(
      {
        method: "POST",
        url,
        headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "secretsmanager.GetSecretValue" },
        body: JSON.stringify({ SecretId: "prod/orders/db" }),
        region: aws.region,
        service: "secretsmanager",
        now: new Date(),
      },
      { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey, sessionToken: aws.sessionToken },
    );
    const res = await fetch(url, { method: "POST", headers: signed.headers, body: JSON.stringify({ SecretId: "prod/other" }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { __type: string }).__type).toBe("InvalidSignatureException");
  });

  it("no password, key, service-account key or token reaches the client or the logs", async () => {
    const r = await t.psql("aws-missing", token, ["-At", "-c", "select 1"]);
    const logs = t.logs();
    const privateKey = (JSON.parse(gcp.keyFile) as { private_key: string }).private_key;
    for (const secret of [...Object.values(PW), ...Object.values(ROTATED), aws.secretAccessKey, aws.sessionToken, azure.clientSecret, privateKey.split("\n")[1] ?? "x"]) {
      expect(r.stderr).not.toContain(secret);
      expect(logs).not.toContain(secret);
    }
    expect(logs).not.toMatch(/ya29\.|eyJ0eXAiOiJKV1Qi\./);
  }, 60_000);
});
