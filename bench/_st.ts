import { spawn } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { readyz } from "/work/wt/h3-memory/bench/kube.js";
const stateDir = process.argv[2]!;
const dir = await mkdtemp(join(tmpdir(), "h3st-"));
const child = spawn(process.execPath, [...(process.env.XARGS ? process.env.XARGS.split(" ") : []), "/work/wt/h3-memory/dist/src/cli/main.js", "webhook", "--state", stateDir, "--listen", "127.0.0.1:0", "--certs-dir", join(dir, "certs"), "--log-level", "error"], { stdio: ["ignore", "pipe", "pipe"] });
let err = ""; child.stderr.on("data", (c) => (err += c));
for (let i = 0; i < 600 && !/listening on https:\/\/127\.0\.0\.1:(\d+)/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
const port = Number(/listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(err)![1]);
const ca = await readFile(join(dir, "certs", "ca.crt"), "utf8");
while ((await readyz(port, ca)) !== 200) await new Promise((r) => setTimeout(r, 50));
await new Promise((r) => setTimeout(r, 2500));
console.log((await readFile(`/proc/${child.pid}/status`, "utf8")).match(/(VmRSS|RssAnon|RssFile):\s+\d+ kB/g)?.join(" "));
try { console.log(await readFile(`/tmp/h3/prof/mem-${child.pid}.txt`, "utf8")); } catch {}
child.kill("SIGTERM"); process.exit(0);
