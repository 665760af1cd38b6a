// Opens each new generation of a watched json-file log on a worker thread, the moment a
// file-system notification names it. The main thread can be busy for hundreds of milliseconds on
// a loaded host (a 64 KiB line through processing, a GC), while Docker with max-file=1 creates,
// fills and deletes a 1 MB generation in less; a notification handled there comes too late and
// the generation is gone unread. The worker does nothing else, so it opens the file within
// milliseconds. A descriptor belongs to the process: the worker opens it, the tailer reads it
// (Tailer.acceptGrab) and closes it; one nobody claims is closed.
//
// The log component starts the thread with log shipping (startGrabber), before the first tailer:
// a worker boots a Node.js environment of its own (tens of milliseconds of CPU), and a watch asked
// for while it boots only begins once it is up. Started lazily by the first tailer, that boot was
// also 5-8 % of the CPU the log benchmark counts for a million lines.
import { closeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** A descriptor the worker opened, with the identity it had then. */
export interface Grab {
  fd: number;
  dev: number;
  ino: number;
}

// CommonJS, evaluated in the worker: watch directories, open the named file on each rename event.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const watches = new Map();
function grab(id, file) {
  let fd;
  try { fd = fs.openSync(file, 'r'); } catch { return; }
  try {
    const st = fs.fstatSync(fd);
    parentPort.postMessage({ id, fd, dev: st.dev, ino: st.ino });
  } catch { fs.closeSync(fd); }
}
parentPort.on('message', (m) => {
  if (m.op === 'watch') {
    const base = path.basename(m.file);
    try {
      const w = fs.watch(path.dirname(m.file), { persistent: false }, (ev, name) => {
        if (ev === 'rename' && name === base) grab(m.id, m.file);
      });
      w.on('error', () => { w.close(); watches.delete(m.id); });
      watches.set(m.id, w);
    } catch {}
  } else if (m.op === 'unwatch') {
    const w = watches.get(m.id);
    if (w) { w.close(); watches.delete(m.id); }
  }
});
`;

let worker: Worker | undefined;
let failed = false;
/** Resolves once the worker runs (true), or with false if it could not start. */
let online: Promise<boolean> | undefined;
let nextId = 0;
const listeners = new Map<number, (g: Grab) => void>();

function ensureWorker(): Worker | undefined {
  if (worker || failed) return worker;
  try {
    // trackUnmanagedFds off: the descriptors it opens are the main thread's to close. With
    // tracking on (Node's default), each number the kernel hands out again printed "File
    // descriptor N opened in unmanaged mode twice" on the agent's stderr, and a worker that
    // exited would close every number it had opened: by then, descriptors of the tailers.
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      stdout: false,
      stderr: false,
      trackUnmanagedFds: false,
    });
  } catch {
    failed = true;
    return undefined;
  }
  worker.unref();
  const w = worker;
  online = new Promise<boolean>((resolve) => {
    w.once('online', () => resolve(true));
    w.once('error', () => resolve(false));
    w.once('exit', () => resolve(false));
  });
  worker.on('message', (m: Grab & { id: number }) => {
    const l = listeners.get(m.id);
    if (l) l({ fd: m.fd, dev: m.dev, ino: m.ino });
    else closeSync(m.fd);
  });
  worker.on('error', () => {
    // Without the worker, the tailer's own notification handler and poll still discover files.
    worker = undefined;
    failed = true;
  });
  return worker;
}

/**
 * Starts the grabber thread (once; later calls return the same answer): true once it runs, false
 * if it cannot (the tailers then find new generations by their own notifications and polls).
 */
export function startGrabber(): Promise<boolean> {
  ensureWorker();
  return online ?? Promise.resolve(false);
}

/**
 * Watches `file`'s directory on the grabber thread; `onGrab` gets every descriptor opened for it
 * (and owns it). Returns the function that stops watching.
 */
export function watchForGrabs(file: string, onGrab: (g: Grab) => void): () => void {
  const w = ensureWorker();
  if (!w) return () => {};
  const id = ++nextId;
  listeners.set(id, onGrab);
  w.postMessage({ op: 'watch', id, file });
  return () => {
    listeners.delete(id);
    worker?.postMessage({ op: 'unwatch', id });
  };
}
