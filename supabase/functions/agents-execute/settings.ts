// The agents runtime's settings, from env (a setting out of its bounds stops the boot, as everywhere):
//   AGENT_MAX_STEPS_DEFAULT       steps a run may take unless the request says fewer (default 8, at most 16)
//   AGENT_MAX_OUTPUT_TOKENS       output tokens per model call unless the request says fewer (default 4096)
//   AGENT_MAX_COST_TOKENS         a run's cost cap in platform tokens unless the request says less (default 200 000)
//   AGENT_CONTEXT_TOKENS          the token budget of the thread window sent with each call (default 24 000)
//   AGENT_HEARTBEAT_MS            how often a worker beats (and sees a cancel request from elsewhere) (default 2000)
//   AGENT_RUN_WALL_MS             wall clock a run may use in one worker before it stops, incomplete with
//                                 time_limit, between steps (default 120 000: under the hosted 150 s limit)
import { env } from "../_shared/platform/env.ts";

export const MAX_STEPS_LIMIT = 16;

export function agentSettings() {
  return {
    maxStepsDefault: env.integer("AGENT_MAX_STEPS_DEFAULT", { min: 1, max: MAX_STEPS_LIMIT, default: 8 }),
    maxOutputTokens: env.integer("AGENT_MAX_OUTPUT_TOKENS", { min: 16, max: 1_000_000, default: 4096 }),
    maxCostTokens: env.integer("AGENT_MAX_COST_TOKENS", { min: 1, default: 200_000 }),
    contextTokens: env.integer("AGENT_CONTEXT_TOKENS", { min: 256, max: 2_000_000, default: 24_000 }),
    heartbeatMs: env.integer("AGENT_HEARTBEAT_MS", { min: 50, max: 30_000, default: 2_000 }),
    runWallMs: env.integer("AGENT_RUN_WALL_MS", { min: 1_000, max: 3_600_000, default: 120_000 }),
  };
}

export type AgentSettings = ReturnType<typeof agentSettings>;
