import { beforeAll, it } from "vitest";
import { initSqlParser, classify } from "./sql/index.js";
beforeAll(async () => { await initSqlParser(); });
it("dump", () => {
  for (const sql of [
    "select x.password from f() x", "select password from users, f() x", "select password from users u join lateral f() x on true",
    "select set_config('search_path', current_user, false)", "select set_config('search_path', $1, false)",
    "drop schema evil cascade", "select schema_to_xml('public', true, false, '')", "grant select on all tables in schema evil to r",
    "set role other", "copy (select count(*) from users) to stdout", "select 1 from users", "select count(*) from users",
    "start transaction read write", "set session characteristics as transaction read write", "set transaction read write",
    "reset statement_timeout", "set local statement_timeout = 0", "set default_transaction_read_only = off",
    "insert into t values (1)", "select nextval('s')", "select * from v1 join v2 using (id)", "selec 1",
    "SELECT 1 AS Forbidden_Marker", "select 1 as a\n-- x\n", "select * from public.users", "select u.* from users u",
    "execute P", "prepare P as select 1", "begin; select * from v",
  ]) {
    const c = classify(sql);
    console.log(sql, JSON.stringify(c));
  }
});
