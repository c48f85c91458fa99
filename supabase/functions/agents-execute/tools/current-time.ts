// current_time: the time now in an IANA time zone (UTC unless asked): its ISO 8601 local time with the zone's
// offset, the zone as named, the weekday, and the same instant in UTC. An unknown zone is invalid input.
import { z } from "../../_shared/http/validation.ts";
import type { AgentTool } from "./tool.ts";

/** An IANA zone name's shape ("UTC", "Europe/Berlin", "Etc/GMT+3"), not an offset such as "+05:00". */
const IANA_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;

/** Whether the runtime knows the IANA zone (any letter case, and aliases such as "Asia/Calcutta"). */
function isKnownZone(name: string): boolean {
  if (!IANA_NAME.test(name)) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const input = z.object({
  timezone: z.string().min(1).max(64)
    .refine(isKnownZone, { message: "Unknown time zone (use an IANA name)" })
    .optional()
    .describe('An IANA time zone such as "Europe/Berlin" or "America/New_York"; UTC when left out'),
}).strict();

export type CurrentTime = {
  iso: string;
  timezone: string;
  weekday: string;
  utc: string;
};

/** The instant's wall-clock time in the zone, as ISO 8601 with the zone's offset at that instant. */
export function timeIn(instant: Date, zone: string): CurrentTime {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      weekday: "long",
      timeZoneName: "longOffset",
    }).formatToParts(instant).map((p) => [p.type, p.value]),
  );
  // "GMT" at offset zero, else "GMT+05:30" / "GMT-03:00".
  const offset = parts.timeZoneName === "GMT" ? "Z" : parts.timeZoneName.replace(/^GMT/, "");
  const ms = String(instant.getUTCMilliseconds()).padStart(3, "0");
  return {
    iso:
      `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}.${ms}${offset}`,
    timezone: zone,
    weekday: parts.weekday,
    utc: instant.toISOString(),
  };
}

/** The tool, reading the clock through `now` (tests pass a fixed one). */
export function createCurrentTime(now: () => Date = () => new Date()): AgentTool<z.infer<typeof input>> {
  return {
    name: "current_time",
    description:
      "The current date and time in a time zone (UTC unless one is given): ISO 8601 local time with " +
      "its UTC offset, the zone, and the weekday.",
    input,
    timeoutMs: 1_000,
    maxOutputBytes: 1_024,
    run: ({ timezone }) => Promise.resolve(timeIn(now(), timezone ?? "UTC")),
  };
}

export const currentTime = createCurrentTime();
