// Follows a directory tree with one non-recursive fs.watch (one inotify watch) per directory.
// Node 20's recursive fs.watch on Linux walks the tree again, synchronously, on events: with 1,000
// files created by a shell loop beside 200 others, it blocked the event loop for 6.7 s (measured
// on the project's 2-core machine); per-directory watches reported the same files with at most
// 57 ms of lag. The tree to follow comes from the last walk of the state directory.
import { type FSWatcher, watch } from "node:fs";
import { stat } from "node:fs/promises";

export class DirectoryWatch {
  readonly #onChange: (name: string | null) => void;
  readonly #onError: (error: Error) => void;
  readonly #watched = new Map<string, { readonly watcher: FSWatcher; readonly inode: bigint }>();
  readonly #unwatchable = new Set<string>();
  #closed = false;

  /** `onChange` gets the name of the entry that changed, when the kernel gives one. */
  constructor(onChange: (name: string | null) => void, onError: (error: Error) => void) {
    this.#onChange = onChange;
    this.#onError = onError;
  }

  /**
   * Watches exactly `directories`: new ones are added, vanished ones closed, and one replaced by
   * another directory of the same path (removed and made again, a symlink switched) watched anew.
   */
  async follow(directories: readonly string[]): Promise<void> {
    const inodes = await Promise.all(directories.map((dir) => stat(dir, { bigint: true }).then((s) => s.ino, () => undefined)));
    if (this.#closed) return;
    const keep = new Set<string>();
    directories.forEach((dir, i) => {
      const inode = inodes[i];
      if (inode === undefined) return;
      keep.add(dir);
      const current = this.#watched.get(dir);
      if (current?.inode === inode) return;
      current?.watcher.close();
      this.#watched.delete(dir);
      try {
        const watcher = watch(dir, (_event, name) => this.#onChange(name));
        // A watched directory that is removed ends its watch; the next walk decides what follows.
        watcher.on("error", () => {
          watcher.close();
          if (this.#watched.get(dir)?.watcher === watcher) this.#watched.delete(dir);
          this.#onChange(null);
        });
        this.#watched.set(dir, { watcher, inode });
        this.#unwatchable.delete(dir);
      } catch (error) {
        // Gone since the walk, or out of inotify watches: the poll still sees changes. Said once.
        if (!this.#unwatchable.has(dir)) this.#onError(new Error(`cannot watch ${dir}: ${(error as Error).message}; changes below it are seen by the poll only`));
        this.#unwatchable.add(dir);
      }
    });
    for (const [dir, { watcher }] of this.#watched) {
      if (keep.has(dir)) continue;
      watcher.close();
      this.#watched.delete(dir);
    }
  }

  /** The directories watched now. */
  get directories(): string[] {
    return [...this.#watched.keys()];
  }

  close(): void {
    this.#closed = true;
    for (const { watcher } of this.#watched.values()) watcher.close();
    this.#watched.clear();
  }
}
