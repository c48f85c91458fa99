// "Perhaps you meant …" suggestions, as PostgREST makes them with Data.FuzzySet (grams of 3 then 2 letters,
// cosine similarity, rescored by Levenshtein distance, a minimum score of 0.33): the closest candidate or null.
const MIN_SCORE = 0.33;

const normalise = (s: string) => s.toLowerCase().replace(/[^\p{L}\p{N}_, ]+/gu, "");

function grams(value: string, size: number): Map<string, number> {
  let padded = `-${normalise(value)}-`;
  while (padded.length < size) padded += "-";
  const out = new Map<string, number>();
  for (let i = 0; i + size <= padded.length; i++) {
    const g = padded.slice(i, i + size);
    out.set(g, (out.get(g) ?? 0) + 1);
  }
  return out;
}

function cosine(a: Map<string, number>, b: Map<string, number>): number {
  let dot = 0;
  for (const [g, n] of a) dot += n * (b.get(g) ?? 0);
  const norm = (m: Map<string, number>) => Math.sqrt([...m.values()].reduce((s, n) => s + n * n, 0));
  const d = norm(a) * norm(b);
  return d === 0 ? 0 : dot / d;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** The candidate closest to `needle`, or null when none scores at least 0.33. */
export function closest(needle: string, candidates: Iterable<string>): string | null {
  const list = [...new Set(candidates)];
  if (!list.length) return null;
  for (const size of [3, 2]) {
    const target = grams(needle, size);
    const scored = list
      .map((c) => ({ c, score: cosine(target, grams(c, size)) }))
      .filter((x) => x.score > 0)
      .sort((x, y) => y.score - x.score)
      .slice(0, 50)
      .map(({ c }) => {
        const a = normalise(needle), b = normalise(c);
        const longest = Math.max(a.length, b.length);
        return { c, score: longest === 0 ? 1 : 1 - levenshtein(a, b) / longest };
      })
      .filter((x) => x.score >= MIN_SCORE)
      .sort((x, y) => y.score - x.score);
    if (scored.length) return scored[0].c;
  }
  return null;
}
