// The serving certificate, reloaded without a restart. Kubernetes updates a mounted secret by
// swapping the `..data` symlink of the volume, so the directory is watched rather than the files;
// fs.watch can miss events (some volume types, editors that replace the directory), so the files
// are also stat'ed periodically. A reload that fails — unreadable, not PEM, a key of another
// certificate (half-written rotation) — keeps the certificate in use and is retried on the next
// event or poll.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { SecureContextOptions } from "node:tls";
import fp from "fastify-plugin";
import type { FastifyBaseLogger, FastifyPluginAsync, RawServerBase } from "fastify";
import type { WebhookMetrics } from "./metrics.js";

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface TlsMaterial {
  cert: string;
  key: string;
  serialNumber: string;
  subject: string;
  notAfter: Date;
}

export type TlsReloadResult = "reloaded" | "unchanged" | "failed" | "disabled";

/** Default interval of the stat fallback. */
export const DEFAULT_TLS_POLL_MS = 30_000;
/** A rotation writes several files; wait for the burst of events to settle. */
const DEBOUNCE_MS = 100;

/** Reads and checks a certificate/key pair; throws a message naming the file at fault. */
export async function readTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const [cert, key] = await Promise.all([readFile(files.certFile, "utf8"), readFile(files.keyFile, "utf8")]);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    throw new Error(`${files.certFile}: not a PEM certificate (${(error as Error).message})`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (error) {
    throw new Error(`${files.keyFile}: not a PEM private key (${(error as Error).message})`);
  }
  if (!matches) throw new Error(`${files.keyFile} is not the key of ${files.certFile}`);
  return { cert, key, serialNumber: x509.serialNumber, subject: x509.subject, notAfter: new Date(x509.validTo) };
}

export interface TlsReloader {
  /** Reads the files and, when they changed and are valid, applies them to new connections. */
  reload(): Promise<TlsReloadResult>;
  readonly current: TlsMaterial;
  stop(): void;
}

export interface TlsReloaderOptions {
  files: TlsFiles;
  initial: TlsMaterial;
  /** Swaps the server's context: tls.Server#setSecureContext. Existing connections keep theirs. */
  apply: (context: SecureContextOptions) => void;
  log: FastifyBaseLogger;
  metrics?: WebhookMetrics;
  pollIntervalMs?: number;
  /** Watch the directories as well as polling; default true (false leaves the poll alone, for tests). */
  watch?: boolean;
}

export function startTlsReloader(options: TlsReloaderOptions): TlsReloader {
  const { files, log } = options;
  let current = options.initial;
  let fingerprint = "";
  let queue: Promise<unknown> = Promise.resolve();
  let debounce: NodeJS.Timeout | undefined;
  options.metrics?.setCertificateNotAfter(current.notAfter.getTime() / 1000);

  const reloadNow = async (): Promise<TlsReloadResult> => {
    let next: TlsMaterial;
    try {
      next = await readTlsMaterial(files);
      if (next.cert === current.cert && next.key === current.key) return "unchanged";
      options.apply({ cert: next.cert, key: next.key });
    } catch (error) {
      log.error({ err: error, ...files }, "serving certificate reload failed; keeping the previous one");
      options.metrics?.observeTlsReload("failure");
      return "failed";
    }
    log.info({ serialNumber: next.serialNumber, subject: next.subject, notAfter: next.notAfter.toISOString() }, "serving certificate reloaded");
    current = next;
    options.metrics?.observeTlsReload("success");
    options.metrics?.setCertificateNotAfter(next.notAfter.getTime() / 1000);
    return "reloaded";
  };
  // One reload at a time, in order: a late read must not overwrite a newer certificate.
  const reload = (): Promise<TlsReloadResult> => {
    const run = queue.then(reloadNow);
    queue = run.catch(() => undefined);
    return run;
  };
  const schedule = (): void => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), DEBOUNCE_MS);
    debounce.unref();
  };

  const watchers = options.watch === false ? [] : watchDirectories(files, schedule, log);
  const poll = setInterval(() => {
    void statFingerprint(files).then((seen) => {
      if (seen === fingerprint) return;
      fingerprint = seen;
      schedule();
    });
  }, options.pollIntervalMs ?? DEFAULT_TLS_POLL_MS);
  poll.unref();
  void statFingerprint(files).then((seen) => (fingerprint = seen));

  return {
    reload,
    get current() {
      return current;
    },
    stop() {
      clearInterval(poll);
      clearTimeout(debounce);
      for (const watcher of watchers) watcher.close();
    },
  };
}

function watchDirectories(files: TlsFiles, onChange: () => void, log: FastifyBaseLogger): FSWatcher[] {
  const directories = new Set([dirname(files.certFile), dirname(files.keyFile)]);
  const watchers: FSWatcher[] = [];
  for (const directory of directories) {
    try {
      const watcher = watch(directory, { persistent: false }, onChange);
      watcher.on("error", (error) => log.warn({ err: error, directory }, "certificate directory watch failed; polling only"));
      watchers.push(watcher);
    } catch (error) {
      log.warn({ err: error, directory }, "cannot watch the certificate directory; polling only");
    }
  }
  return watchers;
}

/** stat follows the symlinks, so a swapped `..data` shows as another inode. */
async function statFingerprint(files: TlsFiles): Promise<string> {
  const parts = await Promise.all(
    [files.certFile, files.keyFile].map(async (file) => {
      try {
        const info = await stat(file);
        return `${basename(file)}:${info.ino}:${info.size}:${info.mtimeMs}`;
      } catch {
        return `${basename(file)}:missing`;
      }
    }),
  );
  return parts.join("|");
}

interface TlsPluginOptions {
  tls?: { files: TlsFiles; initial: TlsMaterial; pollIntervalMs?: number | undefined } | undefined;
}

declare module "fastify" {
  interface FastifyInstance {
    /** Reloads the serving certificate now; "disabled" when the app serves plain HTTP. */
    reloadTls(): Promise<TlsReloadResult>;
  }
}

const serveTlsReload: FastifyPluginAsync<TlsPluginOptions, RawServerBase> = async (app, options) => {
  const server = app.server;
  if (!options.tls || !("setSecureContext" in server)) {
    app.decorate("reloadTls", async (): Promise<TlsReloadResult> => "disabled");
    return;
  }
  const reloader = startTlsReloader({
    ...options.tls,
    apply: (context) => server.setSecureContext(context),
    log: app.log,
    metrics: app.webhookMetrics,
  });
  app.decorate("reloadTls", () => reloader.reload());
  app.addHook("onClose", async () => reloader.stop());
};

/** Decorates `reloadTls()` and keeps the served certificate in step with its files. */
export const tlsReloadPlugin = fp(serveTlsReload, {
  name: "nadguard-tls-reload",
  fastify: "5.x",
  dependencies: ["nadguard-metrics"],
});
