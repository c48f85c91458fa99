// One JSON line per event on stdout (start.sh sends it to .stack/logs/rest.log). Never logs tokens or bodies.
export type LogLevel = "info" | "warn" | "error";

export function log(level: LogLevel, msg: string, extra: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), level, service: "rest", msg, ...extra }));
}
