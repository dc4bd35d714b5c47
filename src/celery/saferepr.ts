/**
 * Celery's `saferepr` (celery/utils/saferepr.py, 5.2.6), which renders the `argsrepr` and `kwargsrepr`
 * headers: a Python-repr-like text, cut at 1024 characters, with containers nested three deep shown
 * as `[...]`. Workers only log and display these headers (Flower, `celery inspect`), but they are the
 * first thing an operator reads, so they should look like what a Python producer would have written.
 *
 * This is a port of Celery's token stream rather than a plain recursive printer because its
 * truncation has quirks worth keeping (a string of exactly the remaining length is cut too; a closing
 * bracket may be lost), and the ported algorithm reproduces them token for token.
 *
 * Differences from Python, because values arrive as JSON:
 * - Numbers carry no int/float distinction: Python's `2.0` is read as `2` and shown as `2`.
 * - Keys that look like array indexes come first in a JavaScript object.
 * Like Celery's saferepr (and unlike Python's repr), strings are always single-quoted and only `'`
 * is escaped: a newline is shown as a newline.
 */
import { pythonNumber } from "./json.ts";
import type { JsonPrimitive } from "./json.ts";

const TUPLE: unique symbol = Symbol("python tuple");

/** A Python tuple, for texts Celery renders from tuples (`()`, `(2,)`, exception args). */
export interface PyTuple {
  readonly [TUPLE]: readonly ReprValue[];
}

export type ReprValue =
  JsonPrimitive | PyTuple | readonly ReprValue[] | { readonly [key: string]: ReprValue };

export function pyTuple(items: readonly ReprValue[]): PyTuple {
  return { [TUPLE]: items };
}

/** Celery's `argsrepr_maxsize` and `kwargsrepr_maxsize`. */
export const REPR_MAX_SIZE = 1024;

/** The `argsrepr` header Celery writes: `args or ()` rendered with `saferepr(..., 1024)`. */
export function argsRepr(args: readonly ReprValue[]): string {
  return saferepr(args.length === 0 ? pyTuple([]) : args, REPR_MAX_SIZE);
}

/** The `kwargsrepr` header Celery writes. */
export function kwargsRepr(kwargs: { readonly [key: string]: ReprValue }): string {
  return saferepr(kwargs, REPR_MAX_SIZE);
}

/**
 * Python's `str(exception)` from the exception's args as a result stores them (`exc_message`): empty
 * for no args, the argument itself for one string, and the repr of the args tuple for several.
 */
export function exceptionText(args: readonly ReprValue[]): string {
  if (args.length === 0) return "";
  if (args.length === 1) {
    const only = args[0];
    return typeof only === "string" ? only : saferepr(only ?? null);
  }
  return saferepr(pyTuple(args));
}

interface Literal {
  readonly kind: "literal";
  readonly value: string;
  /** False for brackets: they are still written after the text was cut. */
  readonly truncate: boolean;
  readonly direction: -1 | 0 | 1;
}
interface KeyToken {
  readonly kind: "key";
  readonly value: string;
}
interface QuotedToken {
  readonly kind: "quoted";
  readonly value: string;
}
interface Dirty {
  readonly kind: "dirty";
  readonly container: object;
}
const MARK = Symbol("saferepr token");
type Marked<T> = T & { readonly [MARK]: true };
type Token = Marked<Literal> | Marked<KeyToken> | Marked<Dirty>;
type Item = ReprValue | Token;
type Emitted = string | Marked<Literal> | Marked<KeyToken> | Marked<QuotedToken>;

function literal(value: string, truncate: boolean, direction: -1 | 0 | 1): Marked<Literal> {
  return { [MARK]: true, kind: "literal", value, truncate, direction };
}
const DICT_START = literal("{", false, 1);
const DICT_KVSEP = literal(": ", true, 0);
const DICT_END = literal("}", false, -1);
const LIST_START = literal("[", false, 1);
const LIST_END = literal("]", false, -1);
const LIST_SEP = literal(", ", true, 0);
const TUPLE_START = literal("(", false, 1);
const TUPLE_END = literal(")", false, -1);
const TUPLE_END_SINGLE = literal(",)", false, -1);

function isToken(item: Item): item is Token {
  return typeof item === "object" && item !== null && MARK in item;
}
function isTuple(item: ReprValue): item is PyTuple {
  return typeof item === "object" && item !== null && TUPLE in item;
}
function isList(item: ReprValue): item is readonly ReprValue[] {
  return Array.isArray(item);
}

/**
 * Python's `saferepr(o, maxlen, maxlevels=3)` from Celery 5.2.6.
 * `maxlen` counts code points, as Python's `len` does.
 */
export function saferepr(value: ReprValue, maxlen?: number, maxlevels = 3): string {
  const first: Item[] = [value];
  const stack: Iterator<Item>[] = [first[Symbol.iterator]()];
  const out: string[] = [];
  let budget = maxlen;
  const stream = reprstream(stack, maxlevels);
  for (let step = stream.next(); !step.done; step = stream.next()) {
    const [token, it] = step.value;
    if (budget !== undefined && budget <= 0) {
      out.push(", ...");
      // The token that tripped the limit is dropped, as in Celery; the brackets still open follow.
      stack.push(it);
      break;
    }
    let text: string;
    if (typeof token === "string") text = truncate(token, budget);
    else if (token.kind === "literal") text = token.value;
    else if (token.kind === "key") text = saferepr(token.value, budget, maxlevels);
    else text = `'${truncate(token.value, budget).replaceAll("'", "\\'")}'`;
    out.push(text);
    if (budget !== undefined) budget -= codePointLength(text);
  }
  for (const rest of stack) {
    for (let step = rest.next(); !step.done; step = rest.next()) {
      const item = step.value;
      if (isToken(item) && item.kind === "literal" && !item.truncate) out.push(item.value);
    }
  }
  return out.join("");
}

function* reprstream(stack: Iterator<Item>[], maxlevels: number): Generator<[Emitted, Iterator<Item>]> {
  const seen = new Set<object>();
  let level = 0;
  while (stack.length > 0) {
    const it = stack.shift();
    if (it === undefined) break;
    // Iterated by hand: a for-of loop would close `it` on break, and Celery resumes it afterwards.
    for (let step = it.next(); !step.done; step = it.next()) {
      const val = step.value;
      if (isToken(val)) {
        if (val.kind === "dirty") {
          seen.delete(val.container);
        } else {
          if (val.kind === "literal") level += val.direction;
          yield [val, it];
        }
        continue;
      }
      if (val === null) {
        yield ["None", it];
        continue;
      }
      if (typeof val === "boolean") {
        yield [val ? "True" : "False", it];
        continue;
      }
      if (typeof val === "number") {
        yield [pythonNumber(val), it];
        continue;
      }
      if (typeof val === "string") {
        yield [{ [MARK]: true, kind: "quoted", value: val }, it];
        continue;
      }
      const { start, end, children } = opened(val);
      if (maxlevels && level >= maxlevels) {
        yield [`${start.value}...${end.value}`, it];
        continue;
      }
      if (seen.has(val)) {
        yield [`<Recursion on ${isList(val) ? "list" : isTuple(val) ? "tuple" : "dict"}>`, it];
        continue;
      }
      seen.add(val);
      const dirty: Marked<Dirty> = { [MARK]: true, kind: "dirty", container: val };
      stack.push(chain([start, ...children, dirty, end][Symbol.iterator](), it));
      break;
    }
  }
}

type Container = PyTuple | readonly ReprValue[] | { readonly [key: string]: ReprValue };

/** The brackets and the token sequence of a container, as Celery's reprstream lays them out. */
function opened(val: Container): { start: Marked<Literal>; end: Marked<Literal>; children: Item[] } {
  if (isTuple(val)) {
    const items = val[TUPLE];
    return {
      start: TUPLE_START,
      end: items.length === 1 ? TUPLE_END_SINGLE : TUPLE_END,
      children: chainList(items),
    };
  }
  if (isList(val)) return { start: LIST_START, end: LIST_END, children: chainList(val) };
  return { start: DICT_START, end: DICT_END, children: chainDict(val) };
}

function chainList(items: readonly ReprValue[]): Item[] {
  return items.flatMap((item, i) => (i < items.length - 1 ? [item, LIST_SEP] : [item]));
}

function chainDict(mapping: { readonly [key: string]: ReprValue }): Item[] {
  const entries = Object.entries(mapping);
  return entries.flatMap(([key, item], i) => {
    const pair: Item[] = [{ [MARK]: true, kind: "key", value: key }, DICT_KVSEP, item];
    return i < entries.length - 1 ? [...pair, LIST_SEP] : pair;
  });
}

function* chain(head: Iterator<Item>, tail: Iterator<Item>): Generator<Item> {
  for (let step = head.next(); !step.done; step = head.next()) yield step.value;
  for (let step = tail.next(); !step.done; step = tail.next()) yield step.value;
}

/** celery.utils.text.truncate: cut at `maxlen` code points, back to the last space, and add "...". */
function truncate(text: string, maxlen: number | undefined): string {
  if (!maxlen) return text;
  const points = Array.from(text);
  if (points.length < maxlen) return text;
  const head = points.slice(0, maxlen).join("");
  const space = head.lastIndexOf(" ");
  return (space === -1 ? head : head.slice(0, space)) + "...";
}

function codePointLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}
