// Load .heapsnapshot files with Chrome DevTools' own heap snapshot worker code
// (chrome-devtools-frontend's HeapSnapshotLoader and JSHeapSnapshot, bundled for node by
// tests/cli/run.sh heapsnapshot_devtools with esbuild), and print as JSON what the Memory panel
// would show: the summary by constructor, the retainers, distances and retained sizes of the
// root's children, the allocation stacks. The file is fed to the loader in 4 KiB chunks, as
// DevTools streams it. Exit status 1 when the loader throws or reports a problem (including
// what it writes to the console), 0 otherwise.
import * as fs from 'node:fs';

import * as HeapSnapshotModel from '../package/front_end/models/heap_snapshot/heap_snapshot.js';
import {SecondaryInitManager} from '../package/front_end/entrypoints/heap_snapshot_worker/HeapSnapshot.js';
import {HeapSnapshotLoader} from '../package/front_end/entrypoints/heap_snapshot_worker/HeapSnapshotLoader.js';

// What DevTools' worker complains about on the console ("N nodes are unreachable from the
// root", ...) counts as a problem too.
let consoleProblems: string[] = [];
console.warn = (...args: unknown[]) => consoleProblems.push(args.map(String).join(' '));
console.error = console.warn;

async function load(file: string): Promise<void> {
  const problems: string[] = [];
  consoleProblems = [];
  const dispatcher = {
    sendEvent(name: string, ...args: unknown[]) {
      if (/Broken/i.test(String(name))) problems.push(args.map(String).join(' '));
    },
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const loader = new HeapSnapshotLoader(dispatcher as any);
  const text = fs.readFileSync(file, 'utf8');
  for (let i = 0; i < text.length; i += 4096) loader.write(text.slice(i, i + 4096));
  loader.close();
  const channel = new MessageChannel();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  new SecondaryInitManager(channel.port2 as any);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const snap = await loader.buildSnapshot(channel.port1 as any);
  channel.port1.close();
  channel.port2.close();
  problems.push(...consoleProblems);
  const out: Record<string, unknown> = {file, problems};
  out.nodeCount = snap.nodeCount;
  out.totalSize = snap.totalSize;
  const aggregates = snap.aggregatesWithFilter(new HeapSnapshotModel.HeapSnapshotModel.NodeFilter());
  const summary: Record<string, unknown> = {};
  for (const [key, a] of Object.entries(aggregates)) {
    summary[a.name] = {count: a.count, self: a.self, maxRet: a.maxRet, distance: a.distance};
  }
  out.summary = summary;
  const root = snap.rootNode();
  const children: unknown[] = [];
  for (let it = root.edges(); it.hasNext(); it.next()) {
    const e = it.item();
    const n = e.node();
    const retainers = snap.createRetainingEdgesProvider(n.nodeIndex).serializeItemsRange(0, 5);
    children.push({edge: e.type(), name: e.name(), node: n.name(), retained: n.retainedSize(),
                   distance: n.distance(), retainers: retainers.items.map((r: any) => r.name)});
  }
  out.rootChildren = children;
  const tops = snap.allocationTracesTops();
  out.allocationTops = tops.map(t => ({name: t.name, count: t.count, size: t.size, liveCount: t.liveCount, liveSize: t.liveSize}));
  const stacks: Record<string, unknown> = {};
  for (let it = snap.allNodes(); it.hasNext(); it.next()) {
    const n = it.item();
    if (stacks[n.name()] !== undefined) continue;
    const st = snap.allocationStack(n.nodeIndex);
    stacks[n.name()] = st ? st.map(f => `${f.functionName} ${f.scriptName}:${f.line}`) : null;
  }
  out.allocationStacks = stacks;
  console.log(JSON.stringify(out, null, 1));
  if (problems.length) process.exitCode = 1;
}

(async () => {
  for (const f of process.argv.slice(2)) await load(f);
})().catch(e => {
  console.error(`DevTools could not load the heap snapshot: ${e && e.stack || e}`);
  process.exit(1);
});
