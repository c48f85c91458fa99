// The runs executing in this instance: their events (for a replaying client of the same instance) and how to stop
// them at once (a cancel request that lands here; one that lands elsewhere reaches the run on its next heartbeat).
import type { RunEvents } from "./events.ts";

export type LiveRun = { events: RunEvents; abort: AbortController; done: Promise<void> };

export const liveRuns = new Map<string, LiveRun>();
