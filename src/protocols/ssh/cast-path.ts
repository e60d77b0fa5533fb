/**
 * Where a session's asciicast lives: next to its JSON-lines recording. Apart from setup.ts so
 * that the gateway can name the path without loading ssh2 (it is loaded only when an SSH
 * listener is configured).
 */
import { join } from "node:path";

export function castPathOf(recordingDir: string, sessionId: string): string {
  return join(recordingDir, `${sessionId.toLowerCase()}.cast`);
}
