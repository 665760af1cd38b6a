import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

export type BackoffWake = 'timeout' | 'socket' | 'aborted';

/**
 * Exit status of `harbormaster run` when its Docker socket is a bind mount of a deleted socket
 * (isOrphanedSocket): EX_TEMPFAIL, a failure a restart cures (restart policies `on-failure`,
 * `unless-stopped` and `always` start the container again, with the new socket mounted).
 */
export const EXIT_STALE_SOCKET = 75;

/**
 * Whether `path` is a socket that no longer exists anywhere else: a bind mount (a container's
 * `-v /var/run/docker.sock:/var/run/docker.sock`) of a socket the daemon deleted. dockerd deletes
 * its socket when it stops and binds a new one when it starts; with live restore the agent's
 * container keeps running through that, and its mount still shows the old socket, with no links
 * left, which nothing will ever answer again. Only a new mount (a container restart) sees the new
 * one.
 */
export function isOrphanedSocket(path: string): boolean {
  try {
    const st = statSync(path);
    return st.isSocket() && st.nlink === 0;
  } catch {
    return false;
  }
}

/** Whether `path` (followed through symlinks) is a unix socket now. */
function isSocketNow(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/**
 * Waits `ms` between reconnect attempts, or less: when `socketPath` is set and a socket appears
 * at that path (the daemon restarted and bound it again, or a link to it was put back), the wait
 * ends at once. Without this, a daemon back after a long outage is seen only at the next attempt,
 * up to the backoff cap later. The watch (inotify on the socket's directory) lives only for the
 * wait; if it cannot be set up (no directory, no permission, no inotify watches left) the wait is
 * a plain timer and `onWatchError` is told why. `wasMissing`: the last attempt found no socket at
 * the path, so one there once the watch is set came in between and ends the wait too (a socket
 * that was there all along, refusing connections, does not).
 */
export function backoffWait(
  ms: number,
  socketPath: string | undefined,
  signal: AbortSignal,
  onWatchError?: (err: Error) => void,
  wasMissing = false,
): Promise<BackoffWake> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve('aborted');
    let watcher: FSWatcher | undefined;
    const finish = (how: BackoffWake): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      watcher?.close();
      watcher = undefined;
      resolve(how);
    };
    const onAbort = (): void => finish('aborted');
    const timer = setTimeout(() => finish('timeout'), ms);
    signal.addEventListener('abort', onAbort, { once: true });
    if (!socketPath) return;
    const name = basename(socketPath);
    try {
      watcher = watch(dirname(socketPath), { persistent: false }, (_type, file) => {
        // a null name (some platforms) cannot be told apart: look at the path anyway
        if ((file === null || file === name) && isSocketNow(socketPath)) finish('socket');
      });
      watcher.on('error', (err) => {
        watcher?.close();
        watcher = undefined;
        onWatchError?.(err);
      });
    } catch (err) {
      watcher = undefined;
      onWatchError?.(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (wasMissing && isSocketNow(socketPath)) finish('socket');
  });
}
