export { classifyMysqlWith, MysqlClassifier, MAX_MYSQL_BYTES, MAX_MYSQL_DEPTH, type DetailedMysqlClassification, type MysqlClassifyOptions, type MysqlParse } from "./classify.js";
export { lexMysql, DEFAULT_LEX_MODE, type LexMode, type LexResult } from "./lexer.js";
export { MYSQL_FUNCTION_FAMILIES } from "./walk.js";
import { MysqlClassifier } from "./classify.js";

let shared: MysqlClassifier | undefined;

/**
 * The process's MySQL classifier, created on the first MySQL session (its parser threads load
 * the grammar then; they are unref'd while idle, so they never keep the process alive).
 */
export function sharedMysqlClassifier(): MysqlClassifier {
  shared ??= new MysqlClassifier();
  return shared;
}
