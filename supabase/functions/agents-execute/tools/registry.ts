// The server-side tools an AI employee may be given, by the name its pinned version lists
// (ai_employee_versions.tools). toolsFor hands the runtime exactly the listed tools that exist, in the listed
// order and once each; a listed name no tool has is returned in `unknown` for the runtime to log, never an
// error the user sees. Nothing outside this list is reachable by name.
import { calculator } from "./calculator.ts";
import { currentTime } from "./current-time.ts";
import type { AgentTool } from "./tool.ts";
import { usageSummary } from "./usage-summary.ts";
import { webSearch } from "./web-search.ts";

const ALL: readonly AgentTool[] = [currentTime, calculator, webSearch, usageSummary];

const BY_NAME: ReadonlyMap<string, AgentTool> = new Map(ALL.map((tool) => [tool.name, tool]));

/** Every tool's name (for the marketplace's tool picker and the schema's checks). */
export const TOOL_NAMES: readonly string[] = ALL.map((tool) => tool.name);

export type ToolSet = { tools: AgentTool[]; unknown: string[] };

export function toolsFor(listed: readonly string[]): ToolSet {
  const tools: AgentTool[] = [];
  const unknown: string[] = [];
  for (const name of new Set(listed)) {
    const tool = BY_NAME.get(name);
    if (tool) tools.push(tool);
    else unknown.push(name);
  }
  return { tools, unknown };
}
