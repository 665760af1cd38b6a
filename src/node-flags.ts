// V8 flags the agent runs with. The image's ENTRYPOINT, scripts/run-local.sh and the test
// harness pass them on the node command line (V8 sizes its heap when it starts: the flags cannot
// be set from inside the process); test/unit/node-flags.test.ts checks that they agree.
//
// --max-semi-space-size=8: Node.js 22 and later size the young generation by the machine's
// memory (semi-spaces up to 64 MiB on a 24 GiB host), which costs a log agent, whose records die
// young, about 45 MiB more RSS than Node.js 20 for no throughput it needs (measured with a
// record-shaped allocation loop: Node.js 20 120 MiB peak, Node.js 26 164 MiB, Node.js 26 with
// a 16 MiB cap 125 MiB). Node.js 20's own cap is 16 MiB; 8 MiB halves the young generation's
// two semi-spaces (32 -> 16 MiB committed while logs are shipped) at no CPU cost: with the log
// queue's default bound (8 MiB) a short line's record still dies before its second scavenge,
// so it is not promoted (README, Performance, log pipeline: 300,000 lines, peak RSS over idle
// 52-53 -> 32-34 MiB, CPU 1.94-2.34 -> 1.86-2.01 s in the same runs).

/** The flags, in the order they are passed before the script. */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
