// EXPLAIN (ANALYZE, BUFFERS) of an operation as the user runs it, with the plans of the statements inside its
// functions (auto_explain, nested statements, sent back as notices), saved to a file. A writing operation's
// EXPLAIN ANALYZE is rolled back.
import postgres from "npm:postgres@3.4.9";
import type { Call, Operation } from "./operations.ts";

const ROLLBACK = new Error("rolled back after EXPLAIN");

export async function explain(url: string, op: Operation, call: Call): Promise<string> {
  const notices: string[] = [];
  const sql = postgres(url, { max: 1, onnotice: (n) => notices.push(String(n.message)) });
  let top = "";
  const asUser = (tx: postgres.TransactionSql) =>
    tx`select set_config('role', 'authenticated', true),
              set_config('request.jwt.claims', ${
      JSON.stringify({ sub: call.user, role: "authenticated" })
    }, true)`;
  try {
    // Once without EXPLAIN, rolled back: the plans a pooled connection would have cached are cached.
    await sql.begin(async (tx) => {
      await asUser(tx);
      await tx.unsafe(call.text, call.params as never[]);
      throw ROLLBACK;
    }).catch((e) => {
      if (e !== ROLLBACK) throw e;
    });
    await sql.unsafe(`load 'auto_explain'`);
    await sql.unsafe(`set auto_explain.log_min_duration = 0; set auto_explain.log_analyze = on;
                      set auto_explain.log_buffers = on; set auto_explain.log_nested_statements = on;
                      set auto_explain.log_level = notice`);
    await sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true),
                      set_config('request.jwt.claims', ${
        JSON.stringify({ sub: call.user, role: "authenticated" })
      },
                                 true)`;
      notices.length = 0;
      const rows = await tx.unsafe(`explain (analyze, buffers) ${call.text}`, call.params as never[]);
      top = rows.map((r) => r["QUERY PLAN"]).join("\n");
      if (op.writes) throw ROLLBACK;
    }).catch((e) => {
      if (e !== ROLLBACK) throw e;
    });
  } finally {
    await sql.end();
  }
  // auto_explain also logs the EXPLAIN statement itself (and the claims' set_config); the nested ones are what the
  // functions ran.
  const nested = notices.filter((n) => !/Query Text: (explain |select set_config\('role')/i.test(n));
  return [
    `-- ${op.name}`,
    `-- as user ${call.user}; params ${JSON.stringify(call.params)}`,
    call.text,
    "",
    top,
    ...(nested.length ? ["", "-- statements inside its functions (auto_explain):", ...nested] : []),
    "",
  ].join("\n");
}
