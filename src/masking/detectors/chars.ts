/** Character classes (ASCII) the detectors share. */
export function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
export function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}
export function isLower(c: number): boolean {
  return c >= 97 && c <= 122;
}
export function isAlpha(c: number): boolean {
  return isUpper(c) || isLower(c);
}
export function isAlnum(c: number): boolean {
  return isDigit(c) || isAlpha(c);
}
/** [A-Za-z0-9_] */
export function isWord(c: number): boolean {
  return isAlnum(c) || c === 95;
}
/** [A-Za-z0-9_-]: the base64url alphabet. */
export function isB64Url(c: number): boolean {
  return isWord(c) || c === 45;
}
export function isSpaceOrTab(c: number): boolean {
  return c === 32 || c === 9;
}
export function isWhitespace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
}
