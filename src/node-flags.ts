// V8 flags the agent runs with. The image's ENTRYPOINT, scripts/run-local.sh and the test
// harness pass them on the node command line (V8 sizes its heap when it starts: the flags cannot
// be set from inside the process); test/unit/node-flags.test.ts checks that they agree.
//
// --max-semi-space-size=16: Node.js 22 and later size the young generation by the machine's
// memory (semi-spaces up to 64 MiB on a 24 GiB host), which costs a log agent, whose records die
// young, about 45 MiB more RSS than Node.js 20 for no throughput it needs; 16 MiB is what
// Node.js 20 uses. Measured with a record-shaped allocation loop: Node.js 20 120 MiB peak,
// Node.js 26 164 MiB, Node.js 26 with this flag 125 MiB.

/** The flags, in the order they are passed before the script. */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];
