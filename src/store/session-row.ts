import type { SessionInfo } from "../core/session.js";
import type { SessionRow } from "./types.js";

/** The store row of a session as it starts (the end fields come later). */
export function sessionRowFromInfo(info: SessionInfo): SessionRow {
  return {
    id: info.id,
    protocol: info.clientProtocol,
    connection: info.connection,
    principalId: info.principal.id,
    principalKind: info.principal.kind,
    principalName: info.principal.name,
    groups: info.principal.groups,
    ...(info.principal.tokenId === undefined ? {} : { tokenId: info.principal.tokenId }),
    clientAddress: info.clientAddress,
    startedAt: info.startedAt,
    attributes: info.attributes,
  };
}
