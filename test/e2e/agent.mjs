// The probe agent that runs inside one test "pod" (a network namespace, entered with nsenter):
// servers on TCP and UDP ports that answer with the pod's name, and a prober driven by JSON lines on
// stdin, one answer line per command on stdout, so that hundreds of probes cost no process each.
// SCTP, which node cannot speak, is delegated to sctp-agent.py when asked (`--sctp PORTS`).
//
//   node agent.mjs NAME --tcp 80,81 --udp 53 [--sctp 80 --python python3]
//   stdin:  {"id":1,"proto":"tcp"|"udp"|"sctp","host":"198.18.0.11","port":80,"timeoutMs":250}
//   stdout: {"ready":true} once listening, then {"id":1,"result":"open"|"closed"|"error","reply":"x/b","detail":"…"}
//
// "open": the server answered (its name is in `reply`); "closed": nothing within the timeout (a
// drop); "error": anything else (refused, unreachable), which a test treats as a failure.
// Exits when stdin closes, so a killed test run leaves no agent behind.
import { spawn } from "node:child_process";
import dgram from "node:dgram";
import net from "node:net";
import { dirname, join } from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const [name, ...rest] = process.argv.slice(2);
const flags = {};
for (let i = 0; i < rest.length; i += 2) flags[rest[i].replace(/^--/, "")] = rest[i + 1];
const ports = (text) => (text ? text.split(",").filter(Boolean).map(Number) : []);

const write = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

function listenTcp(port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      socket.on("error", () => undefined);
      socket.end(`${name}\n`);
    });
    server.once("error", reject);
    server.listen({ port, host: "::", ipv6Only: false }, resolve);
  });
}

function listenUdp(port) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type: "udp6", ipv6Only: false });
    socket.on("message", (_msg, rinfo) => socket.send(name, rinfo.port, rinfo.address));
    socket.once("error", reject);
    socket.bind(port, "::", resolve);
  });
}

function probeTcp({ host, port, timeoutMs }) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let data = "";
    const done = (result) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ result: "closed" }), timeoutMs);
    socket.on("data", (chunk) => {
      data += chunk.toString();
      if (data.includes("\n")) done({ result: "open", reply: data.trim() });
    });
    socket.on("error", (error) => done({ result: "error", detail: error.code ?? error.message }));
  });
}

// Each UDP probe gets a source port never used before by this agent: a reused 5-tuple would match
// the conntrack entry of an earlier probe (kept 30 s and more), and "ct state established accept"
// would let it through whatever the policy says now.
let nextUdpSource = 20000;

function probeUdp({ host, port, timeoutMs }) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? "udp6" : "udp4");
    const bindNext = () => {
      if (nextUdpSource > 65000) nextUdpSource = 20000;
      socket.bind(nextUdpSource++, () => socket.send("probe", port, host));
    };
    const done = (result) => {
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => done({ result: "closed" }), timeoutMs);
    socket.on("message", (msg) => done({ result: "open", reply: msg.toString() }));
    socket.on("error", (error) => {
      if (error.code === "EADDRINUSE") {
        // A server or another probe holds it: try the next one.
        socket.removeAllListeners("listening");
        return bindNext();
      }
      done({ result: "error", detail: error.code ?? error.message });
    });
    bindNext();
  });
}

// SCTP: a python3 helper with the same line protocol; answers are matched back by id.
let sctp;
const sctpWaiting = new Map();
function startSctp() {
  const helper = join(dirname(fileURLToPath(import.meta.url)), "sctp-agent.py");
  const child = spawn(flags.python ?? "python3", [helper, name, "sctp", flags.sctp], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = readline.createInterface({ input: child.stdout });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`sctp helper exited with ${code}`)));
    lines.on("line", (line) => {
      const msg = JSON.parse(line);
      if (msg.ready) return resolve(child);
      const waiter = sctpWaiting.get(msg.id);
      sctpWaiting.delete(msg.id);
      waiter?.(msg);
    });
  });
}

function probeSctp(cmd) {
  return new Promise((resolve) => {
    sctpWaiting.set(cmd.id, ({ id: _id, ...result }) => resolve(result));
    sctp.stdin.write(`${JSON.stringify(cmd)}\n`);
  });
}

const PROBES = { tcp: probeTcp, udp: probeUdp, sctp: probeSctp };

try {
  await Promise.all([...ports(flags.tcp).map(listenTcp), ...ports(flags.udp).map(listenUdp)]);
  if (flags.sctp) sctp = await startSctp();
} catch (error) {
  process.stderr.write(`agent ${name}: ${error.message}\n`);
  process.exit(1);
}

const input = readline.createInterface({ input: process.stdin });
input.on("line", (line) => {
  const cmd = JSON.parse(line);
  const probe = PROBES[cmd.proto];
  if (!probe) return write({ id: cmd.id, result: "error", detail: `unknown protocol ${cmd.proto}` });
  probe(cmd).then((result) => write({ id: cmd.id, ...result }));
});
input.on("close", () => process.exit(0));
write({ ready: true });
