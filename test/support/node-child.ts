// A test run that gets killed: started as its own process by the node harness's suite, it starts a
// node (reference bridge), creates one pod through the CRI, prints one JSON line (the node's dir,
// netns, containerd's PID, the pause PID) and waits to be killed with SIGKILL, never stopping the
// node. What it leaves is what the next run's ContainerdNode.start() (cleanupStaleNodes) removes.
import { randomUUID } from "node:crypto";
import { Pod } from "../../src/api/objects.js";
import { ContainerdNode, writeBridgeConflist } from "./containerd-node.js";

const node = await ContainerdNode.start({ writeConf: writeBridgeConflist });
await node.waitCondition("NetworkReady");
const sandbox = await node.runPod(Pod.parse({ metadata: { name: "orphan", namespace: "team-d", uid: randomUUID() }, spec: { containers: [{ name: "app" }] } }));
process.stdout.write(`${JSON.stringify({ dir: node.paths.dir, netns: node.paths.netns, containerd: await node.pid(), pause: sandbox.pid, netnsPath: sandbox.netnsPath })}\n`);
setInterval(() => undefined, 60_000);
