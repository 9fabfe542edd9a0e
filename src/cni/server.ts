// The node daemon's CNI socket: HTTP/1.1 on a unix socket (directory 0700, socket 0600, as
// Multus' daemon keeps /run/multus), with the routes multus-shim and nadguard's shim speak:
// `POST /cni` (request.ts), `GET /healthz` (200 while the process serves) and `GET /readyz` (200
// only while the handler is ready: the cluster state loaded, no SIGTERM yet). A `POST /cni` with the
// header `Nadguard-Require-Ready: 1` (nadguard's shim sends it for every command but DEL) is
// answered 503 `not ready`, unserved, while the handler is not ready, so that the shim needs no
// GET /readyz before each call; without the header (multus-shim) the call is served as it comes.
// node:http, no framework: the socket is local and the routes are three.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { chmod, lstat, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import type { Result } from "../api/errors.js";
import { CNI_ERROR, type CniError, cniError } from "./errors.js";
import { decodeJson } from "./json.js";
import { type CniAnswer, type CniCall, EMPTY_ANSWER, errorAnswer, parseCniCall, resultAnswer } from "./request.js";
import type { CniResult } from "./result.js";

/** What serves the calls: a result for ADD, nothing for the others, or a CNI error. */
export interface CniHandler {
  handle(call: CniCall): Promise<Result<CniResult | undefined, CniError>>;
  /** Whether calls that need the cluster state can be served now. */
  ready(): boolean;
}

export interface CniServerOptions {
  /** The socket's path, e.g. `/run/nadguard/nadguard.sock`. */
  readonly socketPath: string;
  readonly handler: CniHandler;
  /** Largest request body; default 1 MiB (a CNI config with a prevResult is a few KiB). */
  readonly maxBodyBytes?: number;
}

export interface CniServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY = 1024 * 1024;

/** The request header (lower case, as node:http gives it) asking for 503 instead of a call served while not ready. */
export const REQUIRE_READY_HEADER = "nadguard-require-ready";

function send(res: ServerResponse, answer: CniAnswer): void {
  res.writeHead(answer.status, answer.body === "" ? {} : { "Content-Type": "application/json" });
  res.end(answer.body);
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString()));
    req.on("error", reject);
  });
}

async function serveCni(req: IncomingMessage, options: CniServerOptions): Promise<CniAnswer> {
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const text = await readBody(req, limit);
  if (text === undefined) return errorAnswer(cniError(CNI_ERROR.ioFailure, `the request is larger than ${limit} bytes`));
  const json = decodeJson(text);
  if (!json.ok) return errorAnswer(cniError(CNI_ERROR.decodingFailure, `the request is not JSON: ${json.error}`));
  const call = parseCniCall(json.value);
  if (!call.ok) return errorAnswer(call.error);
  const handled = await options.handler.handle(call.value).catch(
    (error: Error): Result<undefined, CniError> => ({ ok: false, error: cniError(CNI_ERROR.internal, `nadguard failed to serve ${call.value.command}: ${error.message}`) }),
  );
  if (!handled.ok) return errorAnswer(handled.error, call.value.cniVersion);
  return call.value.command === "ADD" && handled.value !== undefined ? resultAnswer(handled.value) : EMPTY_ANSWER;
}

/** Removes a socket left by an earlier run; refuses to remove anything that is not a socket. */
async function removeStaleSocket(path: string): Promise<void> {
  const info = await lstat(path).catch(() => undefined);
  if (info === undefined) return;
  if (!info.isSocket()) throw new Error(`${path} exists and is not a socket; not removing it`);
  await unlink(path);
}

/** Listens on the socket; rejects when it cannot. */
export async function startCniServer(options: CniServerOptions): Promise<CniServer> {
  // A directory made here is 0700, so nobody else reaches the socket before its chmod.
  await mkdir(dirname(options.socketPath), { recursive: true, mode: 0o700 });
  await removeStaleSocket(options.socketPath);
  const server: Server = createServer((req, res) => {
    const url = req.url ?? "";
    if (req.method === "POST" && url === "/cni") {
      if (req.headers[REQUIRE_READY_HEADER] === "1" && !options.handler.ready()) {
        // The body is read (and dropped) first: a unix socket closed with unread data resets its peer.
        req.resume();
        req.on("end", () => res.writeHead(503).end("not ready"));
        return;
      }
      serveCni(req, options).then(
        (answer) => send(res, answer),
        (error: Error) => send(res, errorAnswer(cniError(CNI_ERROR.ioFailure, `cannot read the request: ${error.message}`))),
      );
      return;
    }
    if (req.method === "GET" && url === "/healthz") {
      res.writeHead(200).end("ok");
    } else if (req.method === "GET" && url === "/readyz") {
      if (options.handler.ready()) res.writeHead(200).end("ok");
      else res.writeHead(503).end("not ready");
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  await chmod(options.socketPath, 0o600);
  return {
    socketPath: options.socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
