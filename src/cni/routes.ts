// Default routes after a delegate's ADD, as Multus applies `default-route` (multus-cni
// pkg/multus cmdAdd with netutils DeleteDefaultGW / SetDefaultGW): when any element of the pod
// asks for a default gateway, every delegate's interface loses the default routes its plugin made
// for the families its own element does not ask for, and the element that asks gets `default via
// <gw>` on its interface. Run in the sandbox's netns with `nsenter --net` and iproute2; idempotent.
import { execFile } from "node:child_process";
import { type Result, fail, ok } from "../api/errors.js";
import type { GatewayFilter } from "./plan.js";

/** Runs `ip ARGS` in the netns; the error says which command failed and why. */
function ip(netns: string, args: readonly string[]): Promise<Result<void, string>> {
  return new Promise((resolve) => {
    execFile("nsenter", [`--net=${netns}`, "ip", ...args], { timeout: 10_000 }, (error, _stdout, stderr) => {
      resolve(error ? fail(`ip ${args.join(" ")} in ${netns} failed: ${stderr.trim() || error.message}`) : ok(undefined));
    });
  });
}

/** Applies one delegate's filter in `netns`; nothing to do when the filter keeps both families and sets no gateway. */
export async function applyGatewayFilter(netns: string, filter: GatewayFilter): Promise<Result<void, string>> {
  const steps: string[][] = [];
  if (filter.filterV4) steps.push(["-4", "route", "flush", "exact", "0.0.0.0/0", "dev", filter.ifname]);
  if (filter.filterV6) steps.push(["-6", "route", "flush", "exact", "::/0", "dev", filter.ifname]);
  for (const gateway of filter.gateways) steps.push(["route", "replace", "default", "via", gateway, "dev", filter.ifname]);
  for (const step of steps) {
    const done = await ip(netns, step);
    if (!done.ok) return done;
  }
  return ok(undefined);
}
