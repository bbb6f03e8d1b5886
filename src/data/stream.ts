// Streaming text plumbing for the readers: byte chunks (a Node file stream, a browser Blob, memory)
// → a streaming UTF-8 decoder → strings or lines, so a large file is never held as one string.

import { DataError } from './errors.ts';

/** Byte chunks from anywhere: a Node ReadStream (Buffers are Uint8Arrays), `blobChunks(file)`, arrays. */
export type ByteChunks = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Reads a Blob or File (browser or Node 20) in slices of `chunkSize` bytes. */
export async function* blobChunks(blob: Blob, chunkSize = 1 << 20): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < blob.size; off += chunkSize) {
    yield new Uint8Array(await blob.slice(off, Math.min(blob.size, off + chunkSize)).arrayBuffer());
  }
}

/** Bytes (or a string, UTF-8 encoded) cut into chunks of `chunkSize` bytes: for tests and in-memory data. */
export function* bytesChunks(data: Uint8Array | string, chunkSize = 1 << 16): Generator<Uint8Array> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  for (let off = 0; off < bytes.length; off += chunkSize) yield bytes.subarray(off, Math.min(bytes.length, off + chunkSize));
}

/**
 * Decodes UTF-8 incrementally (a character split across chunks is completed by the next chunk). A BOM is
 * dropped. Invalid UTF-8 is an error naming the byte range, not silently replaced.
 */
export async function* decodeUtf8(chunks: ByteChunks, name: string): AsyncGenerator<string> {
  const dec = new TextDecoder('utf-8', { fatal: true });
  let offset = 0;
  for await (const chunk of chunks) {
    let s: string;
    try {
      s = dec.decode(chunk, { stream: true });
    } catch {
      throw new DataError(`invalid UTF-8 in bytes ${offset}–${offset + chunk.length} (expected a UTF-8 text file)`, name);
    }
    offset += chunk.length;
    if (s) yield s;
  }
  let tail: string;
  try {
    tail = dec.decode();
  } catch {
    throw new DataError('the file ends inside a UTF-8 character (expected a UTF-8 text file)', name);
  }
  if (tail) yield tail;
}

export interface Line {
  text: string;
  /** 1-based line number. */
  line: number;
}

/** Splits decoded text into lines (LF or CRLF; the terminator is not included). */
export async function* splitLines(strings: AsyncIterable<string>): AsyncGenerator<Line> {
  let carry: string[] = [];
  let line = 0;
  for await (const s of strings) {
    let start = 0;
    for (let nl = s.indexOf('\n'); nl >= 0; nl = s.indexOf('\n', start)) {
      let text = s.slice(start, nl);
      if (carry.length) {
        text = carry.join('') + text;
        carry = [];
      }
      if (text.endsWith('\r')) text = text.slice(0, -1);
      yield { text, line: ++line };
      start = nl + 1;
    }
    if (start < s.length) carry.push(s.slice(start));
  }
  if (carry.length) {
    let text = carry.join('');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    yield { text, line: ++line };
  }
}

/**
 * Finds the first non-whitespace character of a text stream without losing anything: `rest` replays
 * the whole stream from its start. `first` is null for an empty (or all-whitespace) stream.
 */
export async function peekFirstChar(strings: AsyncIterable<string>): Promise<{ first: string | null; rest: AsyncIterable<string> }> {
  const it = strings[Symbol.asyncIterator]();
  const buffered: string[] = [];
  let first: string | null = null;
  let done = false;
  while (first === null) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    buffered.push(r.value);
    const m = /\S/.exec(r.value);
    if (m) first = m[0];
  }
  async function* rest(): AsyncGenerator<string> {
    yield* buffered;
    if (done) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  return { first, rest: rest() };
}

/** Wraps a synchronous or asynchronous iterable as an async iterable. */
export async function* toAsync<T>(items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  for await (const x of items) yield x;
}
