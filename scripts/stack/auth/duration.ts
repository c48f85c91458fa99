// Durations written as Go's time.ParseDuration reads them ("24h", "1h30m", "90s", "1.5h"), which is how the
// admin API takes `ban_duration`. Returns seconds, or null for a string that is not one.
const UNIT_SECONDS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  "µs": 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

export function parseGoDuration(text: string): number | null {
  const match = text.match(/^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/);
  if (!match) return text === "0" ? 0 : null;
  let seconds = 0;
  for (const part of text.replace(/^[+-]/, "").matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    seconds += Number(part[1]) * UNIT_SECONDS[part[2]];
  }
  return match[1] === "-" ? -seconds : seconds;
}
