// A tool's refusal the model should see as it is: a code (snake_case, e.g. "division_by_zero",
// "payment_required") and a message written for the model. limits.ts turns it into the tool's error result
// `{ error: { code, message } }`; anything else a tool throws is reported only as "tool_failed".
export class ToolError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "ToolError";
  }
}
