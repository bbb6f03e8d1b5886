// A Node ModelFiles over a directory: fs promises, one short-lived file handle per read, every
// read bounds-checked and filled completely (short reads loop; a file that shrank is an error).

import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { checkRead, type ByteSource } from '../formats/byte-source.ts';
import { MissingFileError, type ModelFiles } from '../model/model-files.ts';

/** A ByteSource over the file at `path` (its size is read now). */
export async function fileSource(path: string, name = path): Promise<ByteSource> {
  const { size } = await stat(path);
  return {
    size,
    name,
    async read(offset, length) {
      checkRead(name, size, offset, length);
      const out = new Uint8Array(length);
      const fh = await open(path, 'r');
      try {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await fh.read(out, done, length - done, offset + done);
          if (bytesRead === 0) throw new RangeError(`${name}: file ended after ${offset + done} bytes (expected ${size})`);
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
      return out;
    },
  };
}

/** The model folder at `dir` (top-level files only). */
export function modelFolder(dir: string): ModelFiles {
  const root = resolve(dir);
  const pathOf = (name: string) => {
    const p = resolve(join(root, name));
    if (!p.startsWith(root + sep)) throw new Error(`${root}: file name ${JSON.stringify(name)} leaves the folder`);
    return p;
  };
  const list = async () => {
    const ents = await readdir(root, { withFileTypes: true });
    return ents.filter((e) => e.isFile()).map((e) => e.name).sort();
  };
  const missing = async (name: string, e: unknown): Promise<never> => {
    if ((e as NodeJS.ErrnoException)?.code === 'ENOENT') throw new MissingFileError(name, root, await list());
    throw e;
  };
  return {
    list,
    open: async (name) => fileSource(pathOf(name), name).catch((e) => missing(name, e)),
    text: async (name) => readFile(pathOf(name), 'utf8').catch((e) => missing(name, e)),
  };
}
