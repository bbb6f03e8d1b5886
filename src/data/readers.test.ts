// Readers: JSONL, JSON arrays (streamed), CSV/TSV (RFC 4180 edge cases), plain text, UTF-8 edge
// cases split at every byte, bad input naming the line, and a ~20 MB streaming test that checks rows
// come out while the file is still being read.

import { describe, expect, it } from 'vitest';
import { SkipLog } from './errors.ts';
import { fileKindFromName, readCsv, readJson, readJsonl, readRows, readText, type SourceRow } from './readers.ts';
import { blobChunks, bytesChunks } from './stream.ts';

async function all(gen: AsyncIterable<SourceRow>): Promise<SourceRow[]> {
  const out: SourceRow[] = [];
  for await (const r of gen) out.push(r);
  return out;
}
const values = async (gen: AsyncIterable<SourceRow>) => (await all(gen)).map((r) => r.value);

describe('JSON Lines', () => {
  it('reads objects, ignores blank lines, handles CRLF and a missing final newline', async () => {
    const rows = await all(readJsonl(bytesChunks('{"a":1}\r\n\r\n{"a":2}\n   \n{"a":3}', 3), { name: 'x.jsonl' }));
    expect(rows.map((r) => r.value)).toEqual([{ a: 1 }, { a: 2 }, { a: 3 }]);
    expect(rows.map((r) => r.where)).toEqual(['x.jsonl line 1', 'x.jsonl line 3', 'x.jsonl line 5']);
  });

  it('a malformed line is skipped and counted with its line number, or is an error naming it', async () => {
    const text = '{"a":1}\n{"a":\n[1,2]\n{"a":4}\n';
    const skips = new SkipLog();
    expect(await values(readJsonl(bytesChunks(text), { name: 'd.jsonl', skips }))).toEqual([{ a: 1 }, { a: 4 }]);
    expect(skips.summary().byReason).toEqual({ 'invalid JSON': 1, 'not an object': 1 });
    expect(skips.samples[0]!.where).toBe('d.jsonl line 2');
    expect(skips.samples[0]!.reason).toMatch(/^invalid JSON \(expected one JSON object per line\)/);
    expect(skips.samples[1]).toEqual({ where: 'd.jsonl line 3', reason: 'expected a JSON object per line, got array' });
    await expect(values(readJsonl(bytesChunks(text), { name: 'd.jsonl', onBadRow: 'error' }))).rejects.toThrow(
      /^d\.jsonl line 2: invalid JSON \(expected one JSON object per line\)/,
    );
  });
});

describe('JSON arrays (streamed)', () => {
  const doc = '[\n {"t": "a [tricky] {string} with \\"quotes\\" and \\\\"},\n {"n": [1, {"x": "]"}]},\n\n {"u": "é😀"}\n]\n';

  it('splits elements correctly even when fed one byte at a time', async () => {
    const rows = await all(readJson(bytesChunks(doc, 1), { name: 'a.json' }));
    expect(rows.map((r) => r.value)).toEqual([{ t: 'a [tricky] {string} with "quotes" and \\' }, { n: [1, { x: ']' }] }, { u: 'é😀' }]);
    expect(rows.map((r) => r.where)).toEqual(['a.json line 2', 'a.json line 3', 'a.json line 5']);
  });

  it('a .json file holding JSON Lines is read as JSON Lines', async () => {
    expect(await values(readJson(bytesChunks('{"a":1}\n{"a":2}\n')))).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('non-object elements are skipped with a reason; structural errors are fatal and name the line', async () => {
    const skips = new SkipLog();
    expect(await values(readJson(bytesChunks('[{"a":1}, 2, "s", {"a":3}]'), { skips }))).toEqual([{ a: 1 }, { a: 3 }]);
    expect(skips.summary().byReason).toEqual({ 'not an object': 2 });
    const bad = async (s: string) => values(readJson(bytesChunks(s), { name: 'b.json' }));
    await expect(bad('[{"a":1},\n{"a":2},\n]')).rejects.toThrow('b.json: line 3: trailing comma before "]"');
    await expect(bad('[{"a":1}\n{"a":2}]')).rejects.toThrow('b.json: line 2: expected "," or "]" after the array element, got "{"');
    await expect(bad('[{"a":1},\n{"a":')).rejects.toThrow('b.json: the file ends inside the array element starting at line 2');
    await expect(bad('[{"a":1}] x')).rejects.toThrow(/after the end of the JSON array/);
    await expect(bad('"hello"')).rejects.toThrow(/expected a JSON array \("\["\) or JSON Lines/);
    const s2 = new SkipLog();
    expect(await values(readJson(bytesChunks('[{"a":1},\n {"a": tru}]'), { name: 'b.json', skips: s2 }))).toEqual([{ a: 1 }]);
    expect(s2.samples[0]!.where).toBe('b.json line 2');
    expect(s2.samples[0]!.reason).toMatch(/^invalid JSON array element/);
    await expect(values(readJson(bytesChunks('[{"a":1},\n {"a": tru}]'), { name: 'b.json', onBadRow: 'error' }))).rejects.toThrow(/^b\.json line 2: invalid JSON array element/);
  }, 10_000);
});

describe('CSV and TSV', () => {
  it('RFC 4180: quoted delimiters, embedded newlines, doubled quotes, CRLF, no final newline', async () => {
    const csv = 'instruction,input,output\r\n"Say ""hi""","a, b","line 1\r\nline 2"\r\nplain,,x\r\n"",  spaced ,"last"';
    for (const size of [1, 2, 7, 1 << 16]) {
      const rows = await all(readCsv(bytesChunks(csv, size), { name: 't.csv' }));
      expect(rows.map((r) => r.value)).toEqual([
        { instruction: 'Say "hi"', input: 'a, b', output: 'line 1\r\nline 2' },
        { instruction: 'plain', input: '', output: 'x' },
        { instruction: '', input: '  spaced ', output: 'last' },
      ]);
      expect(rows.map((r) => r.where)).toEqual(['t.csv line 2', 't.csv line 4', 't.csv line 5']);
    }
  });

  it('TSV, blank lines, duplicate and empty header names, a quote inside an unquoted field', async () => {
    const tsv = 'prompt\tcompletion\tprompt\t\n5" screen\tok\tz\tw\n\nq\t"tab\there"\t\t\n';
    expect(await values(readRows(bytesChunks(tsv), 'tsv'))).toEqual([
      { prompt: '5" screen', completion: 'ok', prompt_2: 'z', column4: 'w' },
      { prompt: 'q', completion: 'tab\there', prompt_2: '', column4: '' },
    ]);
  });

  it('wrong field counts and text after a closing quote are bad rows naming the line', async () => {
    const skips = new SkipLog();
    const csv = 'a,b\n1,2\n3\n"x"y,4\n5,6\n';
    expect(await values(readCsv(bytesChunks(csv), { name: 'c.csv', skips }))).toEqual([{ a: '1', b: '2' }, { a: '5', b: '6' }]);
    expect(skips.samples).toEqual([
      { where: 'c.csv line 3', reason: 'expected 2 fields (a, b), got 1' },
      { where: 'c.csv line 4', reason: 'unexpected character "y" after the closing quote of field 1 (expected "," or the end of the line; write "" for a quote inside a quoted field)' },
    ]);
  });

  it('an unterminated quote is fatal and names the line where the field starts', async () => {
    const csv = 'a,b\n1,2\n3,"never\nclosed\n4,5\n';
    await expect(values(readCsv(bytesChunks(csv, 4), { name: 'u.csv' }))).rejects.toThrow(
      'u.csv: unterminated quoted field starting at line 3 (field 2 of the record at line 3): expected a closing quote (") before the end of the file',
    );
  });
});

describe('plain text', () => {
  const text = 'First para\nline two\n\n\nSecond para\n  \nThird';
  it('paragraphs (default), lines, or the whole document', async () => {
    expect(await values(readText(bytesChunks(text, 5)))).toEqual([{ text: 'First para\nline two' }, { text: 'Second para' }, { text: 'Third' }]);
    expect((await values(readText(bytesChunks(text), { textUnit: 'line' }))).length).toBe(4);
    expect(await values(readText(bytesChunks(text), { textUnit: 'document' }))).toEqual([{ text }]);
  });
  it("'auto' sniffs JSON arrays, JSON Lines and text", async () => {
    expect(await values(readRows(bytesChunks('  [{"a":1}]'), 'auto'))).toEqual([{ a: 1 }]);
    expect(await values(readRows(bytesChunks('\n{"a":1}\n'), 'auto'))).toEqual([{ a: 1 }]);
    expect(await values(readRows(bytesChunks('hello'), 'auto'))).toEqual([{ text: 'hello' }]);
    expect(fileKindFromName('x.NDJSON')).toBe('jsonl');
    expect(fileKindFromName('x.parquet')).toBeNull();
  });
});

describe('UTF-8', () => {
  const edge = 'emoji 😀👩‍💻🇯🇵, CJK 中文字 日本語 한국어, combining e\u0301 a\u0308\u0323, Ω≈ç√, zero\u200Bwidth, BOM-free';
  it('decodes every character correctly whatever the chunk boundaries (all byte splits)', async () => {
    const file = '\uFEFF' + JSON.stringify({ text: edge }) + '\n' + JSON.stringify({ text: edge.split('').reverse().join('') }) + '\n';
    const bytes = new TextEncoder().encode(file);
    for (let cut = 1; cut < bytes.length; cut += 3) {
      const rows = await values(readJsonl([bytes.subarray(0, cut), bytes.subarray(cut)]));
      expect(rows[0]).toEqual({ text: edge });
    }
    for (const size of [1, 2, 3, 5]) expect((await values(readRows(bytesChunks(bytes, size), 'jsonl')))[0]).toEqual({ text: edge });
  });
  it('invalid UTF-8 is an error naming the byte range', async () => {
    const bad = Uint8Array.of(0x7b, 0x7d, 0x0a, 0xff, 0xfe, 0x0a);
    await expect(values(readJsonl([bad], { name: 'bin.jsonl' }))).rejects.toThrow('bin.jsonl: invalid UTF-8 in bytes 0–6 (expected a UTF-8 text file)');
  });
  it('reads a Blob in slices', async () => {
    const blob = new Blob(['{"text":"' + edge + '"}\n']);
    expect(await values(readJsonl(blobChunks(blob, 7)))).toEqual([{ text: edge }]);
  });
});

describe('streaming a large file', () => {
  /** ~20 MB of JSONL produced lazily in 4 KiB chunks; `produced` counts bytes handed out so far. */
  function bigJsonl(rows: number) {
    const state = { produced: 0, total: 0 };
    const enc = new TextEncoder();
    async function* gen(): AsyncGenerator<Uint8Array> {
      let buf = '';
      for (let i = 0; i < rows; i++) {
        buf += JSON.stringify({ messages: [{ role: 'user', content: `question ${i} ${'x'.repeat(80)}` }, { role: 'assistant', content: `answer ${i} ${'y'.repeat(80)}` }] }) + '\n';
        while (buf.length >= 4096) {
          const b = enc.encode(buf.slice(0, 4096));
          buf = buf.slice(4096);
          state.produced += b.length;
          yield b;
        }
      }
      const b = enc.encode(buf);
      state.produced += b.length;
      yield b;
    }
    return { state, gen };
  }

  it('yields rows long before the stream ends and never runs more than a chunk ahead', async () => {
    const n = 80_000; // ≈ 20 MB
    const { state, gen } = bigJsonl(n);
    let count = 0;
    let producedAtFirst = -1;
    let maxAhead = 0;
    let consumed = 0;
    for await (const r of readJsonl(gen())) {
      if (count === 0) producedAtFirst = state.produced;
      consumed += JSON.stringify(r.value).length + 1;
      maxAhead = Math.max(maxAhead, state.produced - consumed);
      count++;
    }
    expect(count).toBe(n);
    expect(state.produced).toBeGreaterThan(19_000_000);
    expect(producedAtFirst).toBe(4096); // the first row came out of the first chunk
    expect(maxAhead).toBeLessThan(3 * 4096); // bounded: the reader holds at most about one chunk
  }, 60_000);

  it('streams a JSON array the same way', async () => {
    const enc = new TextEncoder();
    let produced = 0;
    let producedAtFirst = -1;
    async function* gen(): AsyncGenerator<Uint8Array> {
      yield enc.encode('[');
      for (let i = 0; i < 20_000; i++) {
        const b = enc.encode((i ? ',' : '') + JSON.stringify({ text: `row ${i} ${'z'.repeat(200)}` }));
        produced += b.length;
        yield b;
      }
      yield enc.encode(']');
    }
    let count = 0;
    for await (const _ of readJson(gen())) {
      if (count++ === 0) producedAtFirst = produced;
    }
    expect(count).toBe(20_000);
    expect(producedAtFirst).toBeLessThan(1000);
  }, 60_000);
});
