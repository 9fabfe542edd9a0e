// The load generator of the admission benchmark, in its own process (never the server's). Two tools:
//   autocannon — HTTP/1.1 over TLS, `overallRate` for fixed rates or open throttle. Its rate limit
//                releases each connection's per-second budget back to back at the start of every
//                second, so a "fixed rate" run is a burst per second; latencies are taken from its
//                `response` events (float ms) rather than its histogram, which has 1 ms resolution.
//   paced      — HTTP/2 over TLS on one session, as kube-apiserver calls a webhook: requests are
//                started on a fixed schedule whatever the responses do (open loop: a slow server
//                cannot hold back arrivals, so its stalls show in the latencies instead of being
//                hidden by coordinated omission). Latency runs from the moment the request is
//                written; how late the client itself started requests is reported as `lagP99`.
// Usage: node --import tsx bench/admission-load.ts PLAN.json — prints `{"event":"start"}` before each
// job and one JSON result line after it (the parent samples the server's CPU between the two).
import { readFileSync } from "node:fs";
import { connect } from "node:http2";
import autocannon, { type Result as AutocannonResult } from "autocannon";

export interface LoadJob {
  readonly name: string;
  readonly tool: "autocannon" | "paced";
  readonly path: string;
  /** The request body (an AdmissionReview as JSON). */
  readonly bodyFile: string;
  /** Requests per second; 0 is open throttle (autocannon only). */
  readonly rate: number;
  readonly durationS: number;
  /** autocannon connections. */
  readonly connections?: number;
}

export interface LoadPlan {
  readonly port: number;
  readonly caFile: string;
  readonly jobs: readonly LoadJob[];
}

export interface LoadResult {
  readonly name: string;
  readonly requests: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly seconds: number;
  /** Completed 2xx responses per second. */
  readonly throughput: number;
  /** Latencies in ms, unsorted (the parent pools and summarizes them). */
  readonly latencies: number[];
  /** This process's CPU time over the job's wall time (1 = one core busy). */
  readonly clientCpu: number;
  /** paced: p99 of how late requests were started against their schedule (ms); 0 for autocannon. */
  readonly lagP99: number;
}

type Measured = Omit<LoadResult, "clientCpu">;

async function runAutocannon(plan: LoadPlan, job: LoadJob, body: string, ca: string): Promise<Measured> {
  const latencies: number[] = [];
  const started = performance.now();
  const result = await new Promise<AutocannonResult>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `https://127.0.0.1:${plan.port}${job.path}`,
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        connections: job.connections ?? 10,
        duration: job.durationS,
        ...(job.rate > 0 ? { overallRate: job.rate, ignoreCoordinatedOmission: true } : {}),
        timeout: 10,
        tlsOptions: { ca },
      },
      (error, res) => (error ? reject(error) : resolve(res)),
    );
    instance.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  const seconds = (performance.now() - started) / 1000;
  return { name: job.name, requests: latencies.length + result.non2xx, errors: result.errors + result.timeouts, non2xx: result.non2xx, seconds, throughput: latencies.length / seconds, latencies, lagP99: 0 };
}

async function runPaced(plan: LoadPlan, job: LoadJob, body: Buffer, ca: string): Promise<Measured> {
  const session = connect(`https://127.0.0.1:${plan.port}`, { ca, servername: "localhost" });
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  const total = Math.max(1, Math.round(job.rate * job.durationS));
  const interval = 1000 / job.rate;
  const latencies: number[] = [];
  const lags: number[] = [];
  let errors = 0;
  let non2xx = 0;
  let done = 0;
  let allDone: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (allDone = resolve));
  const send = (scheduled: number): void => {
    const sentAt = performance.now();
    lags.push(sentAt - scheduled);
    const request = session.request({ ":method": "POST", ":path": job.path, "content-type": "application/json", "content-length": String(body.length) });
    let status = 0;
    request.on("response", (headers) => (status = Number(headers[":status"])));
    request.on("data", () => undefined);
    const settle = (ok: boolean): void => {
      if (ok && status >= 200 && status < 300) latencies.push(performance.now() - sentAt);
      else if (ok) non2xx++;
      else errors++;
      if (++done === total) allDone();
    };
    request.once("end", () => settle(true));
    request.once("error", () => settle(false));
    request.end(body);
  };
  const start = performance.now() + 20;
  let sent = 0;
  // Bounded: the loop ends after `total` sends or twice the planned duration, whichever is first.
  const deadline = start + job.durationS * 2000 + 1000;
  while (sent < total && performance.now() < deadline) {
    const now = performance.now();
    while (sent < total && start + sent * interval <= now) send(start + interval * sent++);
    const next = start + sent * interval;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.floor(next - performance.now()))));
  }
  errors += total - sent;
  if (sent < total) done += total - sent;
  if (done < total) await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  const seconds = (performance.now() - start) / 1000;
  session.close();
  lags.sort((a, b) => a - b);
  const lagP99 = lags[Math.max(0, Math.ceil(lags.length * 0.99) - 1)] ?? 0;
  return { name: job.name, requests: sent, errors: errors + (total - done), non2xx, seconds, throughput: latencies.length / seconds, latencies, lagP99 };
}

async function main(): Promise<void> {
  const plan = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as LoadPlan;
  const ca = readFileSync(plan.caFile, "utf8");
  for (const job of plan.jobs) {
    const body = readFileSync(job.bodyFile);
    process.stdout.write(`${JSON.stringify({ event: "start", name: job.name })}\n`);
    const cpu = process.cpuUsage();
    const wall = performance.now();
    const result = job.tool === "paced" ? await runPaced(plan, job, body, ca) : await runAutocannon(plan, job, body.toString("utf8"), ca);
    const used = process.cpuUsage(cpu);
    const clientCpu = (used.user + used.system) / 1000 / (performance.now() - wall);
    process.stdout.write(`${JSON.stringify({ ...result, clientCpu })}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`admission-load: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
