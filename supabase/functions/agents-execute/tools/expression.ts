// Arithmetic expressions for the calculator tool, read by a recursive-descent parser into a tree and then
// evaluated: nothing is ever evaluated as code (no eval, Function or import), and names are looked up in fixed
// tables only. Grammar, lowest precedence first:
//   expr    := term (("+" | "-") term)*                 left-associative
//   term    := unary (("*" | "/" | "%") unary)*         left-associative; % is the remainder (sign of the dividend)
//   unary   := ("-" | "+") unary | power                so -2^2 = -(2^2)
//   power   := primary ("^" unary)?                     right-associative: 2^3^2 = 2^(3^2); 2^-1 allowed
//   primary := number | constant | function "(" expr ("," expr)* ")" | "(" expr ")"
// Numbers: 12, 1.5, .5, 2e10, 1.5E-3. Constants: pi, e. Functions: sqrt, abs, round (to an integer, or to 0–15
// decimals with a second argument), min, max (one or more arguments), ln, log10, sin, cos, tan (radians).
// Every failure is a ToolError: syntax_error (with the position), division_by_zero, overflow (a result beyond
// ±1.8e308), domain_error (sqrt of a negative number, ln or log10 of a number <= 0, …).
import { ToolError } from "./tool-error.ts";

export type Node =
  | { kind: "number"; value: number }
  | { kind: "negate"; operand: Node }
  | { kind: "binary"; op: "+" | "-" | "*" | "/" | "%" | "^"; left: Node; right: Node }
  | { kind: "call"; name: string; args: Node[] };

const CONSTANTS: ReadonlyMap<string, number> = new Map([["pi", Math.PI], ["e", Math.E]]);

type Fn = { arity: [min: number, max: number]; apply: (args: number[]) => number };
const FUNCTIONS: ReadonlyMap<string, Fn> = new Map<string, Fn>([
  ["sqrt", { arity: [1, 1], apply: ([x]) => Math.sqrt(x) }],
  ["abs", { arity: [1, 1], apply: ([x]) => Math.abs(x) }],
  ["round", { arity: [1, 2], apply: ([x, digits]) => roundTo(x, digits ?? 0) }],
  ["min", { arity: [1, Infinity], apply: (args) => Math.min(...args) }],
  ["max", { arity: [1, Infinity], apply: (args) => Math.max(...args) }],
  ["ln", { arity: [1, 1], apply: ([x]) => x > 0 ? Math.log(x) : NaN }],
  ["log10", { arity: [1, 1], apply: ([x]) => x > 0 ? Math.log10(x) : NaN }],
  ["sin", { arity: [1, 1], apply: ([x]) => Math.sin(x) }],
  ["cos", { arity: [1, 1], apply: ([x]) => Math.cos(x) }],
  ["tan", { arity: [1, 1], apply: ([x]) => Math.tan(x) }],
]);

function roundTo(x: number, digits: number): number {
  if (!Number.isInteger(digits) || digits < 0 || digits > 15) {
    throw new ToolError("domain_error", "round's second argument must be a whole number from 0 to 15");
  }
  return Number(x.toFixed(digits));
}

/** Deeper nesting than this is refused (the input is at most 500 characters anyway). */
const MAX_DEPTH = 100;

type Token = { type: "number"; value: number; at: number } | { type: "name"; name: string; at: number } | {
  type: "symbol";
  symbol: string;
  at: number;
} | { type: "end"; at: number };

const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const SYMBOLS = new Set(["+", "-", "*", "/", "%", "^", "(", ")", ","]);

const syntaxError = (message: string, at: number) =>
  new ToolError("syntax_error", `${message} at position ${at + 1}`);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const rest = text.slice(i);
    const number = NUMBER.exec(rest);
    if (number) {
      tokens.push({ type: "number", value: Number(number[0]), at: i });
      i += number[0].length;
      continue;
    }
    const name = NAME.exec(rest);
    if (name) {
      tokens.push({ type: "name", name: name[0], at: i });
      i += name[0].length;
      continue;
    }
    if (SYMBOLS.has(ch)) {
      tokens.push({ type: "symbol", symbol: ch, at: i });
      i++;
      continue;
    }
    throw syntaxError(
      `Unexpected character ${JSON.stringify(String.fromCodePoint(text.codePointAt(i)!))}`,
      i,
    );
  }
  tokens.push({ type: "end", at: text.length });
  return tokens;
}

/** The expression's tree; a syntax_error ToolError when it is not one. */
export function parse(text: string): Node {
  const tokens = tokenize(text);
  let pos = 0;
  let depth = 0;
  const peek = () => tokens[pos];
  const isSymbol = (symbol: string) => {
    const t = peek();
    return t.type === "symbol" && t.symbol === symbol;
  };
  const describe = (t: Token) =>
    t.type === "end"
      ? "end of expression"
      : t.type === "number"
      ? `number ${t.value}`
      : t.type === "name"
      ? `name "${t.name}"`
      : `"${t.symbol}"`;
  const expect = (symbol: string) => {
    if (!isSymbol(symbol)) throw syntaxError(`Expected "${symbol}" but found ${describe(peek())}`, peek().at);
    pos++;
  };
  const nested = <T>(read: () => T): T => {
    if (++depth > MAX_DEPTH) throw syntaxError("Expression is nested too deeply", peek().at);
    try {
      return read();
    } finally {
      depth--;
    }
  };

  const expr = (): Node =>
    nested(() => {
      let left = term();
      while (isSymbol("+") || isSymbol("-")) {
        const op = (tokens[pos++] as { symbol: "+" | "-" }).symbol;
        left = { kind: "binary", op, left, right: term() };
      }
      return left;
    });
  const term = (): Node => {
    let left = unary();
    while (isSymbol("*") || isSymbol("/") || isSymbol("%")) {
      const op = (tokens[pos++] as { symbol: "*" | "/" | "%" }).symbol;
      left = { kind: "binary", op, left, right: unary() };
    }
    return left;
  };
  const unary = (): Node =>
    nested(() => {
      if (isSymbol("-")) {
        pos++;
        return { kind: "negate", operand: unary() };
      }
      if (isSymbol("+")) {
        pos++;
        return unary();
      }
      return power();
    });
  const power = (): Node => {
    const base = primary();
    if (!isSymbol("^")) return base;
    pos++;
    return { kind: "binary", op: "^", left: base, right: unary() };
  };
  const primary = (): Node => {
    const t = peek();
    if (t.type === "number") {
      pos++;
      return { kind: "number", value: t.value };
    }
    if (t.type === "symbol" && t.symbol === "(") {
      pos++;
      const inner = expr();
      expect(")");
      return inner;
    }
    if (t.type === "name") {
      pos++;
      const fn = FUNCTIONS.get(t.name);
      if (fn) return call(t.name, fn, t.at);
      const constant = CONSTANTS.get(t.name);
      if (constant !== undefined) return { kind: "number", value: constant };
      throw syntaxError(`Unknown name "${t.name}"`, t.at);
    }
    throw syntaxError(`Expected a number, a name or "(" but found ${describe(t)}`, t.at);
  };
  const call = (name: string, fn: Fn, at: number): Node => {
    expect("(");
    const args = [expr()];
    while (isSymbol(",")) {
      pos++;
      args.push(expr());
    }
    expect(")");
    const [min, max] = fn.arity;
    if (args.length < min || args.length > max) {
      const wanted = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} or ${max}`;
      throw syntaxError(`${name} takes ${wanted} argument${max === 1 ? "" : "s"}, not ${args.length}`, at);
    }
    return { kind: "call", name, args };
  };

  const tree = expr();
  if (peek().type !== "end") throw syntaxError(`Unexpected ${describe(peek())}`, peek().at);
  return tree;
}

/** The tree's value, left operand first; the first division by zero, overflow or domain error stops it. */
export function evaluate(node: Node): number {
  switch (node.kind) {
    case "number":
      return checked(node.value, "the number");
    case "negate":
      return -evaluate(node.operand);
    case "call": {
      const args = node.args.map(evaluate);
      return checked(FUNCTIONS.get(node.name)!.apply(args), `${node.name}(…)`);
    }
    case "binary": {
      const left = evaluate(node.left);
      const right = evaluate(node.right);
      if (
        ((node.op === "/" || node.op === "%") && right === 0) || (node.op === "^" && left === 0 && right < 0)
      ) {
        throw new ToolError("division_by_zero", "Division by zero");
      }
      return checked(apply(node.op, left, right), `the ${node.op}`);
    }
  }
}

function apply(op: "+" | "-" | "*" | "/" | "%" | "^", a: number, b: number): number {
  switch (op) {
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return a * b;
    case "/":
      return a / b;
    case "%":
      return a % b;
    case "^":
      return a ** b;
  }
}

function checked(value: number, what: string): number {
  if (Number.isNaN(value)) throw new ToolError("domain_error", `${what} is undefined for these numbers`);
  if (!Number.isFinite(value)) throw new ToolError("overflow", `${what} overflows (beyond ±1.8e308)`);
  return value;
}

/** The value of an expression's text (0 rather than -0). */
export function calculate(text: string): number {
  const value = evaluate(parse(text));
  return value === 0 ? 0 : value;
}
