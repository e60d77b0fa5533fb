export type { AttributeRef, Classification, ColumnAccess, OperationTag, QualifiedName, StatementFacts } from "./facts.js";
export { classify, classifyDetailed, initSqlParser, MAX_SQL_BYTES, type DetailedClassification } from "./classify.js";
export { ClassificationCache, normalize, MAX_NORMALIZE_CHARS, type CacheStats } from "./normalize.js";
