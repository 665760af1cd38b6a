// The test image: a busybox-static root filesystem imported with `docker import`
// (no registry access is needed or used).
import {
  mkdir,
  mkdtemp,
  open,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
  chmod,
  copyFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DockerHandle } from './dockerd.js';
import { exec } from './exec.js';

export const TEST_IMAGE = 'harbormaster-test:busybox';

/** Applets that must exist in /bin (the image links every applet `busybox --list` reports). */
const REQUIRED_APPLETS = [
  'sh',
  'sleep',
  'echo',
  'cat',
  'dd',
  'yes',
  'head',
  'seq',
  'kill',
  'true',
  'false',
  'printf',
  'ls',
  'env',
];

const BUSYBOX_CANDIDATES = ['/usr/bin/busybox', '/bin/busybox'];

export function cacheDir(): string {
  return path.join(os.tmpdir(), `harbormaster-test-${process.getuid?.() ?? 0}`);
}

/** True when the ELF file has no PT_INTERP program header (i.e. is statically linked). */
async function isStaticElf(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const hdr = Buffer.alloc(64);
    await fh.read(hdr, 0, 64, 0);
    if (hdr.readUInt32BE(0) !== 0x7f454c46 || hdr[4] !== 2 || hdr[5] !== 1) return false; // ELF64 LE
    const phoff = Number(hdr.readBigUInt64LE(32));
    const phentsize = hdr.readUInt16LE(54);
    const phnum = hdr.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    await fh.read(ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false;
    return true;
  } finally {
    await fh.close();
  }
}

async function findStaticBusybox(): Promise<string> {
  for (const c of BUSYBOX_CANDIDATES) {
    try {
      if (await isStaticElf(c)) return c;
    } catch {
      // missing
    }
  }
  throw new Error(
    `no statically linked busybox at ${BUSYBOX_CANDIDATES.join(' or ')} (install Debian package busybox-static)`,
  );
}

let tarball: Promise<string> | undefined;

/** Builds (once per process, cached on disk across processes) the rootfs tarball; returns its path. */
export function testRootfsTarball(): Promise<string> {
  tarball ??= buildTarball();
  return tarball;
}

async function buildTarball(): Promise<string> {
  const busybox = await findStaticBusybox();
  const st = await stat(busybox);
  const dir = cacheDir();
  await mkdir(dir, { recursive: true });
  const target = path.join(dir, `busybox-rootfs-v1-${st.size}-${Math.floor(st.mtimeMs)}.tar`);
  try {
    await stat(target);
    return target;
  } catch {
    // build it
  }
  const stage = await mkdtemp(path.join(dir, 'stage-'));
  try {
    const root = path.join(stage, 'root');
    for (const d of ['bin', 'tmp', 'etc', 'root', 'proc', 'sys', 'dev', 'var/log', 'usr']) {
      await mkdir(path.join(root, d), { recursive: true });
    }
    await chmod(path.join(root, 'tmp'), 0o1777);
    await copyFile(busybox, path.join(root, 'bin/busybox'));
    await chmod(path.join(root, 'bin/busybox'), 0o755);
    // Some tools expect /usr/bin and /sbin; point them at /bin.
    await symlink('../bin', path.join(root, 'usr/bin'));
    await symlink('bin', path.join(root, 'sbin'));
    const list = await exec(busybox, ['--list']);
    if (list.code !== 0) throw new Error(`${busybox} --list failed: ${list.stderr}`);
    const applets = new Set(list.stdout.split('\n').filter((a) => /^[\w.[-]+$/.test(a)));
    for (const a of REQUIRED_APPLETS) {
      if (!applets.has(a)) throw new Error(`busybox lacks the applet ${a}`);
    }
    for (const a of applets) {
      if (a === 'busybox') continue;
      await symlink('busybox', path.join(root, 'bin', a));
    }
    await writeFile(
      path.join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    );
    await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    const tmpTar = path.join(stage, 'rootfs.tar');
    const r = await exec('tar', [
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '-C',
      root,
      '-cf',
      tmpTar,
      '.',
    ]);
    if (r.code !== 0) throw new Error(`tar failed: ${r.stderr}`);
    await rename(tmpTar, target);
    return target;
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

const imported = new Map<string, Promise<string>>();

/** Makes sure TEST_IMAGE exists on the engine (importing it when missing); resolves with its tag. */
export function ensureTestImage(d: DockerHandle): Promise<string> {
  let p = imported.get(d.host);
  if (!p) {
    p = (async () => {
      const have = await d.docker(['image', 'inspect', '--format', '{{.Id}}', TEST_IMAGE]);
      if (have.code === 0) return TEST_IMAGE;
      const tar = await testRootfsTarball();
      await d.dockerOk(['import', '--change', 'CMD ["/bin/sh"]', tar, TEST_IMAGE]);
      return TEST_IMAGE;
    })();
    imported.set(d.host, p);
    void p.catch(() => imported.delete(d.host));
  }
  return p;
}
