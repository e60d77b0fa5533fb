/** A classified request as the judged event the pipeline sees. */
import type { K8sRequestEvent } from "../../core/events.js";
import type { SessionInfo } from "../../core/session.js";
import { describeK8sRequest, type K8sRequest } from "./request.js";

/** Longest text shown for a request (audit, approvers, recordings). */
const MAX_TEXT = 500;

export function k8sEvent(session: SessionInfo, seq: number, r: K8sRequest, extra: { readonly name?: string; readonly command?: readonly string[]; readonly ports?: readonly number[]; readonly body?: unknown } = {}): K8sRequestEvent {
  const base = { type: "k8s.request" as const, session, seq, verb: r.verb, path: r.path };
  let text = describeK8sRequest(r);
  if (extra.command !== undefined && extra.command.length > 0) text += `: ${extra.command.join(" ")}`;
  if (extra.ports !== undefined && extra.ports.length > 0) text += ` (ports ${extra.ports.join(",")})`;
  if (text.length > MAX_TEXT) text = `${text.slice(0, MAX_TEXT)}…`;
  const body = extra.body === undefined ? {} : { body: extra.body };
  switch (r.type) {
    case "nonresource":
      return { ...base, resourceRequest: false, apiGroup: "", apiVersion: "", resource: "", subresource: "", namespace: "", name: "", text, ...body };
    case "resource":
      return {
        ...base,
        resourceRequest: true,
        apiGroup: r.apiGroup,
        apiVersion: r.apiVersion,
        resource: r.resource,
        subresource: r.subresource,
        namespace: r.namespace,
        name: r.name === "" ? (extra.name ?? "") : r.name,
        text,
        ...body,
      };
  }
}
