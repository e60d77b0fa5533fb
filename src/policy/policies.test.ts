import { beforeAll, it } from "vitest";
import { initSqlParser, classify } from "./sql/index.js";
beforeAll(async () => { await initSqlParser(); });
it("dump", () => {
  for (const sql of [
    "select * from users", "select u from users u", "select password from users", "select x from evil_table",
    "select (f()).password", "select pg_catalog.pg_sleep(1)", "SET search_path = evil, public",
    "select set_config('search_path','evil',false)", "prepare p as delete from orders", "execute p", "execute p(1)",
    "do $$ begin end $$", "copy users to program 'x'", "copy users to stdout", "copy (select id from users) to stdout", "copy users(id,name) to stdout",
    "set transaction isolation level serializable", "begin read only", "begin read write", "reset all", "discard all",
    "set statement_timeout = 0", "select * from v", "delete from orders", "update t set a=1 where true", "explain execute p",
    "drop table t", "create table evil.secrets (x int)", "create table secrets (x int)", "select 1; select 2",
  ]) {
    const c = classify(sql);
    console.log(sql, JSON.stringify(c));
  }
});
