/** Lexical helpers the SQL scanners share (normalization, the size/depth pre-scan). */

/** End (exclusive) of a nested block comment starting at `i`, or -1 when unterminated. */
export function skipBlockComment(s: string, i: number): number {
  let depth = 0;
  let j = i;
  const n = s.length;
  while (j < n) {
    const c = s.charCodeAt(j);
    if (c === 47 && s.charCodeAt(j + 1) === 42) {
      depth++;
      j += 2;
    } else if (c === 42 && s.charCodeAt(j + 1) === 47) {
      depth--;
      j += 2;
      if (depth === 0) return j;
    } else {
      j++;
    }
  }
  return -1;
}
