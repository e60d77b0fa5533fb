/**
 * Tool fingerprints for pinning (issue 16): sha256 over the tool's name, description and input
 * schema, serialized canonically (sorted keys), so that a reordered but equal schema keeps its
 * fingerprint and any changed word of a description (how tool poisoning arrives) does not.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "../../../core/mcp-call.js";

export interface ToolIdentity {
  readonly name: string;
  readonly description?: string | undefined;
  readonly inputSchema?: unknown;
}

export function toolFingerprint(t: ToolIdentity): string {
  const doc = canonicalJson({ name: t.name, description: t.description ?? null, inputSchema: t.inputSchema ?? null });
  return createHash("sha256").update(doc, "utf8").digest("hex");
}
