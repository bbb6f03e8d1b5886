// Streaming splitter for a top-level JSON array: yields the source text of each element as soon as it
// is complete (tracking strings, escapes and nesting depth), so a 200 MB `[ {...}, {...} ]` file is
// parsed one element at a time instead of JSON.parse-ing the whole file.

import { DataError } from './errors.ts';

export interface JsonElement {
  /** The element's JSON text (may carry surrounding whitespace). */
  text: string;
  /** 1-based line the element starts on. */
  line: number;
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Splits `[a, b, …]` into element texts. Structural errors are fatal and name the line. */
export async function* splitJsonArray(strings: AsyncIterable<string>, name: string): AsyncGenerator<JsonElement> {
  let state: 'start' | 'array' | 'done' = 'start';
  let depth = 0;
  let inString = false;
  let escape = false;
  let inElem = false;
  let elemLine = 0;
  let parts: string[] = [];
  let line = 1;
  let afterComma = false;
  let closed = false; // the current element's value is complete; only "," or "]" may follow
  const ready: JsonElement[] = [];

  for await (const s of strings) {
    const n = s.length;
    let segStart = 0;
    const finish = (end: number) => {
      parts.push(s.slice(segStart, end));
      ready.push({ text: parts.join(''), line: elemLine });
      parts = [];
      inElem = false;
    };
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (inString) {
        if (escape) escape = false;
        else if (c === 0x5c) escape = true;
        else if (c === 0x22) {
          inString = false;
          if (depth === 0) closed = true;
        } else if (c === 0x0a) line++;
        continue;
      }
      if (c === 0x0a) line++;
      if (state === 'array') {
        if (depth > 0) {
          if (c === 0x22) inString = true;
          else if (c === 0x7b || c === 0x5b) depth++;
          else if (c === 0x7d || c === 0x5d) {
            if (--depth === 0) closed = true;
          }
          continue;
        }
        if (isWs(c)) {
          if (inElem) closed = true;
          continue;
        }
        if (c === 0x2c) {
          if (!inElem) throw new DataError(`line ${line}: empty array element (expected a value before ",")`, name);
          finish(i);
          afterComma = true;
          continue;
        }
        if (c === 0x5d) {
          if (inElem) finish(i);
          else if (afterComma) throw new DataError(`line ${line}: trailing comma before "]" (expected another value)`, name);
          state = 'done';
          continue;
        }
        if (c === 0x7d) throw new DataError(`line ${line}: unexpected "}" (expected a value, "," or "]")`, name);
        if (inElem && closed) {
          throw new DataError(`line ${line}: expected "," or "]" after the array element, got ${JSON.stringify(s[i])}`, name);
        }
        if (!inElem) {
          inElem = true;
          closed = false;
          segStart = i;
          elemLine = line;
          afterComma = false;
        }
        if (c === 0x22) inString = true;
        else if (c === 0x7b || c === 0x5b) depth++;
      } else if (state === 'start') {
        if (isWs(c)) continue;
        if (c !== 0x5b) throw new DataError(`line ${line}: expected a JSON array ("["), got ${JSON.stringify(s[i])}`, name);
        state = 'array';
      } else if (!isWs(c)) {
        throw new DataError(`line ${line}: unexpected ${JSON.stringify(s[i])} after the end of the JSON array (expected the end of the file)`, name);
      }
    }
    if (inElem) parts.push(s.slice(segStart));
    yield* ready;
    ready.length = 0;
  }
  if (state === 'array') {
    throw new DataError(
      inString || depth > 0 || inElem
        ? `the file ends inside the array element starting at line ${elemLine} (expected the rest of the value and "]")`
        : `the file ends before the JSON array is closed (expected "]")`,
      name,
    );
  }
}
