/**
 * Operation tags for statement node types (the list is documented on `OperationTag` in
 * facts.ts). Statements whose tags depend on more than their node type (DML, COPY, EXPLAIN,
 * SET, transactions, GRANT, DROP, RENAME, …) are tagged by the walker; this module holds the
 * static part and the fallback that derives a tag from any node name, so that a statement type
 * added by a future PostgreSQL version is still tagged.
 */

/** PostgreSQL ObjectType → the <kind> of create_<kind> / alter_<kind> / drop_<kind>. */
const OBJECT_KINDS: Readonly<Record<string, string>> = {
  OBJECT_ACCESS_METHOD: "access_method",
  OBJECT_AGGREGATE: "aggregate",
  OBJECT_AMOP: "operator_family",
  OBJECT_AMPROC: "operator_family",
  OBJECT_ATTRIBUTE: "type",
  OBJECT_CAST: "cast",
  OBJECT_COLUMN: "column",
  OBJECT_COLLATION: "collation",
  OBJECT_CONVERSION: "conversion",
  OBJECT_DATABASE: "database",
  OBJECT_DEFAULT: "default",
  OBJECT_DEFACL: "default_privileges",
  OBJECT_DOMAIN: "domain",
  OBJECT_DOMCONSTRAINT: "domain",
  OBJECT_EVENT_TRIGGER: "event_trigger",
  OBJECT_EXTENSION: "extension",
  OBJECT_FDW: "foreign_data_wrapper",
  OBJECT_FOREIGN_SERVER: "server",
  OBJECT_FOREIGN_TABLE: "foreign_table",
  OBJECT_FUNCTION: "function",
  OBJECT_INDEX: "index",
  OBJECT_LANGUAGE: "language",
  OBJECT_LARGEOBJECT: "large_object",
  OBJECT_MATVIEW: "materialized_view",
  OBJECT_OPCLASS: "operator_class",
  OBJECT_OPERATOR: "operator",
  OBJECT_OPFAMILY: "operator_family",
  OBJECT_PARAMETER_ACL: "parameter",
  OBJECT_POLICY: "policy",
  OBJECT_PROCEDURE: "procedure",
  OBJECT_PUBLICATION: "publication",
  OBJECT_PUBLICATION_NAMESPACE: "publication",
  OBJECT_PUBLICATION_REL: "publication",
  OBJECT_ROLE: "role",
  OBJECT_ROUTINE: "routine",
  OBJECT_RULE: "rule",
  OBJECT_SCHEMA: "schema",
  OBJECT_SEQUENCE: "sequence",
  OBJECT_SUBSCRIPTION: "subscription",
  OBJECT_STATISTIC_EXT: "statistics",
  OBJECT_TABCONSTRAINT: "constraint",
  OBJECT_TABLE: "table",
  OBJECT_TABLESPACE: "tablespace",
  OBJECT_TRANSFORM: "transform",
  OBJECT_TRIGGER: "trigger",
  OBJECT_TSCONFIGURATION: "text_search_configuration",
  OBJECT_TSDICTIONARY: "text_search_dictionary",
  OBJECT_TSPARSER: "text_search_parser",
  OBJECT_TSTEMPLATE: "text_search_template",
  OBJECT_TYPE: "type",
  OBJECT_USER_MAPPING: "user_mapping",
  OBJECT_VIEW: "view",
};

export function objectKind(objectType: string | undefined): string {
  // libpg_query's JSON omits a field holding the enum's zero value, OBJECT_ACCESS_METHOD.
  const t = objectType ?? "OBJECT_ACCESS_METHOD";
  return OBJECT_KINDS[t] ?? t.replace(/^OBJECT_/, "").toLowerCase();
}

/** Object types that live in pg_class: their names are relations. */
export const RELATION_OBJECT_TYPES: ReadonlySet<string> = new Set([
  "OBJECT_TABLE",
  "OBJECT_VIEW",
  "OBJECT_MATVIEW",
  "OBJECT_SEQUENCE",
  "OBJECT_INDEX",
  "OBJECT_FOREIGN_TABLE",
]);

/**
 * Statement types whose tags are fixed. The first tag is the statement's own kind; a
 * create_/alter_/drop_ tag implies create/alter/drop (added by the walker).
 */
const STATIC_TAGS: Readonly<Record<string, readonly string[]>> = {
  CreateStmt: ["create_table"],
  CreateForeignTableStmt: ["create_foreign_table"],
  IndexStmt: ["create_index"],
  ViewStmt: ["create_view"],
  CreateSeqStmt: ["create_sequence"],
  AlterSeqStmt: ["alter_sequence"],
  CreateSchemaStmt: ["create_schema"],
  CreatedbStmt: ["create_database"],
  DropdbStmt: ["drop_database"],
  AlterDatabaseStmt: ["alter_database"],
  AlterDatabaseSetStmt: ["alter_database", "set"],
  AlterDatabaseRefreshCollStmt: ["alter_database"],
  AlterRoleStmt: ["alter_role"],
  AlterRoleSetStmt: ["alter_role", "set"],
  DropRoleStmt: ["drop_role"],
  CreateExtensionStmt: ["create_extension"],
  AlterExtensionStmt: ["alter_extension"],
  AlterExtensionContentsStmt: ["alter_extension"],
  CreateTrigStmt: ["create_trigger"],
  CreateEventTrigStmt: ["create_event_trigger"],
  AlterEventTrigStmt: ["alter_event_trigger"],
  RuleStmt: ["create_rule"],
  CreatePolicyStmt: ["create_policy"],
  AlterPolicyStmt: ["alter_policy"],
  CompositeTypeStmt: ["create_type"],
  CreateEnumStmt: ["create_type"],
  CreateRangeStmt: ["create_type"],
  AlterEnumStmt: ["alter_type"],
  AlterTypeStmt: ["alter_type"],
  CreateDomainStmt: ["create_domain"],
  AlterDomainStmt: ["alter_domain"],
  CreateTableSpaceStmt: ["create_tablespace"],
  DropTableSpaceStmt: ["drop_tablespace"],
  AlterTableSpaceOptionsStmt: ["alter_tablespace"],
  CreateFdwStmt: ["create_foreign_data_wrapper"],
  AlterFdwStmt: ["alter_foreign_data_wrapper"],
  CreateForeignServerStmt: ["create_server"],
  AlterForeignServerStmt: ["alter_server"],
  CreateUserMappingStmt: ["create_user_mapping"],
  AlterUserMappingStmt: ["alter_user_mapping"],
  DropUserMappingStmt: ["drop_user_mapping"],
  CreatePublicationStmt: ["create_publication"],
  AlterPublicationStmt: ["alter_publication"],
  CreateSubscriptionStmt: ["create_subscription"],
  AlterSubscriptionStmt: ["alter_subscription"],
  DropSubscriptionStmt: ["drop_subscription"],
  CreateCastStmt: ["create_cast"],
  CreateConversionStmt: ["create_conversion"],
  CreateOpClassStmt: ["create_operator_class"],
  CreateOpFamilyStmt: ["create_operator_family"],
  AlterOpFamilyStmt: ["alter_operator_family"],
  AlterOperatorStmt: ["alter_operator"],
  AlterCollationStmt: ["alter_collation"],
  CreatePLangStmt: ["create_language"],
  CreateStatsStmt: ["create_statistics"],
  AlterStatsStmt: ["alter_statistics"],
  CreateAmStmt: ["create_access_method"],
  CreateTransformStmt: ["create_transform"],
  AlterTSConfigurationStmt: ["alter_text_search_configuration"],
  AlterTSDictionaryStmt: ["alter_text_search_dictionary"],
  DropOwnedStmt: ["drop_owned"],
  ReassignOwnedStmt: ["reassign_owned"],
  TruncateStmt: ["truncate"],
  LockStmt: ["lock"],
  ClusterStmt: ["cluster"],
  ReindexStmt: ["reindex"],
  CheckPointStmt: ["checkpoint"],
  LoadStmt: ["load"],
  DiscardStmt: ["discard"],
  DoStmt: ["do"],
  CallStmt: ["call"],
  ListenStmt: ["listen"],
  NotifyStmt: ["notify"],
  UnlistenStmt: ["unlisten"],
  PrepareStmt: ["prepare"],
  ExecuteStmt: ["execute"],
  DeallocateStmt: ["deallocate"],
  DeclareCursorStmt: ["declare"],
  ClosePortalStmt: ["close"],
  SecLabelStmt: ["security_label"],
  CommentStmt: ["comment"],
  RefreshMatViewStmt: ["refresh_materialized_view"],
  AlterSystemStmt: ["alter_system"],
  ConstraintsSetStmt: ["set_constraints"],
  VariableShowStmt: ["show"],
  ExplainStmt: ["explain"],
  ImportForeignSchemaStmt: ["import_foreign_schema", "create_foreign_table"],
  AlterDefaultPrivilegesStmt: ["alter_default_privileges"],
};

/** Tags of a statement node that depend only on the node (and its object-type fields). */
export function staticTags(type: string, body: Readonly<Record<string, unknown>>): readonly string[] {
  const fixed = STATIC_TAGS[type];
  if (fixed !== undefined) return fixed;
  const objType = (key: string): string | undefined => {
    const v = body[key];
    return typeof v === "string" ? v : undefined;
  };
  switch (type) {
    case "DefineStmt":
      return ["create_" + objectKind(objType("kind"))];
    case "AlterTableStmt":
    case "AlterFunctionStmt":
    case "AlterTableMoveAllStmt":
      return ["alter_" + objectKind(objType("objtype") ?? "OBJECT_TABLE")];
    case "AlterObjectSchemaStmt":
    case "AlterObjectDependsStmt":
      return ["alter_" + objectKind(objType("objectType"))];
    case "AlterOwnerStmt":
      return ["alter_" + objectKind(objType("objectType")), "alter_owner"];
    default:
      return [genericTag(type)];
  }
}

/** `AlterDefaultPrivilegesStmt` → `alter_default_privileges`. */
export function genericTag(type: string): string {
  return snake(type.endsWith("Stmt") ? type.slice(0, -4) : type);
}

function snake(s: string): string {
  return s
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase();
}
