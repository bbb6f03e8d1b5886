// Streaming RFC 4180 CSV/TSV record parser: quoted fields may hold delimiters, newlines and "" (an
// escaped quote); LF or CRLF line ends; records are reported with the line they start on. Lenient
// where RFC 4180 is silent in practice: a quote inside an unquoted field is kept as a character.
// A character after a closing quote makes that record bad (reported, not fatal); a quote that is never
// closed is fatal, naming the line where the field started.

import { DataError } from './errors.ts';

export interface CsvRecord {
  fields: string[];
  /** 1-based line the record starts on. */
  line: number;
  /** Set when the record is malformed (it is still returned so the reader can report it). */
  error?: string;
}

const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_SEEN = 3; // a quote inside a quoted field: either "" or the closing quote

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

export class CsvParser {
  private fields: string[] = [];
  private field = '';
  private state = FIELD_START;
  private line = 1;
  private recordLine = 1;
  private quoteLine = 1;
  private error: string | undefined;
  private skipLF = false;

  constructor(private readonly delimiter: string, private readonly name = 'csv') {
    if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
      throw new DataError(`invalid CSV delimiter ${JSON.stringify(delimiter)} (expected one character other than a quote or newline)`);
    }
  }

  /** Parses the next piece of text; complete records are appended to `out`. */
  push(s: string, out: CsvRecord[]): void {
    const d = this.delimiter;
    const n = s.length;
    let i = 0;
    if (this.skipLF) {
      this.skipLF = false;
      if (n > 0 && s[0] === '\n') i = 1;
    }
    while (i < n) {
      const state = this.state;
      if (state === QUOTED) {
        const j = s.indexOf('"', i);
        const piece = j < 0 ? s.slice(i) : s.slice(i, j);
        this.field += piece;
        this.line += countNewlines(piece);
        if (j < 0) break;
        i = j + 1;
        this.state = QUOTE_SEEN;
        continue;
      }
      const c = s[i]!;
      if (state === QUOTE_SEEN) {
        if (c === '"') {
          this.field += '"';
          this.state = QUOTED;
          i++;
          continue;
        }
        if (c !== d && c !== '\n' && c !== '\r') {
          this.error ??= `unexpected character ${JSON.stringify(c)} after the closing quote of field ${this.fields.length + 1} ` +
            `(expected ${d === '\t' ? 'a tab' : JSON.stringify(d)} or the end of the line; write "" for a quote inside a quoted field)`;
        }
        this.state = UNQUOTED; // the character is handled (kept or treated as a terminator) below
      } else if (state === FIELD_START && c === '"') {
        this.state = QUOTED;
        this.quoteLine = this.line;
        i++;
        continue;
      }
      // Unquoted: take everything up to the next delimiter or line end in one slice.
      let j = i;
      while (j < n) {
        const e = s[j];
        if (e === d || e === '\n' || e === '\r') break;
        j++;
      }
      if (j > i) {
        this.field += s.slice(i, j);
        this.state = UNQUOTED;
      }
      if (j >= n) break;
      const t = s[j];
      if (t === d) {
        this.fields.push(this.field);
        this.field = '';
        this.state = FIELD_START;
        i = j + 1;
      } else {
        this.endRecord(out);
        i = j + 1;
        if (t === '\r') {
          if (i < n) {
            if (s[i] === '\n') i++;
          } else {
            this.skipLF = true;
          }
        }
      }
    }
  }

  /** Finishes the input: the last record may lack a line end; an open quote is an error. */
  end(out: CsvRecord[]): void {
    if (this.state === QUOTED) {
      throw new DataError(
        `unterminated quoted field starting at line ${this.quoteLine} (field ${this.fields.length + 1} of the record at line ${this.recordLine}): ` +
          'expected a closing quote (") before the end of the file',
        this.name,
      );
    }
    if (this.state !== FIELD_START || this.fields.length > 0 || this.field !== '') this.endRecord(out);
  }

  private endRecord(out: CsvRecord[]): void {
    this.fields.push(this.field);
    const rec: CsvRecord = { fields: this.fields, line: this.recordLine };
    if (this.error) rec.error = this.error;
    out.push(rec);
    this.fields = [];
    this.field = '';
    this.state = FIELD_START;
    this.error = undefined;
    this.line++;
    this.recordLine = this.line;
  }
}
