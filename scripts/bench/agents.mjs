// The agent rows of npm run bench:gateway (scripts/bench/gateway.mjs; BENCH_AGENTS=1), a benchmark, never a test:
// it asserts nothing and only reports.
//
//   agent step overhead  POST /functions/v1/agents-execute (stream: false, through the benchmark's functions
//                        server, a real user token) until the JSON answer, for runs of N model steps (the fake,
//                        scripts/bench/agents-fake.ts, makes steps 1..N-1 ask for the calculator and step N answer),
//                        sequentially and at BENCH_AGENT_CONCURRENCY; against the same run's N requests, as the
//                        runtime sent them, replayed straight at the fake one after the other (the reference).
//                        Per-step overhead = (agent run - direct) / N; plus a least-squares line over the step
//                        counts (per run fixed + per model step) and a breakdown from the run's own rows
//                        (agent_runs, agent_run_steps, token_usage) and the SQL's server time (pg_stat_statements)
//   prompt cache share   10 user messages in one session per employee (every other one with a calculator call),
//                        the fake reporting as cached what each request re-sends (cachedTokens "prefix"): the share
//                        of input tokens billed cached (token_usage) and the cost against no caching at the same
//                        prices; and what the recorded requests carried (prompt_cache_key, cache_control)
//
// What it creates: a category and employees `bench-agents-<hex>-…` (deleted by cleanupAgents), hires of them by
// the benchmark's users (deleted with the users).

/** The seed's longest employee prompt is 550 characters; a production prompt is often a few thousand. */
const SHORT_PROMPT =
  "You are Ada, a senior financial analyst. Answer with figures, show your working, use the " +
  "calculator for any arithmetic, and keep answers under 200 words. Be precise, cite assumptions, and ask " +
  "one clarifying question when the request is ambiguous. Never invent data; say what you would need. ";
const LONG_PROMPT = SHORT_PROMPT + "\n\n# Playbook\n" +
  Array.from(
    { length: 40 },
    (_, i) =>
      `${i + 1}. When the client asks about item ${i + 1} of the quarterly review, check the ledger, ` +
      `compare with the budget and flag deviations above five percent.`,
  ).join("\n");

const QUESTION =
  "Please look at the numbers for this quarter again and tell me whether the margins are in line " +
  "with the plan, what changed since last month, and which costs I should look at first.";

const pct = (sorted, p) =>
  sorted.length
    ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
    : NaN;
const stats = (samples) => {
  const s = Float64Array.from(samples).sort();
  return {
    n: s.length,
    p50: pct(s, 50),
    p95: pct(s, 95),
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
};

/** The employees of this benchmark: one for the overhead runs, one per provider and prompt size for the cache. */
export function agentEmployees(tag) {
  const list = [{ key: "overhead", provider: "openai", model: "gpt-4o-mini", prompt: SHORT_PROMPT }];
  for (
    const [provider, model] of [
      ["openai", "gpt-4o-mini"],
      ["anthropic", "claude-haiku-4-5"],
      ["google", "gemini-2.5-flash"],
    ]
  ) {
    list.push({ key: `${provider} short`, provider, model, prompt: SHORT_PROMPT, cache: true });
    list.push({ key: `${provider} long`, provider, model, prompt: LONG_PROMPT, cache: true });
  }
  return list.map((e, i) => ({ ...e, slug: `bench-agents-${tag}-${i}` }));
}

const q = (s) => `'${String(s).replaceAll("'", "''")}'`;

/** Creates the employees and hires: overhead users hire the overhead employee; one cache user per cache employee. */
export function setupAgents(psql, tag, employees, overheadUsers, cacheUsers) {
  const category = `bench-agents-${tag}`;
  psql(`
    delete from public.ai_employees where slug like 'bench-agents-%' and created_at < now() - interval '1 hour';
    delete from public.ai_employee_categories c where slug like 'bench-agents-%'
       and not exists (select 1 from public.ai_employees e where e.category = c.slug);
    insert into public.ai_employee_categories (slug, name) values (${q(category)}, 'Benchmark (agents)');`);
  for (const e of employees) {
    e.id = psql(`
      insert into public.ai_employees (slug, name, role, category, department, level, status, short_description,
                                       provider, model, system_prompt, tools, generation_settings)
      values (${q(e.slug)}, 'Bench ${e.key}', 'Analyst', ${q(category)}, 'Bench', 'mid', 'available',
              'A benchmark employee', ${q(e.provider)}, ${q(e.model)}, ${q(e.prompt)},
              array['calculator', 'current_time'], '{}')
      returning id`);
  }
  const hire = (userId, employeeId) =>
    psql(`insert into public.purchased_employees (user_id, employee_id) values ('${userId}', '${employeeId}')
          returning id`);
  const overhead = employees.find((e) => e.key === "overhead");
  const hires = { overhead: new Map(), cache: new Map() };
  for (const u of overheadUsers) hires.overhead.set(u, hire(u, overhead.id));
  employees.filter((e) => e.cache).forEach((e, i) =>
    hires.cache.set(e.key, { user: cacheUsers[i], hire: hire(cacheUsers[i], e.id) })
  );
  return { category, hires };
}

export function cleanupAgents(psql, category) {
  psql(`
    delete from public.ai_employees where category = ${q(category)};
    delete from public.ai_employee_categories where slug = ${q(category)};`);
}

async function runAgent(url, token, body) {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ ...body, stream: false }),
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  let json = null;
  try {
    json = JSON.parse(text);
  } catch { /* reported below */ }
  return { ms, status: res.status, json, text };
}

async function replay(fakeUrl, key, bodies) {
  const t0 = performance.now();
  for (const { path, body } of bodies) {
    const model = body.model ?? "";
    const res = await fetch(fakeUrl + path.replace("{model}", model), {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`direct replay answered ${res.status}`);
  }
  return performance.now() - t0;
}

const AGENT_SQL = [
  ["start_agent_run", "%private.start_agent_run(%"],
  ["begin_agent_run", "%private.begin_agent_run(%"],
  ["agent_thread", "%private.agent_thread(%"],
  ["record_agent_step", "%private.record_agent_step(%"],
  ["append_agent_run_events", "%private.append_agent_run_events(%"],
  ["finish_agent_run", "%private.finish_agent_run(%"],
  ["run cost (select)", "select cost_tokens from public.agent_runs where id = %"],
  ["agent_run_heartbeat", "%private.agent_run_heartbeat(%"],
  ["gateway_batch_settle", "%private.gateway_batch_settle(%"],
];
function sqlSnapshot(psql) {
  const out = {};
  for (const [name, like] of AGENT_SQL) {
    const [calls, ms] = psql(`select coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0)
                                from pg_stat_statements where query like ${q(like)}`).split("|").map(Number);
    out[name] = { calls, ms };
  }
  return out;
}

const epochMs = () => performance.timeOrigin + performance.now();
const msOf = (iso) => Date.parse(iso);

/**
 * Where the time of c=1 runs went, from three clocks of one machine: the benchmark's (POST sent, answer read),
 * the fake's (each model request's arrival) and the runtime's own step rows (started_at / ended_at, ms). Sums in
 * ms over all runs; every run's end-to-end time is exactly the sum of its parts.
 */
function timeline(psql, runs, seen) {
  const out = {
    runs: 0,
    modelSteps: 0,
    toolSteps: 0,
    post: 0,
    send: 0,
    back: 0,
    between: 0,
    end: 0,
    total: 0,
    // The model steps after a run's first (its admission, lease call included, is the run's): what each adds.
    laterSteps: 0,
    laterSend: 0,
    laterBack: 0,
    laterBetween: 0,
  };
  if (runs.length === 0) return out;
  const byNonce = new Map();
  for (const s of seen) if (s.nonce) (byNonce.get(s.nonce) ?? byNonce.set(s.nonce, []).get(s.nonce)).push(s);
  const ids = `array[${runs.map((r) => `'${r.id}'`).join(",")}]::uuid[]`;
  const rows = JSON.parse(psql(`
    select coalesce(json_agg(json_build_object('run', run_id, 'i', step_index, 'kind', kind, 's', started_at,
                                               'e', ended_at) order by run_id, step_index), '[]')
      from public.agent_run_steps where run_id = any(${ids})`));
  const stepsOf = new Map();
  for (const r of rows) (stepsOf.get(r.run) ?? stepsOf.set(r.run, []).get(r.run)).push(r);
  for (const run of runs) {
    const arrivals = (byNonce.get(run.nonce) ?? []).sort((a, b) => a.round - b.round).map((s) => s.at);
    const model = (stepsOf.get(run.id) ?? []).filter((s) => s.kind === "model_call");
    if (arrivals.length !== model.length || model.length === 0) continue;
    out.runs++;
    out.modelSteps += model.length;
    out.toolSteps += model.length - 1;
    out.post += msOf(model[0].s) - run.t0; // HTTP, auth, start_agent_run, begin, the thread
    for (let k = 0; k < model.length; k++) {
      const send = arrivals[k] - msOf(model[k].s); // the AI SDK's request, in-process gateway admission, forward
      const back = msOf(model[k].e) - arrivals[k]; // the fake's answer, back through the gateway and the SDK
      out.send += send;
      out.back += back;
      if (k + 1 < model.length) out.between += msOf(model[k + 1].s) - msOf(model[k].e); // the tool, its step
      if (k > 0) {
        out.laterSteps++;
        out.laterSend += send;
        out.laterBack += back;
        out.laterBetween += msOf(model[k].s) - msOf(model[k - 1].e);
      }
    }
    out.end += run.t1 - msOf(model.at(-1).e); // finish_agent_run, the events, the JSON answer
    out.total += run.t1 - run.t0;
  }
  return out;
}

/** The agent step overhead rows. */
export async function benchAgentOverhead(ctx) {
  const { cfg, psql, say, agentsUrl, tokens, hires, fakeUrl, fakeKey, control } = ctx;
  const users = [...hires.overhead.keys()];
  let next = 0;
  const nextUser = () => users[next++ % users.length];
  const out = { rows: [], breakdown: [], sql: undefined, failures: [] };
  const one = async (n) => {
    const user = nextUser();
    const nonce = crypto.randomUUID();
    const t0 = epochMs();
    const r = await runAgent(agentsUrl, tokens.get(user), {
      hire_id: hires.overhead.get(user),
      message: `[bench-steps ${n}] [nonce ${nonce}] ${QUESTION}`,
    });
    const t1 = epochMs();
    const run = r.json?.run;
    const ok = r.status === 200 && run?.status === "completed" && run.step_count === 2 * n - 1;
    if (!ok && out.failures.length < 5) out.failures.push(`${r.status} ${r.text.slice(0, 200)}`);
    return { ms: r.ms, ok, id: run?.id, nonce, t0, t1 };
  };
  for (const n of cfg.agentSteps) {
    for (let i = 0; i < cfg.agentWarmup; i++) await one(n); // the first records the bodies
  }
  const seen = await (await fetch(`${control}/requests`)).json();
  const bodiesOf = (n) =>
    seen.filter((s) => s.marker === `steps ${n}` && s.body).sort((a, b) => a.round - b.round);

  const sqlBefore = sqlSnapshot(psql);
  const seqIds = [];
  for (const c of [...new Set([1, cfg.agentConcurrency])]) {
    for (const n of cfg.agentSteps) {
      const bodies = bodiesOf(n);
      if (bodies.length !== n) {
        out.failures.push(`steps ${n}: ${bodies.length} bodies recorded, not ${n}: no direct reference`);
      }
      const agent = [];
      let bad = 0;
      const measured = [];
      const perWorker = Math.ceil(cfg.agentRuns / c);
      await Promise.all(Array.from({ length: c }, async () => {
        for (let i = 0; i < perWorker; i++) {
          const r = await one(n);
          if (r.ok) {
            agent.push(r.ms);
            measured.push(r);
          } else bad++;
        }
      }));
      const direct = [];
      if (bodies.length === n) {
        await Promise.all(Array.from({ length: c }, async () => {
          for (let i = 0; i < perWorker; i++) direct.push(await replay(fakeUrl, fakeKey, bodies));
        }));
      }
      const a = stats(agent);
      const d = stats(direct);
      out.rows.push({ c, n, agent: a, direct: d, bad });
      if (c === 1) {
        seqIds.push(...measured.map((r) => r.id));
        const all = await (await fetch(`${control}/requests`)).json();
        out.breakdown.push({ n, direct: d.mean / n, ...timeline(psql, measured, all) });
      }
      say(
        `agents c=${c} steps=${n}: run p50 ${a.p50.toFixed(2)} ms, direct ${d.p50.toFixed(2)} ms, ` +
          `+${((a.p50 - d.p50) / n).toFixed(2)} ms per step, not completed ${bad}`,
      );
      if (c === 1 && n === cfg.agentSteps.at(-1)) {
        out.sql = sqlDelta(sqlBefore, sqlSnapshot(psql), seqIds.length);
      }
    }
  }
  return out;
}

/** null when pg_stat_statements was reset meanwhile (another session's pg_stat_statements_reset()). */
const sqlDelta = (a, b, runs) =>
  Object.keys(a).some((k) => b[k].calls < a[k].calls) ? null : Object.fromEntries(
    Object.keys(a).map((k) => {
      const calls = b[k].calls - a[k].calls;
      return [k, {
        calls,
        perRun: runs ? calls / runs : 0,
        meanMs: calls > 0 ? (b[k].ms - a[k].ms) / calls : null,
      }];
    }),
  );

/** The prompt cache share: a 10-turn conversation per cache employee. */
export async function benchPromptCache(ctx) {
  const { psql, say, agentsUrl, tokens, hires, employees, control, cfg } = ctx;
  const out = { conversations: [], requests: null, failures: [] };
  for (const e of employees.filter((x) => x.cache)) {
    const { user, hire } = hires.cache.get(e.key);
    let sessionId = null;
    for (let turn = 1; turn <= cfg.cacheTurns; turn++) {
      const tool = turn % 2 === 1 ? " [tool]" : "";
      const r = await runAgent(agentsUrl, tokens.get(user), {
        ...(sessionId ? { session_id: sessionId } : { hire_id: hire }),
        message: `[bench-cache]${tool} Turn ${turn}. ${QUESTION}`,
      });
      if (r.status !== 200 || r.json?.run?.status !== "completed") {
        out.failures.push(`${e.key} turn ${turn}: ${r.status} ${r.text.slice(0, 200)}`);
        break;
      }
      sessionId = r.json.run.session_id;
    }
    if (!sessionId) continue;
    const row = JSON.parse(psql(`
      select json_build_object(
        'calls', count(*), 'input', sum(u.input_tokens), 'cached', sum(u.cached_input_tokens),
        'written', sum(u.cache_write_tokens), 'output', sum(u.output_tokens),
        'cost', sum(private._call_cost_micro_usd(p, u.input_tokens, u.cached_input_tokens, u.cache_write_tokens,
                                                 u.output_tokens, u.reasoning_tokens)),
        'uncached', sum(private._call_cost_micro_usd(p, u.input_tokens, 0, 0, u.output_tokens, u.reasoning_tokens)),
        'last_input', (array_agg(u.input_tokens order by u.created_at desc))[1],
        'last_cached', (array_agg(u.cached_input_tokens order by u.created_at desc))[1])
        from public.token_usage u join public.model_pricing p on p.id = u.pricing_id
       where u.session_id = '${sessionId}'`));
    out.conversations.push({ key: e.key, model: e.model, promptChars: e.prompt.length, ...row });
    say(
      `prompt cache ${e.key}: ${row.calls} calls, ${
        (100 * row.cached / row.input).toFixed(1)
      } % of input cached`,
    );
  }
  const seen = (await (await fetch(`${control}/requests`)).json()).filter((s) => s.marker === "cache");
  const by = (p) => seen.filter((s) => s.provider === p);
  out.requests = {
    openai: {
      n: by("openai").length,
      withKey: by("openai").filter((s) => s.promptCacheKey).length,
      keys: [...new Set(by("openai").map((s) => s.promptCacheKey))].length,
    },
    anthropic: {
      n: by("anthropic").length,
      systemMarked: by("anthropic").filter((s) => s.systemCacheControl).length,
      breakpoints: [...new Set(by("anthropic").map((s) => s.cacheControl))],
    },
    google: { n: by("google").length },
  };
  return out;
}

// --------------------------------------------------------------------------------------------- report
const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));

/** Least squares y = a + b·x. */
function line(points) {
  const n = points.length;
  if (n < 2) return null;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  const sxx = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  const b = points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0) / sxx;
  return { a: my - b * mx, b };
}

export function agentReport(p, overhead, cache, cfg) {
  if (overhead) {
    overheadSection(p, overhead, cfg);
  }
  if (cache) cacheSection(p, cache, cfg);
}

function overheadSection(p, overhead, cfg, intro = true) {
  {
    if (intro) {
      p(
        `Agent step overhead: \`POST /functions/v1/agents-execute\` (stream: false, OpenAI chat employee, ` +
          `gpt-4o-mini, tools calculator + current_time) through the functions server until the JSON answer, runs ` +
          `of N model steps (steps 1..N-1 ask for the calculator, step N answers), ${cfg.agentRuns} runs per row ` +
          `after ${cfg.agentWarmup} warm-up; "direct": the same run's N requests (as the runtime sent them, streamed) ` +
          `replayed straight at the fake one after the other. Per step = (run − direct) / N. Target ≤ 2 ms per step.`,
      );
      p();
    }
    p("| c | N steps | run p50 ms | run p95 ms | direct p50 ms | direct p95 ms | +p50 per step ms | +p95 per step ms | not completed |");
    p("| --: | --: | --: | --: | --: | --: | --: | --: | --: |");
    for (const r of overhead.rows) {
      p(
        `| ${r.c} | ${r.n} | ${f(r.agent.p50)} | ${f(r.agent.p95)} | ${f(r.direct.p50)} | ${
          f(r.direct.p95)
        } | ${f((r.agent.p50 - r.direct.p50) / r.n)} | ${f((r.agent.p95 - r.direct.p95) / r.n)} | ${r.bad} |`,
      );
    }
    p();
    for (const c of [...new Set(overhead.rows.map((r) => r.c))]) {
      const rows = overhead.rows.filter((r) => r.c === c);
      const la = line(rows.map((r) => [r.n, r.agent.p50]));
      const ld = line(rows.map((r) => [r.n, r.direct.p50]));
      if (la && ld) {
        p(
          `Line through the p50s at c=${c}: a run costs ${f(la.a)} ms + ${
            f(la.b)
          } ms per model step; direct ` +
            `${f(ld.a)} + ${f(ld.b)} ms per call → the runtime adds **${
              f(la.b - ld.b)
            } ms per model step** ` +
            `(target ≤ 2 ms: ${la.b - ld.b <= 2 ? "met" : "missed"}) and ${f(la.a - ld.a)} ms per run.`,
        );
      }
    }
    p();
    const bd = overhead.breakdown.filter((b) => b.runs > 0);
    if (bd.length) {
      const tot = (k) => bd.reduce((s, b) => s + b[k], 0);
      const steps = tot("modelSteps");
      const runs = tot("runs");
      const fake = bd.reduce((s, b) => s + b.direct * b.modelSteps, 0);
      p(
        `Where the time of the c=1 runs goes (${runs} runs, ${steps} model steps, ${
          tot("toolSteps")
        } calculator ` +
          `calls; mean ms, from the benchmark's clock, the fake's (each model request's arrival) and the runtime's ` +
          `step rows (ms resolution); the parts add up to the end-to-end time):`,
      );
      p();
      p("| part | what | per model step | per run |");
      p("| --- | --- | --: | --: |");
      const row = (part, what, ms, perStep = true) =>
        p(`| ${part} | ${what} | ${perStep ? f(ms / steps) : ""} | ${f(ms / runs)} |`);
      row(
        "request → first step",
        "HTTP, auth, start_agent_run, begin_agent_run, the thread and prompt",
        tot("post"),
        false,
      );
      row(
        "step → at the fake",
        "the AI SDK builds the request, the gateway admits it in-process and forwards it",
        tot("send"),
      );
      row(
        "at the fake → step stored",
        "the fake answers (streamed), back through the gateway and the SDK, and the step is stored (record_agent_step)",
        tot("back"),
      );
      row("… of which the fake", "the direct reference per call", fake);
      row(
        "between steps",
        "the calculator and its step row (record_agent_step), waiting for the call's settlement (sent at once) before the cost cap",
        tot("between"),
      );
      row("last step → answer", "finish_agent_run, the final events, the JSON answer", tot("end"), false);
      row("end to end", "", tot("total"));
      row(
        "added per model step",
        "send + back − the fake + between",
        tot("send") + tot("back") - fake + tot("between"),
      );
      p();
      const later = tot("laterSteps");
      if (later > 0) {
        const laterFake = bd.reduce((s, b) => s + b.direct * b.laterSteps, 0);
        const perLater = (ms) => f(ms / later);
        p(
          `The ${later} model steps after a run's first (a run's first call also waits for the lease of the whole run, ` +
            `a per-run cost), mean ms each: the tool before it and its step ${
              perLater(tot("laterBetween"))
            }, ` +
            `to the fake ${perLater(tot("laterSend"))}, back ${
              perLater(tot("laterBack"))
            }, of which the fake ` +
            `${perLater(laterFake)}: **${
              perLater(tot("laterBetween") + tot("laterSend") + tot("laterBack") - laterFake)
            } ms added per step after the first** (target ≤ 2 ms).`,
        );
        p();
      }
    }
    if (overhead.sql === null) {
      p("Server-side SQL: not shown, pg_stat_statements was reset during these runs (by another session).");
      p();
    }
    if (overhead.sql) {
      p("Server-side SQL during the c=1 runs (pg_stat_statements deltas; execution only, no round trip):");
      p();
      p("| SQL | calls per run | mean ms |");
      p("| --- | --: | --: |");
      for (const [k, v] of Object.entries(overhead.sql)) {
        p(`| ${k} | ${f(v.perRun, 1)} | ${f(v.meanMs, 3)} |`);
      }
      p();
    }
    for (const x of overhead.failures) p(`Note: agent run not completed as expected: ${x}`);
  }
}

function cacheSection(p, cache, cfg) {
  {
    p(
      `Prompt cache share: ${cfg.cacheTurns} user messages in one session per employee (odd turns ask for the ` +
        `calculator: two model calls), the fake reporting as cached what each request re-sends of an earlier one ` +
        `by the provider's rule (fake-llm-cache.ts: OpenAI from 1 024 tokens in 128-token steps, Anthropic only up ` +
        `to cache_control breakpoints, Gemini any shared prefix from 1 024 tokens); prices of model_pricing; ` +
        `"short": a ${SHORT_PROMPT.length}-character system prompt (the seed's are 222–550), "long": ` +
        `${LONG_PROMPT.length} characters.`,
    );
    p();
    p("| employee | model | calls | input tokens | cached | cached share | cache writes | last call cached | cost µ$ | without cache µ$ | saved |");
    p("| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |");
    for (const c of cache.conversations) {
      p(
        `| ${c.key} | ${c.model} | ${c.calls} | ${c.input} | ${c.cached} | ${
          f((100 * c.cached) / c.input, 1)
        } % | ${c.written} | ${f((100 * c.last_cached) / c.last_input, 1)} % | ${f(c.cost, 1)} | ${
          f(c.uncached, 1)
        } | ${f((100 * (c.uncached - c.cost)) / c.uncached, 1)} % |`,
      );
    }
    p();
    const r = cache.requests;
    p(
      `What the requests carried: OpenAI ${r.openai.withKey} of ${r.openai.n} with \`prompt_cache_key\` ` +
        `(${r.openai.keys} distinct key(s) for 2 employees); Anthropic ${r.anthropic.systemMarked} of ` +
        `${r.anthropic.n} with \`cache_control\` on the system block (breakpoints per request: ` +
        `${r.anthropic.breakpoints.join(", ")}); Gemini ${r.google.n} (implicit caching, nothing to mark).`,
    );
    for (const x of cache.failures) p(`Note: prompt cache conversation: ${x}`);
    p();
  }
}
