// The browser bench driver's own checks (run by `.ci/bench-browser --smoke`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, scenarios, shuffled, CLIENTS, SCENARIOS, summarise } from './browser-bench.mjs';

test('only a literal --smoke asks for smoke counts', () => {
  assert.equal(parseArgs([]).smoke, false);
  assert.equal(parseArgs(['--loads', '3']).smoke, false);
  assert.equal(parseArgs(['--smoke']).smoke, true);
  assert.throws(() => parseArgs(['--smoke=0']));
  assert.throws(() => parseArgs(['']));
  assert.throws(() => parseArgs(['--loads', '0']));
});

test('full runs use the full counts, smoke runs a hundredth', () => {
  assert.deepEqual(scenarios(false).map((s) => s.count), SCENARIOS.map((s) => s.count));
  assert.deepEqual(scenarios(true).map((s) => s.count), SCENARIOS.map((s) => Math.max(Math.floor(s.count / 100), 2)));
  assert.ok(scenarios(true).every((s, i) => s.count < SCENARIOS[i].count));
});

test('a profile summary adds self time per function', () => {
  const node = (id, functionName) => ({ id, callFrame: { functionName, url: 'http://x/pkg/a.js' } });
  const profile = { nodes: [node(1, 'a'), node(2, 'b')], samples: [1, 2, 1], timeDeltas: [0, 100, 300, 100] };
  assert.deepEqual(summarise(profile), [
    { name: 'b a.js', self_ms: 0.3, share: 0.6 },
    { name: 'a a.js', self_ms: 0.2, share: 0.4 },
  ]);
});

test('--count runs a tenth of the counts; every client runs in each order', () => {
  assert.equal(parseArgs(['--count']).count, true);
  assert.deepEqual(scenarios(false, true).map((s) => s.count), SCENARIOS.map((s) => Math.floor(s.count / 10)));
  for (const r of [0, 0.3, 0.6, 0.99]) assert.deepEqual([...shuffled(CLIENTS, () => r)].sort(), [...CLIENTS].sort());
});
