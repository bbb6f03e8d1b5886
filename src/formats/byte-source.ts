// Random-access byte sources: one small interface so readers work the same on an in-memory
// Uint8Array, a browser File/Blob, a Node file handle or IndexedDB chunks. No DOM or Node APIs
// beyond Blob (which Node 20 has too). Every read is bounds-checked.

export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** A name for error messages (usually the file name). */
  readonly name: string;
  /** Exactly `length` bytes starting at `offset`; throws RangeError when out of range. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Throws a RangeError unless [offset, offset+length) lies inside a source of `size` bytes. */
export function checkRead(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
      offset + length > size) {
    throw new RangeError(`${name}: read of ${length} bytes at offset ${offset} is outside the ${size}-byte source`);
  }
}

/** A source over bytes in memory. Reads return views into `bytes` (no copy): don't mutate them. */
export function bytesSource(bytes: Uint8Array, name = 'bytes'): ByteSource {
  return {
    size: bytes.byteLength,
    name,
    read(offset, length) {
      try {
        checkRead(name, bytes.byteLength, offset, length);
      } catch (e) {
        return Promise.reject(e);
      }
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
  };
}

/** A source over a Blob or File (browser or Node 20). `name` defaults to the File's name. */
export function blobSource(blob: Blob, name?: string): ByteSource {
  const fileName = (blob as { name?: unknown }).name;
  const label = name ?? (typeof fileName === 'string' ? fileName : 'blob');
  return {
    size: blob.size,
    name: label,
    async read(offset, length) {
      checkRead(label, blob.size, offset, length);
      const buf = await blob.slice(offset, offset + length).arrayBuffer();
      if (buf.byteLength !== length) {
        throw new RangeError(`${label}: short read, got ${buf.byteLength} of ${length} bytes at offset ${offset}`);
      }
      return new Uint8Array(buf);
    },
  };
}
