export type { AttributeRef, Classification, ColumnAccess, OperationTag, QualifiedName, StatementFacts } from "./facts.js";
export { classify, classifyDetailed, classifyDetailedWith, initSqlParser, MAX_SQL_BYTES, type DetailedClassification } from "./classify.js";
export { ClassificationCache, normalize, MAX_NORMALIZE_CHARS, type CacheStats } from "./normalize.js";
export { checkParseLimits, DEFAULT_PARSE_LIMITS, MAX_SQL_DEPTH, type ParseLimits } from "./limits.js";
export { ParserPool, type ParseOutcome, type ParserPoolOptions, type ParserPoolStats } from "./parser-pool.js";
