// Files the CNI layer keeps for DEL (the result cache, the delegate cache): written whole to a
// temporary file in the same directory and renamed over the old one, so that a crash mid-write
// never leaves half a file where DEL will look, and so that a watcher of the directory sees one
// complete file appear (containerd's conf syncer did not notice files renamed in from elsewhere).
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export interface WriteOptions {
  /**
   * fsync the file before the rename (default true): after a crash the file is whole and new, or
   * the old one. False for files whose loss costs nothing a crash does not also take (the result
   * cache and network-status, which describe a netns that a reboot removes): the rename still
   * never shows half a file to a reader that runs meanwhile, and ADD saves about 2 ms a file.
   */
  readonly durable?: boolean;
}

/** Writes `body` to `path` (mode 0600 unless given, its directory made 0700 when missing). Rejects with the fs error. */
export async function writeFileAtomic(path: string, body: string, mode = 0o600, options: WriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  // A leading dot: listings of the directory skip a write in progress.
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(temp, "wx", mode);
    try {
      await handle.writeFile(body);
      if (options.durable !== false) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** Removes a file; false when there was none. Rejects with any other fs error. */
export async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}
