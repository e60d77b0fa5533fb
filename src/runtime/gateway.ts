/**
 * The composition root: config → wiring → listeners. Everything long-lived is created here,
 * explicitly (no registration by import side effects), and closed here in reverse order:
 * stop accepting, drain sessions, flush recordings, then close the audit log and the store.
 *
 * Over 500 lines: the one place that wires everything, in start-up order. The per-engine set-up
 * is the part that would stand alone (an engine registry); not split yet (said in the closing note).
 */
import { mkdir } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { Logger } from "pino";
import { createApiServer, type ApiServer } from "../api/server.js";
import { loadOrCreateKey } from "../audit/key.js";
import { verifyAllAudit } from "../audit/verify.js";
import { createAuditExporter } from "../audit/export/setup.js";
import { AUDIT_FILE_NAME, LocalAuditLog } from "../audit/log.js";
import { SessionAdmission } from "../protocols/common/admission.js";
import { FeatureEvaluator } from "../policy/features.js";
import type { WhenContext } from "../policy/cel.js";
import type { ProtocolEngine } from "../core/engine.js";
import { GatewayError } from "../core/errors.js";
import { writeAdminToken } from "../identity/admin.js";
import { ApprovalNotifier } from "../approvals/notify.js";
import { ApprovalService } from "../approvals/service.js";
import { TokenService, blockedPrincipalOf } from "../identity/tokens.js";
import { Authenticator } from "../identity/authenticator.js";
import { TrustedIssuers } from "../identity/issuers.js";
import { PersonRechecks, stillAdmitted } from "../identity/recheck.js";
import { withApproverGroups } from "../identity/roles.js";
import { createLogger } from "../observability/logger.js";
import { GatewayMetrics } from "../observability/metrics.js";
import { AccessEvaluator } from "../policy/access.js";
import { PolicyEvaluator } from "../policy/policies.js";
import { K8sPolicyEvaluator } from "../policy/kubernetes-policies.js";
import { HttpPolicyEvaluator } from "../policy/http-policies.js";
import { HttpEngine } from "../protocols/http/engine.js";
import { kubernetesKind } from "../protocols/kubernetes/kind.js";
import type { HttpServedKind } from "../core/http-kind.js";
import { RedisPolicyEvaluator } from "../policy/redis-policies.js";
import { SshPolicyEvaluator } from "../policy/ssh-policies.js";
import { RedisEngine } from "../protocols/redis/engine.js";
import { MysqlEngine } from "../protocols/mysql/engine.js";
import { sharedMysqlClassifier } from "../policy/mysql/index.js";
import { castPathOf } from "../protocols/ssh/cast-path.js";
import { ClassificationCache, initSqlParser, ParserPool } from "../policy/sql/index.js";
import { Pipeline } from "../policy/pipeline.js";
import { SessionRegistry } from "../policy/registry.js";
import { BudgetLedger } from "../policy/budgets.js";
import { Guards } from "../scan/watch.js";
import { PostgresEngine } from "../protocols/postgres/engine.js";
import { FileRecordingStore } from "../recording/file-store.js";
import { SharedRecordingStore } from "../recording/shared-store.js";
import type { RecordingKind } from "../store/recording-chunks.js";
import { RecordingStoreMirror } from "../recording/store-mirror.js";
import type { RecordingStore } from "../recording/types.js";
import { secretResolver } from "../secrets/resolve.js";
import { secretProviders } from "../secrets/setup.js";
import { openStore } from "../store/index.js";
import { Cluster } from "./cluster.js";
import { resolveInstanceId } from "./instance.js";
import type { WorkerIdentity } from "./workers.js";
import type { Store } from "../store/types.js";
import type { Config, ListenAddress, PolicyConfig, StoreKeyRef } from "./config.js";
import { Catalogs } from "./catalogs.js";
import { DirectDialer } from "./dialer.js";
import { AgentDialer } from "../agent/dialer.js";
import { AgentRegistry } from "../agent/registry.js";
import { AgentServer, agentTargets } from "../agent/server.js";
import { startAgentListener } from "../agent/listener.js";
import { createMaskerFactory, detectorNames } from "./maskers.js";
import { loadListenerTls, type ListenerTls } from "./tls.js";
import { LoopbackCorrelations } from "../protocols/mcp/correlation.js";
import { mcpServiceDeps } from "./mcp.js";
import { mcpGatewayService } from "./mcp-gateway.js";
import { McpPolicyEvaluator } from "../policy/mcp-policies.js";
import { McpCallLimiter, SharedMcpCallLimiter } from "../policy/mcp-limits.js";
import { ConsoleSessions } from "../api/console-session.js";
import { principalFinder, tryIt } from "./console.js";
import { LiveConnections } from "./live-connections.js";
import { LivePolicies, SwappableEvaluator } from "./live-policies.js";
import { testConnection } from "./connection-test.js";
import { effectiveConfig, effectiveConfigYaml } from "./config-show.js";
import type { Evaluator } from "../policy/evaluator.js";
import type { RolesSettings } from "../identity/config-schema.js";
import { SecretBox, type StoreKeySource } from "../secrets/secret-box.js";
import { VaultTransitKek } from "../secrets/kek.js";
import { registerSecretValue } from "../observability/logger.js";

export interface RunningGateway {
  readonly config: Config;
  readonly logger: Logger;
  readonly addresses: { readonly api?: ListenAddress; readonly postgres?: ListenAddress; readonly ssh?: ListenAddress; readonly redis?: ListenAddress; readonly mysql?: ListenAddress; readonly http?: ListenAddress; readonly agents?: ListenAddress };
  /** Connected network-resident agents (issue 19). */
  readonly agents: AgentRegistry;
  readonly store: Store;
  readonly tokens: TokenService;
  readonly registry: SessionRegistry;
  readonly audit: LocalAuditLog;
  readonly recordings: RecordingStore;
  readonly metrics: GatewayMetrics;
  readonly adminToken: string;
  readonly tls: ListenerTls | undefined;
  readonly approvals: ApprovalService;
  /** The control-plane API, when `listen.api` is set (route audits in tests). */
  readonly api: ApiServer | undefined;
  /** A fresh one-time admin login link for the web console (the demo prints one); undefined without an API listener. */
  consoleLoginLink(): string | undefined;
  /** This gateway instance's id (its audit chain in the store). */
  readonly instanceId: string;
  /**
   * Draining (SIGTERM): readiness fails, listeners stop accepting, live sessions may finish for
   * up to `graceMs`. Resolves with the number still live (close() ends them).
   */
  drain(graceMs: number): Promise<number>;
  close(): Promise<void>;
}

export interface StartGatewayOptions {
  readonly logger?: Logger;
  /** One worker of `airlock gateway --workers N` (runtime/workers.ts); absent for a single process. */
  readonly worker?: WorkerIdentity;
}

/** One protocol listener: its config address (off when absent) and how its engine is made. */
interface EngineSpec {
  readonly key: "postgres" | "ssh" | "redis" | "mysql" | "http";
  /** For messages: "PostgreSQL", "SSH". */
  readonly what: string;
  readonly address: ListenAddress | undefined;
  readonly create: () => Promise<ProtocolEngine>;
}

interface Listener {
  readonly server: Server;
  readonly sockets: Set<Socket>;
  readonly address: ListenAddress;
}

function listen(addr: ListenAddress, onSocket: (s: Socket) => void, what: string): Promise<Listener> {
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    onSocket(socket);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      const why = e.code === "EADDRINUSE" ? "the address is already in use" : e.code === "EACCES" ? "permission denied" : e.message;
      reject(new GatewayError("GW_CONFIG", `cannot listen for ${what} on ${addr.host}:${addr.port}: ${why}`, { cause: e }));
    });
    server.listen(addr.port, addr.host, 511, () => {
      const a = server.address();
      const port = a !== null && typeof a === "object" ? a.port : addr.port;
      resolve({ server, sockets, address: { host: addr.host, port } });
    });
  });
}

function closeListener(l: Listener): Promise<void> {
  return new Promise((resolve) => l.server.close(() => resolve()));
}

export async function startGateway(config: Config, options: StartGatewayOptions = {}): Promise<RunningGateway> {
  const logger = options.logger ?? createLogger({ level: config.log.level });
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => logger.error({ err: e }, "error while closing"));
  };
  try {
    // Statements not cached yet are parsed in parser threads, bounded (issue 12: a statement must
    // not be a way to stall or break the parser of every session). Started at the first statement
    // to parse (issue 13: an idle gateway does not carry their WASM heaps); the parser itself is
    // checked at start-up in this thread (initSqlParser below).
    const parsers = new ParserPool({
      limits: { maxBytes: config.limits.sqlMaxBytes, maxDepth: config.limits.sqlMaxDepth },
      timeoutMs: config.limits.sqlParseTimeout,
      lazy: true,
    });
    cleanups.push(() => parsers.close());
    // MySQL's grammar warms its prediction caches in each parser thread before taking work (seconds
    // on a busy machine): started with the gateway, so the first statements of the first MySQL
    // session do not queue behind the warm-up and fail closed as "parser busy".
    const mysqlParsers = config.listen.mysql !== undefined && config.connections.some((c) => c.type === "mysql") ? sharedMysqlClassifier().pool : undefined;
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    const keysDir = join(config.dataDir, "keys");
    await mkdir(keysDir, { recursive: true, mode: 0o700 });
    // Secret references beyond env:/file: (issue 20): every component resolves through this one
    // resolver, at each use (a target login resolves again, so a rotated secret is picked up).
    const stores = await secretProviders(config.secrets, {
      onLeaseError: (what, leaseId, err) => logger.warn({ err, leaseId }, what === "renew" ? "could not renew a dynamic database credential's lease" : "could not revoke a dynamic database credential's lease"),
    });
    cleanups.push(() => stores.close());
    const resolveSecret = secretResolver(stores.providers);

    const storeUrl = config.store.url === undefined ? undefined : await resolveSecret(config.store.url);
    // Many gateways, one store (issue 18): each writes its own audit chain under a stable id.
    const instanceId = options.worker?.instanceId ?? (await resolveInstanceId({ ...(config.instance.id === undefined ? {} : { configured: config.instance.id }), env: process.env, dataDir: config.dataDir }));
    const store = await openStore({
      instanceId,
      dataDir: config.dataDir,
      ...(storeUrl === undefined ? {} : { url: storeUrl }),
      ...(config.store.embedded === undefined ? {} : { embedded: config.store.embedded }),
      logger,
    });
    cleanups.push(() => store.close());
    // Before the audit log continues this instance's chain from the store's head: a second
    // gateway with the same instance id would continue it too, and the chain would fork.
    await store.claimWriter?.();

    const auditKey = await loadOrCreateKey(join(keysDir, "audit.key"));
    // Workers sharing a dataDir each keep their own local log (their own chain).
    const auditDir = options.worker === undefined ? join(config.dataDir, "audit") : join(config.dataDir, "audit", instanceId);
    // Export follows the store; it closes after the audit log has shipped its last records there.
    const exporter = await createAuditExporter(config.audit, { store, dir: join(auditDir, "sinks"), resolveSecret, logger });
    cleanups.push(() => exporter.close());
    const audit = await LocalAuditLog.open({ dir: auditDir, key: auditKey, store, fsync: config.audit.fsync, logger });
    cleanups.push(() => audit.close());
    await exporter.start();
    // Registration, heartbeat, lost sessions, store events (cluster.ts). Closed after the
    // listeners (sessions drained), before the audit log.
    const cluster = await Cluster.start({
      store,
      ...(storeUrl === undefined ? {} : { storeUrl }),
      audit,
      logger,
      heartbeatMs: config.instance.heartbeatInterval,
      staleMs: config.instance.staleAfter,
    });
    cleanups.push(() => cluster.close());

    // With a shared store (PostgreSQL), recordings are copied to it as they are written and read
    // back from it by the other gateways (recording/store-mirror.ts, shared-store.ts). The mirror
    // closes after the recorders (cleanups run in reverse), writing what they flushed last.
    const chunks = storeUrl === undefined ? undefined : store.recordingChunks;
    const recordingFiles = new FileRecordingStore({ dataDir: config.dataDir, logger });
    if (chunks !== undefined) {
      const mirror = new RecordingStoreMirror({ chunks, root: recordingFiles.root, logger });
      cleanups.push(() => mirror.close());
    }
    const recordings = new SharedRecordingStore(recordingFiles, chunks);
    cleanups.push(() => recordings.close());

    // The effective connections: the configuration's plus those registered in the web console,
    // kept in the store and shared by every gateway on it (runtime/live-connections.ts).
    const consoleDocs = store.consoleDocuments;
    if (consoleDocs === undefined) throw new GatewayError("GW_CONFIG", "this store does not keep console documents");
    // The key-encryption keys: Vault transit (the key stays in Vault), or key texts, which the log
    // scrubber then knows (env:/file: ones included).
    const storeKeyOf = async (r: StoreKeyRef): Promise<StoreKeySource> => {
      if ("kind" in r && r.kind === "vault-transit") {
        if (stores.vault === undefined) throw new GatewayError("GW_CONFIG", "secrets.storeKey: vault-transit needs secrets.vault");
        return new VaultTransitKek(stores.vault, r.mount, r.name);
      }
      const text = await resolveSecret(r);
      registerSecretValue(text.trim());
      return text;
    };
    const storeKey = config.secrets.storeKey === undefined ? undefined : await storeKeyOf(config.secrets.storeKey);
    const previousStoreKeys = await Promise.all(config.secrets.previousStoreKeys.map(storeKeyOf));
    const secretBox = SecretBox.open(join(keysDir, "secrets.key"), process.env, { ...(storeKey === undefined ? {} : { storeKey }), previous: previousStoreKeys });
    const liveConnections = await LiveConnections.open({ config, docs: consoleDocs, box: secretBox, logger, legacyFile: join(config.dataDir, "console-connections.json") });
    cleanups.push(() => Promise.resolve(liveConnections.close()));

    const tokens = await TokenService.open({
      keyDir: keysDir,
      store,
      serviceAccounts: config.serviceAccounts,
      defaultTtlMs: config.tokens.defaultTtl,
      maxTtlMs: config.tokens.maxTtl,
      logger,
    });
    cleanups.push(() => tokens.close());

    const metrics = new GatewayMetrics();
    cleanups.push(() => metrics.close());

    const registry = new SessionRegistry();
    const rolesRef: { current?: RolesSettings } = {};
    // Readiness (GET /readyz): up once everything listens, down while draining.
    let started = false;
    let draining = false;
    // One authenticator for every engine and the API: Airlock tokens, then trusted issuers' JWTs.
    const authenticator = new Authenticator({ tokens, issuers: new TrustedIssuers({ issuers: config.oidc, logger, serviceAccount: (name) => tokens.serviceAccount(name) }) });
    tokens.onRevoke((blockId) => {
      // A principal block (POST /v1/principals/:id/revoke, here or on a gateway sharing the store).
      const principalId = blockedPrincipalOf(blockId);
      if (principalId === undefined) return;
      const n = registry.terminate({ principalId }, "revoked", "the principal was revoked");
      if (n > 0) logger.info({ principalId, sessions: n }, "ended sessions of a revoked principal");
    });
    // Other gateways re-read revocations at once (they poll anyway; this makes it prompt).
    tokens.onRevoke(() => cluster.announce({ t: "revoke", from: instanceId }));
    tokens.onRevoke((tokenId) => {
      const n = registry.terminate({ tokenId }, "revoked", "the access token was revoked");
      if (n > 0) logger.info({ tokenId, sessions: n }, "ended sessions of a revoked token");
    });

    // Guardrails and masking: the real PostgreSQL parser (WASM), loaded once.
    await initSqlParser();
    for (const p of config.policies) detectorNames({ rule: p.name, detectors: p.detectors ?? [] });
    const maskKey = await loadOrCreateKey(join(keysDir, "mask.key"));
    const maskerFor = createMaskerFactory(maskKey);
    // Not fatal: on a starved machine the warm-up may outlast the wait; statements then wait for it (bounded).
    await mysqlParsers?.ready().catch((e: unknown) => logger.warn({ err: e }, "the MySQL parser threads are still warming up"));
    const classifications = new ClassificationCache(undefined, undefined, parsers);
    // Targets with `via:` are dialed through a network-resident agent of that group (src/agent).
    const agentRegistry = new AgentRegistry();
    const dialer = new AgentDialer(new DirectDialer(), agentRegistry);
    const agentServer = new AgentServer({
      registry: agentRegistry,
      groups: config.agents.groups,
      heartbeatMs: config.agents.heartbeat,
      authenticate: (token) => authenticator.authenticate(token),
      logger,
      audit: (input) => void audit.append(input).catch((e: unknown) => logger.error({ err: e, type: input.type }, "audit write failed")),
      targetsOf: (group) => agentTargets(liveConnections.map.values(), group),
    });
    // The API listener's close waits for every socket, agent tunnels (upgraded) included: it is
    // started first (nothing new comes in) and awaited here, after the tunnels are closed, so
    // that sessions through agents drain before their tunnels go.
    let apiClosing: Promise<void> = Promise.resolve();
    cleanups.push(async () => {
      agentServer.close();
      await apiClosing;
    });
    const catalogs = new Catalogs(
      liveConnections.map,
      { dialer, resolveSecret, timeoutMs: config.limits.connectTimeout, maxMessageBytes: config.limits.maxMessageBytes, ...(stores.leaseCredentials === undefined ? {} : { leaseCredentials: stores.leaseCredentials }) },
      logger,
    );
    cleanups.push(() => catalogs.close());

    // Just-in-time approvals and access grants (src/approvals); requests persist in the store.
    const approvalStore = store.approvals;
    if (approvalStore === undefined) throw new GatewayError("GW_CONFIG", "this store does not keep approval requests");
    const notifier = new ApprovalNotifier({
      webhooks: config.approvals.webhooks,
      ...(config.approvals.email === undefined ? {} : { email: config.approvals.email }),
      ...(config.approvals.publicUrl === undefined ? {} : { publicUrl: config.approvals.publicUrl }),
      store: approvalStore,
      resolveSecret,
      logger,
    });
    const approvals = new ApprovalService({
      store: approvalStore,
      audit,
      notifier,
      logger,
      liveSessions: registry,
      connections: liveConnections.names,
      instanceId,
      announce: (id) => cluster.announce({ t: "approval", from: instanceId, id }),
      ...(config.approvals.grants === undefined ? {} : { grants: config.approvals.grants }),
      ...(config.approvals.publicUrl === undefined ? {} : { publicUrl: config.approvals.publicUrl }),
    });
    await approvals.start();
    cluster.bind({
      approvalDecided: (id) => approvals.wake(id),
      revocations: () => tokens.pollNow(),
      kill: (sessionId, by) => registry.terminate({ sessionId }, "terminated", `terminated by ${by}`),
      cancel: (key) => pgEngine?.cancelByDigest(key) ?? Promise.resolve(false),
    });
    cleanups.push(async () => {
      await approvals.close();
      notifier.close();
    });
    // People's groups, asked again at their issuer after a browser login (src/identity/recheck.ts).
    const policyGroups = new Set(config.policies.flatMap((p) => p.groups ?? []));
    const rechecks = new PersonRechecks({
      liveSessions: registry,
      admits: (s, groups) =>
        stillAdmitted(s, groups, {
          connectionGroups: (name) => liveConnections.map.get(name)?.groups ?? [],
          policyGroups,
          hasGrant: (principalId, connection) => approvals.activeGrant(principalId, connection) !== undefined,
        }),
      tokens,
      audit: (input) => audit.append(input),
      logger,
    });
    tokens.onRevoke((tokenId) => rechecks.untrack(tokenId));
    cleanups.push(() => rechecks.close());
    // Counters shared with every gateway on the store (src/store/budgets.ts), flushed every 200 ms.
    const budgetLedger = new BudgetLedger(config.budgets, {
      metrics,
      ...(store.budgets === undefined ? {} : { store: store.budgets }),
      onSyncError: (e) => logger.warn({ err: e }, "budget counters could not be synced with the store (kept, retried)"),
    });
    cleanups.push(() => budgetLedger.close());
    // MCP call limits: shared through the same counter table (one limiter across policy reloads).
    const mcpLimiter =
      store.budgets === undefined
        ? new McpCallLimiter()
        : new SharedMcpCallLimiter(store.budgets, { onSyncError: (e) => logger.warn({ err: e }, "MCP call-limit counters could not be synced with the store (kept, retried)") });
    if (mcpLimiter instanceof SharedMcpCallLimiter) cleanups.push(() => mcpLimiter.close());
    // Policy evaluators are rebuilt when console policies change (runtime/live-policies.ts):
    // new sessions open the new ones, running sessions keep theirs.
    const viewResolver = catalogs.viewResolver();
    const mysqlObjects = catalogs.mysqlObjects();
    const whenContext: WhenContext = (s) => ({ now: new Date(), budgets: budgetLedger.factsFor(s) });
    const policyEvaluatorsFor = (policies: readonly PolicyConfig[]): Evaluator[] => [
      new PolicyEvaluator(policies, liveConnections.map, classifications, viewResolver, {
        whenContext,
        mysqlObjects,
      }),
      new SshPolicyEvaluator(policies, whenContext),
      new RedisPolicyEvaluator(policies, whenContext),
      new K8sPolicyEvaluator(policies, whenContext),
      new HttpPolicyEvaluator(policies, whenContext),
      new McpPolicyEvaluator(policies, liveConnections.map, whenContext, mcpLimiter),
    ];
    const swappable = policyEvaluatorsFor(config.policies).map((e) => new SwappableEvaluator(e));
    // Groups named as approvers by console policies gain the approver role too (set below).
    const consoleApprovers = new Set<string>();
    const livePolicies = await LivePolicies.open({
      config,
      docs: consoleDocs,
      connections: () => liveConnections.list,
      logger,
      onChange: (policies) => {
        policyEvaluatorsFor(policies).forEach((e, i) => swappable[i]?.swap(e));
        for (const p of policies) for (const g of p.approvers ?? []) consoleApprovers.add(g);
        // A console policy's groups count in the re-check of people's groups too (groups are only added while running).
        for (const p of policies) for (const g of p.groups ?? []) policyGroups.add(g);
        if (rolesRef.current !== undefined) for (const g of consoleApprovers) if (!rolesRef.current.approver.includes(g)) rolesRef.current.approver.push(g);
      },
    });
    cleanups.push(() => Promise.resolve(livePolicies.close()));
    const evaluators: Evaluator[] = [new AccessEvaluator(liveConnections.map), ...swappable, new FeatureEvaluator()];
    // Budgets, result scanning and canaries (src/scan/watch.ts).
    const guards = new Guards(budgetLedger, config.resultScan, config.canaries, {
      audit: (input) => {
        audit.append(input).catch((e: unknown) => logger.error({ err: e, type: input.type }, "audit write failed"));
      },
      endSession: (sessionId, detail) => {
        registry.terminate({ sessionId }, "terminated", detail);
      },
      revokeToken: async (tokenId, by) => {
        await tokens.revoke(tokenId, by);
      },
      logger,
      metrics,
    });
    // The MCP server's loopback sessions (protocols/mcp/correlation.ts): admission marks them, and
    // a wait-mode hold in one is reported to its tool call (MySQL and HTTP have no in-band notice).
    const correlations = new LoopbackCorrelations();
    const pipeline = new Pipeline({
      guards,
      evaluators,
      audit,
      recordings,
      store,
      registry,
      metrics,
      logger,
      endSessionsAtExpiry: config.tokens.endSessionsAtExpiry,
      approvals: {
        admit: (session, decision) => approvals.admit(session, decision),
        resolve: (req) =>
          approvals.resolve({
            ...req,
            onHold: (n) => {
              req.onHold?.(n);
              correlations.held(req.session, n);
            },
          }),
      },
    });

    const tls = await loadListenerTls(config.tls, config.dataDir, resolveSecret);
    const engines: ProtocolEngine[] = [];
    const listeners: Listener[] = [];
    const addresses: { api?: ListenAddress; postgres?: ListenAddress; ssh?: ListenAddress; redis?: ListenAddress; mysql?: ListenAddress; http?: ListenAddress; agents?: ListenAddress } = {};
    // Target kinds served over the HTTP listener besides plain HTTP APIs (core/http-kind.ts).
    const httpKinds: HttpServedKind[] = [kubernetesKind((id) => castPathOf(recordings.pathOf(id).dir, id))];
    let httpEngine: HttpEngine | undefined;
    let pgEngine: PostgresEngine | undefined;

    // Stop accepting first, then end live sessions, then wait for engines to drain. A listener's
    // close completes only once its last connection has gone, so it is awaited last: awaiting it
    // first would wait for clients (idle, or waiting for an approval) that nothing ends.
    cleanups.push(async () => {
      const closed = listeners.map(closeListener);
      registry.terminateAll("shutdown", "the gateway is shutting down");
      await Promise.all(engines.map((e) => e.close()));
      for (const l of listeners) for (const s of l.sockets) s.destroy();
      await Promise.all(closed);
    });

    // One admission step for every engine: credentials, connection, session judgement, audit.
    // The MCP server's loopback sessions are admitted like any client's, and marked as MCP's.
    const gatekeeper = new SessionAdmission({
      pipeline,
      connections: liveConnections.map,
      authenticate: authenticator.authenticate,
      logger,
      correlate: (address, principalId) => correlations.lookup(address, principalId),
    });
    let sshHostKey: string | undefined;
    // The engines, as a list: adding a protocol is its folder plus one entry here.
    const engineSpecs: readonly EngineSpec[] = [
      {
        key: "postgres",
        what: "PostgreSQL",
        address: config.listen.postgres,
        create: () => {
          pgEngine = new PostgresEngine({
            gatekeeper,
            dialer,
            resolveSecret,
            ...(stores.leaseCredentials === undefined ? {} : { leaseCredentials: stores.leaseCredentials }),
            ...(tls === undefined ? {} : { tls: { context: tls.context, require: tls.require } }),
            maxMessageBytes: config.limits.maxMessageBytes,
            connectTimeoutMs: config.limits.connectTimeout,
            authTimeoutMs: config.limits.authTimeout,
            maxUnauthenticated: config.limits.maxUnauthenticated,
            maxUnauthenticatedPerAddress: config.limits.maxUnauthenticatedPerAddress,
            maxRowsPerStatement: config.recording.maxRowsPerStatement,
            maxValueBytes: config.recording.maxValueBytes,
            logger,
            maskerFor,
            catalogFor: (c) => catalogs.for(c),
            previewerFor: (c) => catalogs.previewer(c, maskerFor),
            ...(storeUrl === undefined ? {} : { cancelElsewhere: (key: string) => cluster.cancelElsewhere(key) }),
          });
          return Promise.resolve(pgEngine);
        },
      },
      {
        key: "ssh",
        what: "SSH",
        address: config.listen.ssh,
        create: async () => {
          // Loaded only with an SSH listener: ssh2 and the shell parser cost ~15 MiB of RSS.
          const { createSshEngine } = await import("../protocols/ssh/setup.js");
          const { engine, hostPublicKey } = await createSshEngine({
            dataDir: config.dataDir,
            hostKey: config.ssh.hostKey,
            serviceAccounts: config.serviceAccounts,
            isBlocked: (id) => tokens.isBlocked(id),
            gatekeeper,
            dialer,
            resolveSecret,
            connectTimeoutMs: config.limits.connectTimeout,
            authTimeoutMs: config.limits.authTimeout,
            maxUnauthenticated: config.limits.maxUnauthenticated,
            maxUnauthenticatedPerAddress: config.limits.maxUnauthenticatedPerAddress,
            logger,
            maskerFor,
            recordingDir: (id) => recordings.pathOf(id).dir,
          });
          logger.info({ hostKey: hostPublicKey }, "SSH listener host key (pin it in clients' known_hosts)");
          sshHostKey = hostPublicKey;
          return engine;
        },
      },
      {
        key: "redis",
        what: "Redis",
        address: config.listen.redis,
        create: () =>
          Promise.resolve(
            new RedisEngine({
              gatekeeper,
              dialer,
              resolveSecret,
              connectionsFor: (principal) => liveConnections.list.filter((c) => c.type === "redis" && c.groups.some((g) => principal.groups.includes(g))).map((c) => c.name),
              maxMessageBytes: config.limits.maxMessageBytes,
              connectTimeoutMs: config.limits.connectTimeout,
              authTimeoutMs: config.limits.authTimeout,
              maxUnauthenticated: config.limits.maxUnauthenticated,
              maxUnauthenticatedPerAddress: config.limits.maxUnauthenticatedPerAddress,
              maxRecordedBytes: config.recording.maxValueBytes,
              logger,
              maskerFor,
            }),
          ),
      },
      {
        key: "mysql",
        what: "MySQL",
        address: config.listen.mysql,
        create: () =>
          Promise.resolve(
            new MysqlEngine({
              gatekeeper,
              dialer,
              resolveSecret,
              ...(tls === undefined ? {} : { tls: { context: tls.context, require: tls.require } }),
              maxMessageBytes: config.limits.maxMessageBytes,
              connectTimeoutMs: config.limits.connectTimeout,
              authTimeoutMs: config.limits.authTimeout,
              maxUnauthenticated: config.limits.maxUnauthenticated,
              maxUnauthenticatedPerAddress: config.limits.maxUnauthenticatedPerAddress,
              maxRowsPerStatement: config.recording.maxRowsPerStatement,
              maxValueBytes: config.recording.maxValueBytes,
              logger,
              maskerFor,
              connectionsFor: (principal) => liveConnections.list.filter((c) => c.type === "mysql" && c.groups.some((g) => principal.groups.includes(g))).map((c) => c.name),
              previewerFor: (c, target) => catalogs.mysqlPreviewer(c, target, maskerFor),
            }),
          ),
      },
      {
        key: "http",
        what: "HTTP",
        address: config.listen.http,
        create: () => {
          httpEngine = new HttpEngine({
            gatekeeper,
            dialer,
            resolveSecret,
            connections: liveConnections.map,
            kinds: httpKinds,
            ...(tls === undefined ? {} : { tls: { context: tls.context, require: tls.require } }),
            maxInspectBytes: Math.min(config.limits.maxMessageBytes, 1_048_576),
            connectTimeoutMs: config.limits.connectTimeout,
            maxRecordedBytes: config.recording.maxValueBytes,
            logger,
            maskerFor,
          });
          return Promise.resolve(httpEngine);
        },
      },
    ];
    for (const spec of engineSpecs) {
      if (spec.address === undefined) continue;
      const engine = await spec.create();
      engines.push(engine);
      const l = await listen(spec.address, (s) => void engine.handle(s), spec.what);
      listeners.push(l);
      addresses[spec.key] = l.address;
    }
    // HTTP connections with a listener of their own (`port:`), on listen.http's host.
    const ownPorts = httpEngine === undefined || config.listen.http === undefined ? [] : config.connections.flatMap((c) => (c.type === "http" && c.port !== undefined ? [c] : []));
    for (const c of ownPorts) {
      if (httpEngine === undefined || config.listen.http === undefined || c.port === undefined) continue;
      const serve = httpEngine.handleFor(c.name);
      listeners.push(await listen({ host: config.listen.http.host, port: c.port }, (s) => void serve(s), `HTTP (${c.name})`));
    }

    const adminToken = await writeAdminToken(config.dataDir, options.worker?.adminToken);

    let api: ApiServer | undefined;
    // The approver role: `roles.approver` plus every group named as approvers (identity/roles.ts).
    const roles = withApproverGroups(config.roles, [
      ...config.policies.flatMap((p) => p.approvers ?? []),
      ...consoleApprovers,
      ...(config.approvals.grants?.approvers ?? []),
    ]);
    rolesRef.current = roles;
    // The web console's browser sessions (src/api/console-session.ts).
    const consoleSessions = new ConsoleSessions({ authenticate: authenticator.authenticate });
    if (config.listen.api !== undefined) {
      api = await createApiServer({
        console: {
          sessions: consoleSessions,
          store,
          recordings,
          readCast: (id) => recordings.readCast(id),
          livePaths: (id) => {
            const p = recordings.pathOf(id);
            return { recording: p.file, cast: p.cast };
          },
          ...(recordings.shared ? { storedLines: (id: string, kind: RecordingKind, fromSeq: number) => recordings.storedLines(id, kind, fromSeq) } : {}),
          liveSessions: registry,
          approvals,
          authenticate: authenticator.authenticate,
          roles,
          origins: config.login.publicUrl === undefined ? [] : [new URL(config.login.publicUrl).origin],
          oidcLogin: config.oidc.some((o) => o.clientId !== undefined),
          serviceAccounts: () => config.serviceAccounts,
          connections: () => liveConnections.views(),
          liveConnections,
          auditLog: audit,
          policies: () => livePolicies.views(),
          admin: {
            policies: livePolicies,
            testConnection: async (name) => {
              const c = liveConnections.connection(name);
              if (c === undefined) throw new GatewayError("GW_NOT_FOUND", `no connection ${name}`);
              return testConnection(c, { dialer, resolveSecret, timeoutMs: config.limits.connectTimeout, maxMessageBytes: config.limits.maxMessageBytes });
            },
            effectiveConfig: () => {
              const e = effectiveConfig(config, liveConnections.documents(), livePolicies.documents());
              return { yaml: effectiveConfigYaml(e, config.source), json: e.config };
            },
          },
          flushAudit: () => audit.flush(),
          tryIt: (input) => tryIt({ connections: () => [...liveConnections.map.values()], evaluators, principal: principalFinder(config) }, input),
          logger,
        },
        store,
        tokens,
        recordings,
        ssh: { readCast: (id) => recordings.readCast(id) },
        audit: {
          verify: async () => {
            // The local log and the store anchor each other's newest record, so records
            // deleted from the tail of either are detected too.
            await audit.flush();
            return verifyAllAudit({ store, key: auditKey, filePath: join(auditDir, AUDIT_FILE_NAME) });
          },
        },
        auditLog: audit,
        liveSessions: registry,
        cluster: {
          instanceId,
          killElsewhere: (id, by) => cluster.killElsewhere(id, by),
          ready: () => (draining ? "draining" : !cluster.storeHealthy() ? "the store does not answer" : started ? undefined : "starting"),
        },
        agents: agentRegistry,
        approvals: {
          approvals,
          deliveries: (id) => approvalStore.listDeliveries(id),
          ...(config.approvals.publicUrl === undefined ? {} : { publicUrl: config.approvals.publicUrl }),
        },
        authenticate: authenticator.authenticate,
        roles,
        identity: {
          tokens,
          authenticator,
          oidc: config.oidc,
          login: config.login,
          ...(config.saml === undefined ? {} : { saml: config.saml }),
          roles,
          liveSessions: registry,
          rechecks,
          auditLog: audit,
          resolveSecret,
          logger,
        },
        adminToken,
        metrics,
        budgets: guards.budgets,
        logger,
        mcp: mcpServiceDeps({ config, connections: liveConnections.list, addresses, tls, sshHostKey, correlations, pipeline, approvals }),
        mcpGateway: {
          service: mcpGatewayService({
            connections: liveConnections.map,
            gatekeeper,
            pipeline,
            store,
            audit: async (input) => {
              await audit.append(input);
            },
            approvals,
            resolveSecret,
            maskerFor,
            timeoutMs: config.limits.connectTimeout,
            logger,
          }),
          ...(config.approvals.publicUrl === undefined ? {} : { publicUrl: config.approvals.publicUrl }),
        },
      });
      const server = api;
      addresses.api = await server.listen(config.listen.api.host, config.listen.api.port).catch((e: unknown) => {
        const code = (e as NodeJS.ErrnoException).code;
        throw new GatewayError(
          "GW_CONFIG",
          `cannot listen for the API on ${config.listen.api?.host ?? ""}:${config.listen.api?.port ?? ""}: ${code === "EADDRINUSE" ? "the address is already in use" : String(code)}`,
          { cause: e },
        );
      });
      // Close the API before the data path so nothing new starts during shutdown.
      cleanups.push(() => {
        apiClosing = server.close().catch((e: unknown) => logger.error({ err: e }, "error while closing the API listener"));
        return Promise.resolve();
      });
      server.onUpgrade((req, socket, head) => agentServer.handleUpgrade(req, socket, head));
    }
    if (config.listen.agents !== undefined) {
      const agentListener = await startAgentListener(config.listen.agents, tls, agentServer);
      addresses.agents = agentListener.address;
      cleanups.push(() => agentListener.close());
    }

    await audit.append({ type: "gateway.start", details: { connections: config.connections.length, instance: instanceId } });
    started = true;
    logger.info({ addresses, store: store.kind, tls: tls?.source ?? "off", instance: instanceId }, "gateway started");

    let closed: Promise<void> | undefined;
    return {
      config,
      logger,
      addresses,
      agents: agentRegistry,
      store,
      tokens,
      registry,
      audit,
      recordings,
      metrics,
      adminToken,
      tls,
      approvals,
      api,
      instanceId,
      drain: async (graceMs) => {
        // Stop accepting (readiness fails first, so a load balancer stops sending), let live
        // sessions finish up to the grace period; close() then ends the rest.
        draining = true;
        for (const l of listeners) l.server.close();
        const deadline = Date.now() + graceMs;
        while (registry.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        return registry.size;
      },
      consoleLoginLink: () => {
        const a = addresses.api;
        if (a === undefined) return undefined;
        const host = a.host.includes(":") ? `[${a.host}]` : a.host;
        const base = config.login.publicUrl?.replace(/\/$/, "") ?? `http://${host}:${a.port}`;
        return `${base}/v1/console/login/link/${consoleSessions.createLink()}`;
      },
      close: () => {
        closed ??= (async () => {
          await audit.append({ type: "gateway.stop" }).catch(() => undefined);
          await cleanup();
        })();
        return closed;
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
