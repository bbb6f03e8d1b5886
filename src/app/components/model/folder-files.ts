// Files of a folder the user picked or dropped, as File objects (the engine reads them in its worker).

type Entry = FileSystemEntry;

/** The files of a dropped folder (or dropped files), walking directories with the entries API. */
export async function filesFromDrop(dt: DataTransfer): Promise<{ name: string; files: File[] } | null> {
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is Entry => !!e);
  if (entries.length === 1 && entries[0]!.isDirectory) {
    return { name: entries[0]!.name, files: await readDirectory(entries[0] as FileSystemDirectoryEntry) };
  }
  const files = [...dt.files];
  return files.length ? { name: 'dropped files', files } : null;
}

async function readDirectory(dir: FileSystemDirectoryEntry): Promise<File[]> {
  const reader = dir.createReader();
  const all: Entry[] = [];
  for (;;) {
    const batch = await new Promise<Entry[]>((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    all.push(...batch);
  }
  const files: File[] = [];
  for (const e of all) {
    if (e.isFile) files.push(await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej)));
  }
  return files; // model folders are flat: sub-folders are not needed
}

interface DirHandle {
  name: string;
  values(): AsyncIterable<{ kind: 'file' | 'directory'; name: string; getFile?: () => Promise<File> }>;
}

/** The directory picker (Chromium), or null where the browser has none or the user cancelled. */
export async function pickDirectory(): Promise<{ name: string; files: File[] } | null> {
  const picker = (globalThis as { showDirectoryPicker?: (o?: object) => Promise<DirHandle> }).showDirectoryPicker;
  if (!picker) return null;
  let dir: DirHandle;
  try {
    dir = await picker({ mode: 'read' });
  } catch {
    return null; // cancelled
  }
  const files: File[] = [];
  for await (const h of dir.values()) if (h.kind === 'file' && h.getFile) files.push(await h.getFile());
  return { name: dir.name, files };
}

export const hasDirectoryPicker = () => typeof (globalThis as { showDirectoryPicker?: unknown }).showDirectoryPicker === 'function';
