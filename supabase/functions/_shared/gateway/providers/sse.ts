// Server-sent events, split as they stream: events end at a blank line ("\n\n" or "\r\n\r\n"). Each event
// keeps its raw text so it can be forwarded byte for byte.
import type { SseEvent } from "./adapter.ts";

export function parseEvent(raw: string): SseEvent {
  let event: string | undefined;
  const data: string[] = [];
  for (const line of raw.split(/\r?\n/)) {
    if (line.startsWith("data:")) data.push(line.slice(line[5] === " " ? 6 : 5));
    else if (line.startsWith("event:")) event = line.slice(line[6] === " " ? 7 : 6).trim();
  }
  return { raw, event, data: data.join("\n") };
}

/** Splits a text stream into complete events; a trailing partial event is emitted on flush. */
export class SseSplitter {
  #buffer = "";

  push(chunk: string): SseEvent[] {
    this.#buffer += chunk;
    const out: SseEvent[] = [];
    while (true) {
      const match = /\r?\n\r?\n/.exec(this.#buffer);
      if (!match) break;
      const raw = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      if (raw.trim()) out.push(parseEvent(raw));
    }
    return out;
  }

  flush(): SseEvent[] {
    const rest = this.#buffer;
    this.#buffer = "";
    return rest.trim() ? [parseEvent(rest)] : [];
  }
}

export const encodeEvent = (event: SseEvent) => `${event.raw}\n\n`;
