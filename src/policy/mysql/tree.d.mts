/** Types of tree.mjs (see there). */
export type MysqlNode = string | MysqlRule;
export type MysqlRule = readonly [string, ...MysqlNode[]];
export type MysqlTreeOutcome = { readonly ok: true; readonly tree: MysqlRule } | { readonly ok: false; readonly message: string };
export declare const MAX_TREE_NODES: number;
export declare function parseMysqlTree(sql: string): MysqlTreeOutcome;
