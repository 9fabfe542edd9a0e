// The state directory: cluster objects read from every *.yaml, *.yml and *.json file below a
// folder (format: state-file.ts). A StateStore keeps, per file, the last good version and why
// the newest one is not in use, so that a file that turns unreadable, invalid or half-written never
// drops its objects silently; it re-reads only the files whose stamp (device, inode, size, mtime,
// ctime) changed, spreads the parsing over turns of the event loop, and builds one snapshot at the
// end. `loadStateDir` is the same store read once, for one-shot commands.
import { createHash } from "node:crypto";
import type { Dirent } from "node:fs";
import { lstat, readdir, readFile, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { type Problem, formatProblem } from "../api/errors.js";
import { type NetworkAttachmentDefinition, objectKey } from "../api/objects.js";
import type { HeldObject, Snapshot, StateFault, StateFaultKind } from "../api/snapshot.js";
import { nadCniInfo } from "../networks/nad-config.js";
import { NADGUARD_STATE_DIR } from "../networks/network-status.js";
import { SnapshotBuilder } from "./snapshot-builder.js";
import { type StatusFiles, overlayStatuses, readStatusFiles, sameStatusFiles } from "./status-overlay.js";
import {
  type FileContent,
  type ParsedObject,
  STATE_FILE,
  addFileContent,
  collectObject,
  finish,
  heldObjects,
  parseStateText,
} from "./state-file.js";

/** What a walk of the state directory found. */
export interface StateTree {
  /** State files, absolute, sorted so that loading is deterministic. */
  readonly files: readonly string[];
  /** The directories read, the root first: what a watcher follows. */
  readonly directories: readonly string[];
  /** Directories below the root that could not be read, with the error. */
  readonly unreadable: ReadonlyMap<string, Error>;
}

/**
 * Walks the state directory; throws only when the root itself cannot be read. Symbolic links
 * named like state files are read through (a dangling one is an unreadable file); entries named
 * `..*` are skipped: they are the internals of kubelet's atomic writer (ConfigMap and Secret
 * volumes), whose files are read through the links beside them. The root's `.nadguard` directory
 * is skipped: it holds what the node daemon records (status-overlay.ts), not cluster objects.
 */
export async function walkStateDir(root: string): Promise<StateTree> {
  const files: string[] = [];
  const directories: string[] = [];
  const unreadable = new Map<string, Error>();
  const queue = [root];
  for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (dir === root) throw error;
      unreadable.set(dir, error as Error);
      continue;
    }
    directories.push(dir);
    for (const entry of entries) {
      if (entry.name.startsWith("..") || (dir === root && entry.name === NADGUARD_STATE_DIR)) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) queue.push(path);
      else if ((entry.isFile() || entry.isSymbolicLink()) && STATE_FILE.test(entry.name)) files.push(path);
    }
  }
  return { files: files.sort(), directories, unreadable };
}

/** When to pause a long piece of work so that other callbacks (reviews) get the event loop. */
export interface TimeSlice {
  /** Resolves after other callbacks ran when the slice is used up; otherwise undefined. */
  pause(): Promise<void> | undefined;
}

/** Never pauses: one-shot commands read the directory in one go. */
export const NO_PAUSE: TimeSlice = { pause: () => undefined };

/** Pauses once `ms` of work have passed since the last pause; setImmediate lets pending I/O in first. */
export function timeSlice(ms: number): TimeSlice {
  let started = performance.now();
  return {
    pause() {
      if (performance.now() - started < ms) return undefined;
      return new Promise<void>((resolve) =>
        setImmediate(() => {
          started = performance.now();
          resolve();
        }),
      );
    },
  };
}

async function drive<T>(steps: Generator<void, T>, slice: TimeSlice): Promise<T> {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await slice.pause();
  }
}

/** Why the newest version of a file is not (wholly) in use. */
interface FileFault {
  readonly kind: StateFaultKind;
  /** A few words, for denials. */
  readonly reason: string;
  /** The problem as one-shot commands print it, e.g. `a.yaml: cannot read: EACCES: …`. */
  readonly problem: Problem;
}

interface Entry {
  /** Stamp of the version last examined. */
  stamp: string;
  /** Content hash of the version last read (undefined after a read error). */
  hash: string | undefined;
  /** True while the file's mtime is too recent to trust an unchanged stamp. */
  racy: boolean;
  /** The last version that was read and parsed without fault. */
  good: { readonly content: FileContent; readonly hash: string; readonly holds: readonly HeldObject[] } | undefined;
  /** What did parse of a file that never had a good version: in use until one comes. */
  partial: FileContent | undefined;
  fault: FileFault | undefined;
}

interface DirectoryFault {
  readonly kind: StateFaultKind;
  readonly reason: string;
  readonly problem: Problem;
}

export interface RefreshResult {
  /** True when the next snapshot would differ from the last one built. */
  readonly changed: boolean;
  /** Faults seen for the first time in this refresh (a file's new broken version, a directory gone). */
  readonly newFaults: readonly StateFaultKind[];
}

/**
 * Files and directories whose mtime is within this window of the read are read again on the next
 * refresh even when their stamp did not change: Linux stamps files with a coarse clock (one
 * jiffy, 1–10 ms) and some filesystems keep whole or even-numbered seconds, so two same-size
 * writes in one tick share a stamp. An unchanged content hash then costs no parse.
 */
const RACY_MS = 2_000;
/** Files stat'ed and read in parallel: enough to keep the thread pool busy, few enough buffers at once. */
const BATCH = 64;

type Stamp = { key: string; mtimeMs: number } | { error: NodeJS.ErrnoException } | "gone";

export class StateStore {
  readonly #root: string;
  readonly #entries = new Map<string, Entry>();
  #directoryFaults = new Map<string, DirectoryFault>();
  #directories: readonly string[] = [];
  #statuses: StatusFiles | undefined;

  constructor(root: string) {
    this.#root = root;
  }

  /** The directories of the last successful walk, the root first. */
  get directories(): readonly string[] {
    return this.#directories;
  }

  /** True when the directory can be read and at least one file's newest version is in use. */
  get ready(): boolean {
    if (this.#directoryFaults.has("")) return false;
    for (const entry of this.#entries.values()) if (entry.good && !entry.fault) return true;
    return false;
  }

  /** Files and directories whose newest version is not in use. */
  get failing(): number {
    let count = this.#directoryFaults.size;
    for (const entry of this.#entries.values()) if (entry.fault) count++;
    return count;
  }

  /** Why the state directory itself cannot be read, as one-shot commands report it; undefined when it can. */
  get rootProblem(): Problem | undefined {
    const fault = this.#directoryFaults.get("");
    return fault?.problem.code === "state.read" ? fault.problem : undefined;
  }

  /** Why the store is not ready, in one sentence; undefined when it is. */
  get notReadyReason(): string | undefined {
    if (this.ready) return undefined;
    const root = this.#directoryFaults.get("");
    if (root) return `the state directory ${this.#root} ${root.reason}`;
    return this.#entries.size === 0 ? `no state file in ${this.#root} could be read` : `no state file in ${this.#root} loads (${this.failing} failing)`;
  }

  /** Walks the directory, re-reads what changed, keeps the last good versions of what fails. */
  async refresh(slice: TimeSlice): Promise<RefreshResult> {
    const newFaults: StateFaultKind[] = [];
    let tree: StateTree;
    try {
      tree = await walkStateDir(this.#root);
    } catch (error) {
      const message = (error as Error).message;
      const fault = { kind: "directory" as const, reason: `cannot be read: ${directoryReason(error)}`, problem: { code: "state.read" as const, path: this.#root, message: `cannot read the state directory: ${message}` } };
      return { changed: this.#setDirectoryFaults(new Map([["", fault]]), newFaults), newFaults };
    }
    const statuses = await readStatusFiles(this.#root);
    const statusesChanged = !sameStatusFiles(this.#statuses, statuses);
    this.#statuses = statuses;
    this.#directories = [...tree.directories, ...statuses.directories];
    const faults = new Map<string, DirectoryFault>();
    for (const [dir, error] of tree.unreadable) {
      const path = `${this.#relative(dir)}/`;
      faults.set(path, { kind: "directory", reason: `cannot be read: ${directoryReason(error)}`, problem: { code: "state.read", path, message: `cannot read the directory: ${error.message}` } });
    }
    if (tree.files.length === 0 && faults.size === 0) {
      // Kept as it was: an emptied directory is more often a copy in progress or a lost volume
      // than a deliberate "no objects at all", and the webhook is not ready meanwhile.
      faults.set("", { kind: "directory", reason: "holds no state file", problem: { code: "state.empty", path: this.#root, message: "holds no *.yaml, *.yml or *.json file" } });
    }
    let changed = this.#setDirectoryFaults(faults, newFaults) || statusesChanged;
    if (faults.has("")) return { changed, newFaults };

    const listed = new Set(tree.files.map((file) => this.#relative(file)));
    const below = [...faults.keys()];
    for (const path of this.#entries.keys()) {
      // A file below an unreadable directory may still be there: its last good version stays.
      if (!listed.has(path) && !below.some((dir) => path.startsWith(dir))) {
        this.#entries.delete(path);
        changed = true;
      }
    }
    for (let i = 0; i < tree.files.length; i += BATCH) {
      const batch = tree.files.slice(i, i + BATCH);
      const stamps = await Promise.all(batch.map(stampOf));
      const reads = await Promise.all(
        batch.map((file, j) => {
          const entry = this.#entries.get(this.#relative(file));
          const stamp = stamps[j]!;
          if (stamp === "gone" || "error" in stamp) return undefined;
          return entry && entry.stamp === stamp.key && !entry.racy ? undefined : readFile(file).catch((error: Error) => error);
        }),
      );
      for (const [j, file] of batch.entries()) {
        const path = this.#relative(file);
        const stamp = stamps[j]!;
        if (stamp === "gone") {
          changed = this.#entries.delete(path) || changed;
          continue;
        }
        const read = "error" in stamp ? stamp.error : reads[j];
        if (read === undefined) continue;
        const key = "error" in stamp ? `error:${stamp.error.code}` : stamp.key;
        const racy = "error" in stamp ? false : Date.now() - stamp.mtimeMs < RACY_MS;
        changed = (await this.#examine(path, key, racy, read, slice, newFaults)) || changed;
        await slice.pause();
      }
    }
    return { changed, newFaults };
  }

  /** Takes in one newly read (or unreadable) version of a file; true when the snapshot changes. */
  async #examine(path: string, stamp: string, racy: boolean, read: Buffer | Error, slice: TimeSlice, newFaults: StateFaultKind[]): Promise<boolean> {
    let entry = this.#entries.get(path);
    const isNew = entry === undefined;
    entry ??= { stamp, hash: undefined, racy, good: undefined, partial: undefined, fault: undefined };
    this.#entries.set(path, entry);
    entry.stamp = stamp;
    entry.racy = racy;
    if (read instanceof Error) {
      entry.hash = undefined;
      const problem = { code: "state.read" as const, path, message: `cannot read: ${read.message}` };
      return this.#fault(entry, { kind: "unreadable", reason: errnoReason(read), problem }, newFaults) || isNew;
    }
    const hash = createHash("sha256").update(read).digest("hex");
    if (entry.good?.hash === hash) {
      // The version in use, read again (touched, chmod'ed back, renamed over itself).
      entry.hash = hash;
      const recovered = entry.fault !== undefined;
      entry.fault = undefined;
      return recovered;
    }
    if (entry.hash === hash && !isNew) return false;
    const text = read.toString("utf8");
    if (racy && text.trim() === "" && entry.good && entry.good.content.objects.length > 0) {
      // Between a writer's truncate and its write (`kubectl get … > file` leaves the file empty
      // until the API server answers), the last good version stays; an empty file older than
      // RACY_MS is an edit like any other. Unhashed, it is read again on the next refresh.
      return false;
    }
    entry.hash = hash;
    const content = await drive(parseStateText(path, text), slice);
    if (content.fault) {
      if (!entry.good) entry.partial = content;
      return this.#fault(entry, content.fault, newFaults) || !entry.good;
    }
    const cut = entry.good && configCut(entry.good.content, content);
    if (cut) return this.#fault(entry, cut, newFaults);
    entry.good = { content, hash, holds: heldObjects(content) };
    entry.partial = undefined;
    entry.fault = undefined;
    return true;
  }

  #fault(entry: Entry, fault: FileFault, newFaults: StateFaultKind[]): boolean {
    if (entry.fault && formatProblem(entry.fault.problem) === formatProblem(fault.problem)) return false;
    entry.fault = fault;
    newFaults.push(fault.kind);
    return true;
  }

  #setDirectoryFaults(faults: Map<string, DirectoryFault>, newFaults: StateFaultKind[]): boolean {
    let changed = faults.size !== this.#directoryFaults.size;
    for (const [path, fault] of faults) {
      if (this.#directoryFaults.get(path)?.problem.message === fault.problem.message) continue;
      changed = true;
      newFaults.push(fault.kind);
    }
    this.#directoryFaults = faults;
    return changed;
  }

  #relative(file: string): string {
    return relative(this.#root, file).split(sep).join("/") || file;
  }

  /** The snapshot of the versions in use, built in slices; faults in `stateFaults` and `problems`. */
  async snapshot(version: number, slice: TimeSlice): Promise<Snapshot> {
    const builder = new SnapshotBuilder(version);
    const faults: StateFault[] = [];
    const haveObjects = [...this.#entries.values()].some((entry) => entry.good ?? entry.partial);
    for (const [path, fault] of [...this.#directoryFaults].sort(([a], [b]) => a.localeCompare(b))) {
      builder.problem(haveObjects ? { ...fault.problem, message: `${fault.problem.message}; the last good state stays in use` } : fault.problem);
      // A directory known to be empty, with nothing read before, hides nothing.
      if (haveObjects || fault.problem.code !== "state.empty") faults.push({ path, kind: fault.kind, reason: fault.reason, lastGoodInUse: haveObjects, holds: undefined });
    }
    for (const path of [...this.#entries.keys()].sort()) {
      const entry = this.#entries.get(path)!;
      const inUse = entry.good?.content ?? entry.partial;
      if (inUse) addFileContent(builder, inUse);
      if (entry.fault) {
        // A never-good file's partial content already carries its YAML or schema problems.
        const problem = entry.fault.problem;
        if (entry.good) builder.problem({ ...problem, message: `${problem.message}; its last good version stays in use` });
        else if (!entry.partial) builder.problem(problem);
        faults.push({ path, kind: entry.fault.kind, reason: entry.fault.reason, lastGoodInUse: entry.good !== undefined, holds: entry.good?.holds });
      }
      await slice.pause();
    }
    const built = { ...builder.build(), stateFaults: faults };
    return this.#statuses === undefined ? built : overlayStatuses(built, this.#statuses, (path) => this.#relative(path));
  }
}

/**
 * A NAD whose config was valid JSON in the last good version and no longer is: what a file cut
 * inside a config block looks like (YAML and the schema accept the shorter string). A NAD whose
 * config never was valid is left to admission's warnings, as before.
 */
function configCut(good: FileContent, next: FileContent): FileFault | undefined {
  const before = new Map<string, ParsedObject>();
  for (const parsed of good.objects) if (parsed.kind === "NetworkAttachmentDefinition") before.set(nadKey(parsed), parsed);
  for (const parsed of next.objects) {
    if (parsed.kind !== "NetworkAttachmentDefinition") continue;
    const problem = nadCniInfo(parsed.object as NetworkAttachmentDefinition).problem;
    if (!problem?.includes("not valid JSON")) continue;
    const previous = before.get(nadKey(parsed));
    if (!previous || nadCniInfo(previous.object as NetworkAttachmentDefinition).problem) continue;
    const message = `${problem.replace(/: .*$/, "")} any more (a half-written file?)`;
    return { kind: "invalid-object", reason: `an invalid object at ${parsed.place}: ${message}`, problem: { code: "state.invalid", path: parsed.place, message } };
  }
  return undefined;
}

const nadKey = (parsed: ParsedObject): string => objectKey(parsed.object.metadata.namespace || "default", parsed.object.metadata.name ?? "");

/** Device, inode, size, mtime and ctime (nanoseconds): a rename, a write and a chmod each change it. */
async function stampOf(file: string): Promise<Stamp> {
  try {
    const s = await stat(file, { bigint: true });
    if (s.isDirectory()) return { error: Object.assign(new Error(`EISDIR: is a directory, read '${file}'`), { code: "EISDIR" }) };
    return { key: `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`, mtimeMs: Number(s.mtimeNs / 1_000_000n) };
  } catch (error) {
    // Deleted since the walk: gone. A link whose target is missing: unreadable.
    if ((error as NodeJS.ErrnoException).code === "ENOENT" && !(await lstat(file).then(() => true, () => false))) return "gone";
    return { error: error as NodeJS.ErrnoException };
  }
}

const ERRNO_REASONS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOENT: "it is a link to a missing file",
  EISDIR: "is a directory",
  ENOTDIR: "is not a directory",
  ELOOP: "too many levels of symbolic links",
  EIO: "input/output error",
};

/** A few words for a denial message, without the absolute path that error messages carry. */
function errnoReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return (code && ERRNO_REASONS[code]) ?? (code || (error as Error).message.split("\n")[0]!);
}

function directoryReason(error: unknown): string {
  return (error as NodeJS.ErrnoException).code === "ENOENT" ? "it does not exist" : errnoReason(error);
}

/** Reads and indexes a state directory into a Snapshot, once. Never throws for bad content. */
export async function loadStateDir(dir: string, version = 1): Promise<Snapshot> {
  const store = new StateStore(dir);
  await store.refresh(NO_PAUSE);
  return store.snapshot(version, NO_PAUSE);
}

/** Adds every object of one file's text; `where` names the file in problems. */
export function addStateText(builder: SnapshotBuilder, where: string, text: string): void {
  addFileContent(builder, finish(parseStateText(where, text)));
}

/** Adds one decoded object (or `kind: List`) to the builder. */
export function addStateObject(builder: SnapshotBuilder, place: string, object: unknown): void {
  const content: FileContent = { objects: [], problems: [] };
  finish(collectObject(content, place, object));
  addFileContent(builder, content);
}

export { objectKey };
