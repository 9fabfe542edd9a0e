// The node harness's pause image, made offline: test/support/pause/pause.c compiled with the
// machine's gcc (`-static`, so the image holds one file) and packed here as a docker image archive
// (manifest.json, the image config named by its sha256, one layer tar), which
// `ctr -n k8s.io images import` reads. The CRI's `sandbox_image` then names an image that is
// already there, so containerd never contacts a registry.
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { must } from "../e2e/sys.js";

export const PAUSE_SOURCE = join(import.meta.dirname, "pause", "pause.c");

interface TarEntry {
  readonly name: string;
  readonly data: Buffer;
  readonly mode: number;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

/** A ustar archive of regular files, owner 0:0, mtime 0: the same input always gives the same bytes. */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    if (Buffer.byteLength(entry.name) > 100) throw new Error(`tar entry name too long: ${entry.name}`);
    const header = Buffer.alloc(512);
    header.write(entry.name, 0, 100, "utf8");
    header.write(octal(entry.mode, 8), 100, 8, "ascii");
    header.write(octal(0, 8), 108, 8, "ascii");
    header.write(octal(0, 8), 116, 8, "ascii");
    header.write(octal(entry.data.length, 12), 124, 12, "ascii");
    header.write(octal(0, 12), 136, 12, "ascii");
    header.write("        ", 148, 8, "ascii");
    header.write("0", 156, 1, "ascii");
    header.write("ustar\0", 257, 6, "ascii");
    header.write("00", 263, 2, "ascii");
    header.write("root", 265, 32, "ascii");
    header.write("root", 297, 32, "ascii");
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
    blocks.push(header, entry.data, Buffer.alloc((512 - (entry.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

const ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };

/** A docker image archive whose one layer holds `/pause` (the given executable), tagged `reference`. */
export function pauseImageArchive(pause: Buffer, reference: string): Buffer {
  const layer = tarArchive([{ name: "pause", data: pause, mode: 0o755 }]);
  const layerDigest = sha256(layer);
  const config = JSON.stringify({
    architecture: ARCH[process.arch] ?? process.arch,
    os: "linux",
    config: { Entrypoint: ["/pause"], WorkingDir: "/" },
    rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
    history: [{ created_by: "nadguard test harness: test/support/pause/pause.c" }],
  });
  const configName = `${sha256(config)}.json`;
  const manifest = JSON.stringify([{ Config: configName, RepoTags: [reference], Layers: [`${layerDigest}/layer.tar`] }]);
  return tarArchive([
    { name: `${layerDigest}/layer.tar`, data: layer, mode: 0o644 },
    { name: configName, data: Buffer.from(config), mode: 0o644 },
    { name: "manifest.json", data: Buffer.from(manifest), mode: 0o644 },
  ]);
}

/** Compiles pause.c into `dir` and writes the image archive there; the archive's path. */
export async function buildPauseImage(dir: string, reference: string): Promise<string> {
  const binary = join(dir, "pause");
  await must("gcc", ["-Os", "-static", "-s", "-o", binary, PAUSE_SOURCE]);
  const archive = join(dir, "pause-image.tar");
  await writeFile(archive, pauseImageArchive(await readFile(binary), reference));
  return archive;
}
